//! Copies of session commits: a cherry-pick, a rebase or a squash makes new commits with the
//! same change. They are found by git's own `patch-id`, of single commits and of a session's
//! whole range (what a squash lands).

use std::collections::HashMap;

use gix::ObjectId;

use super::{Gate, SessionLine, Violation};

/// Past this many new commits in one landing, copies are not looked for (a large import of
/// history); the exact-commit rule still applies to all of them.
const MAX_FOREIGN: usize = 2000;

/// The landing commits (`foreign`: not themselves session commits) that carry the same patch
/// as an unapproved session commit, or as an unapproved session's whole range.
pub fn copies(
    gate: &Gate<'_>,
    foreign: &[ObjectId],
    unapproved: &[(&SessionLine, ObjectId, Vec<ObjectId>)],
) -> anyhow::Result<Vec<Violation>> {
    if foreign.is_empty() || unapproved.is_empty() || foreign.len() > MAX_FOREIGN {
        return Ok(Vec::new());
    }
    let landed = gate.git.patch_ids(gate.cwd, foreign)?;
    let mut originals: HashMap<String, (&SessionLine, ObjectId)> = HashMap::new();
    let commits: Vec<ObjectId> = unapproved.iter().map(|(_, c, _)| *c).collect();
    for (patch, commit) in gate.git.patch_ids(gate.cwd, &commits)? {
        if let Some((session, ..)) = unapproved.iter().find(|(_, c, _)| *c == commit) {
            originals.insert(patch, (session, commit));
        }
    }
    // A squash lands a session's range as one patch: from where it started to its tip.
    let mut seen = Vec::new();
    for (session, _, _) in unapproved {
        if seen.contains(&session.id) {
            continue;
        }
        seen.push(session.id.clone());
        if let Some(base) = session.base
            && let Some(patch) = gate.git.range_patch_id(gate.cwd, base, session.tip)?
        {
            originals.entry(patch).or_insert((session, session.tip));
        }
    }
    let mut out = Vec::new();
    for (patch, commit) in landed {
        if let Some((session, original)) = originals.get(&patch) {
            out.push(gate.violation(session, commit, Some(*original)));
        }
    }
    Ok(out)
}
