//! Copies of session commits: a cherry-pick, a rebase or a squash makes new commits with the
//! same change. They are found by git's own `patch-id`, of single commits and of a session's
//! whole range (what a squash lands).

use std::collections::HashMap;

use gix::ObjectId;

use super::{Gate, SessionLine, Violation};
use crate::git::patch_id::PatchOf;

/// Past this many new commits in one landing, copies are not looked for (a large import of
/// history); the exact-commit rule still applies to all of them.
const MAX_FOREIGN: usize = 2000;

/// The landing commits (`foreign`: not themselves session commits) that carry the same patch
/// as an unapproved session commit, or as an unapproved session's whole range (what a squash
/// lands). One pair of git processes computes every patch-id.
pub fn copies(
    gate: &Gate<'_>,
    foreign: &[ObjectId],
    unapproved: &[(&SessionLine, ObjectId, Vec<ObjectId>)],
) -> anyhow::Result<Vec<Violation>> {
    if foreign.is_empty() || unapproved.is_empty() || foreign.len() > MAX_FOREIGN {
        return Ok(Vec::new());
    }
    // What each asked-for patch stands for: a landing commit, or a session's original.
    enum Role<'s> {
        Landed(ObjectId),
        Original(&'s SessionLine, ObjectId),
    }
    let mut items = Vec::new();
    let mut roles = Vec::new();
    for commit in foreign {
        items.push(PatchOf::Commit(*commit));
        roles.push(Role::Landed(*commit));
    }
    for (session, commit, _) in unapproved {
        items.push(PatchOf::Commit(*commit));
        roles.push(Role::Original(session, *commit));
    }
    let mut seen = Vec::new();
    for (session, _, _) in unapproved {
        if let Some(base) = session.base
            && !seen.contains(&session.id)
        {
            seen.push(session.id.clone());
            items.push(PatchOf::Range(base, session.tip));
            roles.push(Role::Original(session, session.tip));
        }
    }
    let mut originals: HashMap<String, (&SessionLine, ObjectId)> = HashMap::new();
    let mut landed = Vec::new();
    for (patch, index) in gate.git.patch_ids(gate.cwd, &items)? {
        match roles[index] {
            Role::Landed(commit) => landed.push((patch, commit)),
            Role::Original(session, original) => {
                originals.entry(patch).or_insert((session, original));
            }
        }
    }
    Ok(landed
        .into_iter()
        .filter_map(|(patch, commit)| {
            let (session, original) = originals.get(&patch)?;
            Some(gate.violation(session, commit, Some(*original)))
        })
        .collect())
}
