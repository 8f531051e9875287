//! Copies of session commits: a cherry-pick, a rebase or a squash makes new commits with the
//! same change. They are found by git's own `patch-id`, of single commits and of a session's
//! whole range (what a squash lands).

use std::collections::HashMap;

use gix::ObjectId;

use super::{Gate, SessionLine};
use crate::git::patch_id::PatchOf;

/// Past this many new commits in one landing, copies are not looked for (a large import of
/// history); the exact-commit rule still applies to all of them.
const MAX_FOREIGN: usize = 2000;

/// A landing commit that copies a session's commit: `(session, copy, original, hidden)`,
/// `hidden` being what bounds the session's commits. `original` is the session tip when the
/// copy carries the session's whole range.
pub type Copy<'s> = (&'s SessionLine, ObjectId, ObjectId, &'s [ObjectId]);

/// A session commit (or a session's tip, for its whole range) and what bounds the session.
type Original<'s> = (&'s SessionLine, ObjectId, &'s [ObjectId]);

/// The landing commits (`foreign`: not themselves session commits) that carry the same patch
/// as a commit of `candidates` (session commits that do not land themselves), or as a
/// candidate session's whole range (what a squash lands). One pair of git processes computes
/// every patch-id. Whether the original is approved is the caller's question.
pub fn copies<'s>(
    gate: &Gate<'_>,
    foreign: &[ObjectId],
    candidates: &'s [(&'s SessionLine, ObjectId, Vec<ObjectId>)],
) -> anyhow::Result<Vec<Copy<'s>>> {
    if foreign.is_empty() || candidates.is_empty() || foreign.len() > MAX_FOREIGN {
        return Ok(Vec::new());
    }
    // What each asked-for patch stands for: a landing commit, or a session's original.
    enum Role<'s> {
        Landed(ObjectId),
        Original(Original<'s>),
    }
    let mut items = Vec::new();
    let mut roles = Vec::new();
    for commit in foreign {
        items.push(PatchOf::Commit(*commit));
        roles.push(Role::Landed(*commit));
    }
    for (session, commit, hidden) in candidates {
        items.push(PatchOf::Commit(*commit));
        roles.push(Role::Original((session, *commit, hidden)));
    }
    let mut seen = Vec::new();
    for (session, _, hidden) in candidates {
        if let Some(base) = session.base
            && !seen.contains(&session.id)
        {
            seen.push(session.id.clone());
            items.push(PatchOf::Range(base, session.tip));
            roles.push(Role::Original((session, session.tip, hidden)));
        }
    }
    let mut originals: HashMap<String, Vec<Original<'_>>> = HashMap::new();
    let mut landed = Vec::new();
    for (patch, index) in gate.git.patch_ids(gate.cwd, &items)? {
        match roles[index] {
            Role::Landed(commit) => landed.push((patch, commit)),
            Role::Original(original) => originals.entry(patch).or_default().push(original),
        }
    }
    Ok(landed
        .into_iter()
        .flat_map(|(patch, commit)| {
            originals
                .get(&patch)
                .into_iter()
                .flatten()
                .map(move |&(session, original, hidden)| (session, commit, original, hidden))
        })
        .collect())
}
