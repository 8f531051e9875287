//! Copies of a session's change, whatever shape they take. A cherry-pick (shifted or not), a
//! squash, `git checkout codex/<id> -- . && git commit`, a merge whose result carries the
//! change although neither parent is a session commit: each lands the same hunks. So the gate
//! compares hunks, without context lines: every significant hunk of a session commit that does
//! not land itself, and of the session's whole change (base to branch tip, what a squash
//! lands), against what each other landing commit changes against each of its parents. A
//! landing commit copies a hunk when the hunk stands whole within the commit's change against
//! every parent (so a merge is judged by what it adds itself, not by what its parents
//! brought). Past [`MAX_LANDING`] commits to compare, the gate refuses rather than skip.

use std::collections::HashMap;

use gix::ObjectId;

use super::{Gate, SessionLine};
use crate::error::UserError;
use crate::git::hunks::{DiffOf, Hunk};

/// The most landing commits compared in one check; a landing with more new commits than this,
/// while unapproved session changes exist, is refused (land it in parts).
pub const MAX_LANDING: usize = 5000;

/// Stands for the landing's whole change among the per-commit diffs.
const NET: ObjectId = ObjectId::Sha1([0; 20]);

/// A session's commits that do not land themselves, and what bounds the session.
pub struct Original<'s> {
    pub session: &'s SessionLine,
    pub commits: Vec<ObjectId>,
    pub hidden: Vec<ObjectId>,
}

/// A landing commit that carries a whole hunk of a session's change.
pub struct Found {
    /// Index into the originals.
    pub original: usize,
    pub copy: ObjectId,
    /// The session commit the hunk is from; the session's branch tip for its whole change.
    pub of: ObjectId,
    /// Whether the hunk is of the session's whole change (base to tip).
    pub whole: bool,
    pub hunk: Hunk,
}

/// Where a candidate hunk came from.
struct Source {
    original: usize,
    of: ObjectId,
    whole: bool,
}

/// The landing commits of `foreign` (not themselves session commits) that carry a whole hunk
/// of the sessions' changes in `originals`. Whether the original is approved is the caller's
/// question.
pub fn find(
    gate: &Gate<'_>,
    foreign: &[ObjectId],
    originals: &[Original<'_>],
    net: Option<(ObjectId, ObjectId)>,
) -> anyhow::Result<Vec<Found>> {
    if foreign.is_empty() || originals.iter().all(|o| o.commits.is_empty()) {
        return Ok(Vec::new());
    }
    let candidates = candidate_hunks(gate, originals)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    if foreign.len() > MAX_LANDING {
        return Err(UserError::refused(format!(
            "this landing brings {} new commits; git-codex compares at most {MAX_LANDING} with the changes of unapproved sessions, so it refuses rather than let copies through unchecked",
            foreign.len()
        ))
        .hint("land the history in parts of fewer commits, or approve or remove the pending sessions first ('git codex session list --pending')")
        .into());
    }
    let mut items = Vec::new();
    let mut owners = Vec::new();
    for commit in foreign {
        let parents = gate.history.parents(*commit)?;
        if parents.is_empty() {
            items.push(DiffOf::Root(*commit));
            owners.push(*commit);
        }
        for parent in parents {
            items.push(DiffOf::Pair {
                from: parent,
                to: *commit,
            });
            owners.push(*commit);
        }
    }
    // The landing's whole change too: a hunk landed in parts by several commits shows whole
    // there.
    if let Some((old, new)) = net {
        items.push(DiffOf::Pair { from: old, to: new });
        owners.push(NET);
    }
    let diffs = gate.git.hunks(gate.cwd, &items)?;
    // Per landing commit, its change against each parent, by file.
    let mut by_commit: HashMap<ObjectId, Vec<HashMap<&[u8], Vec<&Hunk>>>> = HashMap::new();
    for (owner, hunks) in owners.iter().zip(&diffs) {
        let mut by_path: HashMap<&[u8], Vec<&Hunk>> = HashMap::new();
        for hunk in hunks {
            by_path.entry(hunk.path.as_slice()).or_default().push(hunk);
        }
        by_commit.entry(*owner).or_default().push(by_path);
    }
    let mut found = Vec::new();
    for (owner, sides) in &by_commit {
        // The whole change is the landing's new tip's to answer for.
        let copy = match net {
            Some((_, new)) if *owner == NET => new,
            _ => *owner,
        };
        for (hunk, source) in &candidates {
            let carried = sides.iter().all(|side| {
                side.get(hunk.path.as_slice())
                    .is_some_and(|hunks| hunks.iter().any(|h| hunk.within(h)))
            });
            if carried {
                found.push(Found {
                    original: source.original,
                    copy,
                    of: source.of,
                    whole: source.whole,
                    hunk: hunk.clone(),
                });
            }
        }
    }
    Ok(found)
}

/// The significant hunks of every non-merge session commit in `originals`, and of each
/// session's whole change (base to branch tip: a merge inside the session shows there).
fn candidate_hunks(
    gate: &Gate<'_>,
    originals: &[Original<'_>],
) -> anyhow::Result<Vec<(Hunk, Source)>> {
    let mut items = Vec::new();
    let mut sources = Vec::new();
    for (index, original) in originals.iter().enumerate() {
        if original.commits.is_empty() {
            continue;
        }
        for commit in &original.commits {
            let parents = gate.history.parents(*commit)?;
            let item = match parents.as_slice() {
                [] => DiffOf::Root(*commit),
                [parent] => DiffOf::Pair {
                    from: *parent,
                    to: *commit,
                },
                // A merge's own change shows in the session's whole change.
                _ => continue,
            };
            items.push(item);
            sources.push(Source {
                original: index,
                of: *commit,
                whole: false,
            });
        }
        let session = original.session;
        if let (Some(base), Some(tip)) = (session.base, session.branch_tip)
            && base != tip
        {
            items.push(DiffOf::Pair {
                from: base,
                to: tip,
            });
            sources.push(Source {
                original: index,
                of: tip,
                whole: true,
            });
        }
    }
    let diffs = gate.git.hunks(gate.cwd, &items)?;
    let mut out = Vec::new();
    for (hunks, source) in diffs.into_iter().zip(sources) {
        for hunk in hunks.into_iter().filter(Hunk::significant) {
            out.push((
                hunk,
                Source {
                    original: source.original,
                    of: source.of,
                    whole: source.whole,
                },
            ));
        }
    }
    Ok(out)
}

/// Whether `hunk` (of a session's whole change) is also in the change its approval covers
/// (base to the approved commit): landing approved work is no copy of the unapproved rest.
pub fn in_approved_change(
    gate: &Gate<'_>,
    session: &SessionLine,
    approved: ObjectId,
    hunk: &Hunk,
) -> anyhow::Result<bool> {
    let Some(base) = session.base else {
        return Ok(false);
    };
    let diffs = gate.git.hunks(
        gate.cwd,
        &[DiffOf::Pair {
            from: base,
            to: approved,
        }],
    )?;
    Ok(diffs.iter().flatten().any(|h| h == hunk))
}
