//! Where a session's own commits start now (issue 15, point 6). A session rebased onto a newer
//! protected tip, or that merged one, is still the same session: its commits are those it
//! made, not the protected branch's. So its base moves forward to the newest commit of a
//! protected branch that its tip contains — only by the person's protected branches (the refs
//! the gate guards), never by a ref an agent can write (a remote-tracking ref, a tag), and
//! never past a commit the session's ledger recorded as its own that its approval does not
//! contain (an agent's commit put on main past the gate stays in the review that approves it).

use std::collections::HashSet;

use gix::ObjectId;

use crate::context::Ctx;
use crate::git::ledger;
use crate::review::approval::{self, ApprovalState};
use crate::state::SessionRecord;

/// The commit session `record`'s commits start from now that its branch is at `tip`: its first
/// base (the ledger's, as the gate reads it, else the record's), moved forward as above.
pub fn current(ctx: &Ctx, record: &SessionRecord, tip: ObjectId) -> anyhow::Result<ObjectId> {
    let recorded = ObjectId::from_hex(record.base_commit.as_bytes())?;
    // A session with no commit yet (`list` of many fresh sessions reads nothing more).
    if tip == recorded {
        return Ok(recorded);
    }
    let ledger = ledger::of(&ctx.reader.repo, &record.id)?;
    let first = ledger.as_ref().and_then(|l| l.base).unwrap_or(recorded);
    if tip == first {
        return Ok(first);
    }
    let protected = super::protected_tips(ctx)?;
    if !holds_protected_commits(ctx, first, tip, &protected)? {
        return Ok(first);
    }
    for candidate in candidates(ctx, first, tip, &protected)? {
        if !hides_unapproved(ctx, record, ledger.as_ref(), first, candidate, tip)? {
            return Ok(candidate);
        }
    }
    Ok(first)
}

/// Whether `tip` holds commits of a protected branch past `first`: only then can the base
/// move. Two walks of the session's own commits, before any merge base is looked for.
fn holds_protected_commits(
    ctx: &Ctx,
    first: ObjectId,
    tip: ObjectId,
    protected: &[ObjectId],
) -> anyhow::Result<bool> {
    if protected.is_empty() {
        return Ok(false);
    }
    let all = ctx.reader.count_exclusive(tip, &[first])?;
    let mut hidden = protected.to_vec();
    hidden.push(first);
    Ok(ctx.reader.count_exclusive(tip, &hidden)? < all)
}

/// Where `tip` meets each protected branch, when that is past `first` (the base only moves
/// forward), nearest to the tip first.
fn candidates(
    ctx: &Ctx,
    first: ObjectId,
    tip: ObjectId,
    protected: &[ObjectId],
) -> anyhow::Result<Vec<ObjectId>> {
    let mut found: Vec<(usize, ObjectId)> = Vec::new();
    for branch in protected {
        let Some(meet) = ctx
            .reader
            .repo
            .merge_base(tip, *branch)
            .ok()
            .flatten()
            .map(|id| id.detach())
        else {
            continue;
        };
        if meet == first
            || found.iter().any(|(_, known)| *known == meet)
            || ctx.reader.count_exclusive(first, &[meet])? > 0
        {
            continue;
        }
        found.push((ctx.reader.count_exclusive(tip, &[meet])?, meet));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, meet)| meet).collect())
}

/// Whether moving the base from `first` to `candidate` would take out of the session a commit
/// its ledger recorded as made in it, which its approval does not contain.
fn hides_unapproved(
    ctx: &Ctx,
    record: &SessionRecord,
    ledger: Option<&ledger::Ledger>,
    first: ObjectId,
    candidate: ObjectId,
    tip: ObjectId,
) -> anyhow::Result<bool> {
    let Some(ledger) = ledger else {
        return Ok(false);
    };
    let recorded: Vec<ObjectId> = ledger
        .tips
        .iter()
        .filter(|c| !ledger.chain.contains(*c))
        .copied()
        .collect();
    // The recorded commits the candidate reaches and the first base does not.
    let past_candidate: HashSet<ObjectId> = ctx
        .reader
        .commits_from(&recorded, &[candidate])?
        .into_iter()
        .collect();
    let past_first: HashSet<ObjectId> = ctx
        .reader
        .commits_from(&recorded, &[first])?
        .into_iter()
        .collect();
    let hidden: Vec<ObjectId> = recorded
        .into_iter()
        .filter(|c| past_first.contains(c) && !past_candidate.contains(c))
        .collect();
    if hidden.is_empty() {
        return Ok(false);
    }
    let approved = match approval::state(&ctx.reader, &record.id, tip, ctx.signers().as_ref())? {
        ApprovalState::Approved(v) | ApprovalState::Stale(v) => v.commit_id(),
        _ => None,
    };
    let Some(approved) = approved else {
        return Ok(true);
    };
    let covered: HashSet<ObjectId> = ctx
        .reader
        .commits_between(approved, &[first])?
        .into_iter()
        .collect();
    Ok(hidden.iter().any(|c| !covered.contains(c)))
}
