//! Copies of a session's change, whatever shape they take. A cherry-pick (shifted or not), a
//! squash, `git checkout codex/<id> -- . && git commit`, a merge whose result carries the
//! change although neither parent is a session commit: each lands the same hunks. So the gate
//! compares hunks, without context lines: every significant hunk of a session commit that does
//! not land itself, of the session's whole change (base to branch tip, what a squash lands),
//! and of each state its branch passed through (base to each of its commits), against what each other landing commit changes against each of its parents. A
//! landing commit copies a hunk when the hunk stands whole within the commit's change against
//! every parent (so a merge is judged by what it adds itself, not by what its parents
//! brought). Past [`MAX_LANDING`] commits to compare, the gate refuses rather than skip.

use std::collections::{HashMap, HashSet};

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
    /// Every commit of the session (landing or not): a merge's other parents are upstream.
    pub own: HashSet<ObjectId>,
    pub hidden: Vec<ObjectId>,
}

/// A landing commit that carries a whole hunk of a session's change.
pub struct Found {
    /// Index into the originals.
    pub original: usize,
    pub copy: ObjectId,
    /// The session commit the hunk is from; the session's branch tip for its whole change.
    pub of: ObjectId,
    pub hunk: Hunk,
    /// Found in the landing's whole change (what it leaves when done), not one commit's.
    pub in_net: bool,
}

/// One side of a landing commit's change (against one parent), by file.
type ByPath<'h> = HashMap<&'h [u8], Vec<&'h Hunk>>;

/// Where a candidate hunk came from.
struct Source {
    original: usize,
    of: ObjectId,
    whole: bool,
}

/// The landing commits of `foreign` (not themselves session commits, each with its parents)
/// that carry a whole hunk of the sessions' changes in `originals`. Whether the original is
/// approved is the caller's question.
pub fn find(
    gate: &Gate<'_>,
    foreign: &[(ObjectId, Vec<ObjectId>)],
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
    for (commit, parents) in foreign {
        for item in DiffOf::of_commit(*commit, parents) {
            items.push(item);
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
    let mut by_commit: HashMap<ObjectId, Vec<ByPath<'_>>> = HashMap::new();
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
                    hunk: hunk.clone(),
                    in_net: *owner == NET,
                });
            }
        }
    }
    Ok(found)
}

/// The significant hunks of the sessions' changes in `originals`: each commit's own (a merge's
/// is what it adds against every parent: its conflict resolutions, or an evil change), and
/// each session's whole change from its base to its branch tip (what a squash lands), less
/// what it merged in from upstream (main's own changes are no session's).
fn candidate_hunks(
    gate: &Gate<'_>,
    originals: &[Original<'_>],
) -> anyhow::Result<Vec<(Hunk, Source)>> {
    let mut items = Vec::new();
    // Per item: where its hunks came from, and its role.
    let mut roles: Vec<(usize, ObjectId, Role)> = Vec::new();
    for (index, original) in originals.iter().enumerate() {
        if original.commits.is_empty() {
            continue;
        }
        let mut upstream = Vec::new();
        for commit in &original.commits {
            let parents = gate.history.parents(*commit)?;
            if parents.is_empty() {
                items.push(DiffOf::Root(*commit));
                roles.push((index, *commit, Role::Commit { sides: 1 }));
                continue;
            }
            let sides = parents.len();
            for parent in &parents {
                items.push(DiffOf::Pair {
                    from: *parent,
                    to: *commit,
                });
                roles.push((index, *commit, Role::Commit { sides }));
            }
            if sides > 1 {
                upstream.extend(
                    parents
                        .iter()
                        .copied()
                        .filter(|p| !original.own.contains(p)),
                );
            }
        }
        let session = original.session;
        if let (Some(base), Some(tip)) = (session.base, session.branch_tip)
            && let Some(from) = fork_point(gate, base, tip)?
        {
            items.push(DiffOf::Pair { from, to: tip });
            roles.push((index, tip, Role::Whole));
            // Every state the branch passed through on its way there, as a whole: what one
            // commit added and a later one took out again is a change the session made too
            // (copied by checking that commit out, or by picking the commits up to it).
            for state in gate.history.commits_between(&[tip], &[from])? {
                if state != tip && original.commits.contains(&state) {
                    items.push(DiffOf::Pair { from, to: state });
                    roles.push((index, state, Role::Whole));
                }
            }
            for parent in upstream {
                items.push(DiffOf::Pair { from, to: parent });
                roles.push((index, tip, Role::Upstream));
            }
        }
    }
    let diffs = gate.git.hunks(gate.cwd, &items)?;
    let mut out = Vec::new();
    let mut upstream: HashSet<(usize, Hunk)> = HashSet::new();
    let mut sides_of: Vec<Vec<Hunk>> = Vec::new();
    for (hunks, (index, of, role)) in diffs.into_iter().zip(roles) {
        let significant = hunks.into_iter().filter(Hunk::significant);
        match role {
            Role::Commit { sides } => {
                sides_of.push(significant.collect());
                if sides_of.len() < sides {
                    continue;
                }
                // A hunk counts when every side shows it: against each parent.
                let mut sides = std::mem::take(&mut sides_of).into_iter();
                let first = sides.next().unwrap_or_default();
                let rest: Vec<Vec<Hunk>> = sides.collect();
                for hunk in first {
                    if rest.iter().all(|side| side.iter().any(|h| hunk.within(h))) {
                        out.push((hunk, Source::new(index, of, false)));
                    }
                }
            }
            Role::Whole => {
                out.extend(significant.map(|hunk| (hunk, Source::new(index, of, true))));
            }
            Role::Upstream => upstream.extend(significant.map(|hunk| (index, hunk))),
        }
    }
    out.retain(|(hunk, source)| {
        !(source.whole && upstream.contains(&(source.original, hunk.clone())))
    });
    Ok(out)
}

/// Where a session's whole change starts: its base, or where it last met a protected branch
/// when that is nearer (a session rebased onto main, or that merged main in, changes only
/// what it adds on top). `None` when there is no change.
fn fork_point(gate: &Gate<'_>, base: ObjectId, tip: ObjectId) -> anyhow::Result<Option<ObjectId>> {
    let mut best = (base, gate.history.commits_between(&[tip], &[base])?.len());
    for landed in &gate.landed {
        if let Some(meet) = gate.history.merge_base(tip, *landed)? {
            let distance = gate.history.commits_between(&[tip], &[meet])?.len();
            if distance < best.1 {
                best = (meet, distance);
            }
        }
    }
    Ok((best.0 != tip && best.1 > 0).then_some(best.0))
}

/// What a diff asked for by [`candidate_hunks`] is.
enum Role {
    /// One side of a session commit's change, against one of its `sides` parents.
    Commit { sides: usize },
    /// A session's whole change, or a state its branch passed through (base to a commit).
    Whole,
    /// What the session merged in from upstream.
    Upstream,
}

impl Source {
    fn new(original: usize, of: ObjectId, whole: bool) -> Source {
        Source {
            original,
            of,
            whole,
        }
    }
}

/// The hunks of the change `session`'s approval covers (its base to the approved commit): a
/// session hunk that stands whole in one of them was shown and approved, and landing it is
/// no copy of the unapproved rest (such as the commits a rebase left behind).
pub fn approved_change(
    gate: &Gate<'_>,
    session: &SessionLine,
    approved: ObjectId,
) -> anyhow::Result<Vec<Hunk>> {
    let Some(base) = session.base else {
        return Ok(Vec::new());
    };
    let diffs = gate.git.hunks(
        gate.cwd,
        &[DiffOf::Pair {
            from: base,
            to: approved,
        }],
    )?;
    Ok(diffs.into_iter().flatten().collect())
}
