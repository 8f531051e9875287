//! The `merges` check: what a killed `session merge` left. The replay worktree of a rebase is
//! removed here when no git-codex command runs (the state lock is free); a merge or squash of
//! a session's tip stopped in a person's worktree, or the files of a landing killed before it
//! moved the branch, are named with the command that clears them.

use super::{Check, check};
use crate::commands::session::half_landing;
use crate::commands::session::merge::{clear_replays, describe_unfinished};
use crate::context::Ctx;
use crate::git::worktrees::admin_entries;
use crate::state::SessionRecord;

pub fn merges_check(ctx: &Ctx) -> Check {
    let mut cleared = Vec::new();
    if ctx.state.is_initialized()
        && let Ok(Some(_lock)) = ctx.state.try_lock()
    {
        match clear_replays(ctx) {
            Ok(paths) => cleared = paths,
            Err(err) => {
                return check(
                    "merges",
                    "fail",
                    format!("cannot remove the replay worktree a killed merge left: {err:#}"),
                    Some(
                        "remove it with 'git worktree remove --force PATH' ('git worktree list' shows it)",
                    ),
                );
            }
        }
    }
    let records = ctx
        .state
        .records()
        .map(|(records, _)| records)
        .unwrap_or_default();
    // A merge at work now is not half done.
    if !ctx.state.is_busy()
        && let Some(found) = records.iter().find_map(|r| half_landed(ctx, r))
    {
        return found;
    }
    let tips: Vec<(String, String)> = records
        .into_iter()
        .filter_map(|r| {
            let tip = ctx
                .reader
                .ref_target(&format!("refs/heads/{}", r.branch))
                .ok()??;
            Some((tip.to_string(), r.id))
        })
        .collect();
    let session_of = |head: &str| {
        tips.iter()
            .find(|(tip, _)| tip == head)
            .map(|(_, id)| id.clone())
    };
    let linked = admin_entries(&ctx.paths.common_dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.worktree)
        .filter(|wt| wt.is_dir() && !ctx.git.is_agents(wt));
    for wt in std::iter::once(ctx.paths.main_root.clone()).chain(linked) {
        let Ok(Some(found)) = ctx.git.unfinished_merge(&wt) else {
            continue;
        };
        let head = match &found {
            crate::git::merge_leftovers::Unfinished::Merge { head, .. }
            | crate::git::merge_leftovers::Unfinished::Squash { head, .. } => head,
        };
        // A merge of the person's own is not a leftover.
        if session_of(head).is_none() {
            continue;
        }
        let (detail, hint) = describe_unfinished(&wt, &found, session_of);
        return check("merges", "warn", detail, Some(&hint));
    }
    if cleared.is_empty() {
        return check("merges", "ok", "no merge was left half done", None);
    }
    let paths: Vec<String> = cleared.iter().map(ToString::to_string).collect();
    check(
        "merges",
        "ok",
        format!(
            "removed the replay worktree(s) killed merges left: {}",
            paths.join(", ")
        ),
        None,
    )
}

/// What a landing of `record`'s session killed halfway left in its target's checkout, with
/// the command that lands it whole (keeping the person's changes there).
fn half_landed(ctx: &Ctx, record: &SessionRecord) -> Option<Check> {
    let (detail, hint) = half_landing::describe(ctx, record).ok()??;
    Some(check("merges", "warn", detail, Some(&hint)))
}
