//! Where the session's branch goes when a confined run settles. Inside the run the agent's
//! HEAD is detached (its branch is read-only there), so git cannot move the branch for it:
//! settling does, as git would have elsewhere. A commit, a merge, a rebase, an amend or a
//! reset (issue 15: "a rebased session is still the same session") carries the branch to
//! the agent's HEAD; a checkout of another commit (to look at it) leaves the branch, and so
//! does a rebase or sequence the agent left stopped midway (its state is not kept: see
//! `admin`). Only the session's own branch ever moves, and never onto a commit another ref of
//! the person's holds that the branch did not: the commits a rewrite leaves behind are
//! recorded in the session's ledger first, so nothing hides from the gate.

use camino::Utf8Path;
use gix::ObjectId;

use crate::context::Ctx;
use crate::git::refs::RefUpdate;

/// The most of a HEAD reflog read to tell how the run moved HEAD; past it, the branch follows
/// only forward.
const MAX_REFLOG: u64 = 16 * 1024 * 1024;

/// What the settle knows of the run, besides where its HEAD ended.
pub struct Run<'a> {
    pub id: &'a str,
    pub branch: &'a str,
    pub worktree: &'a Utf8Path,
    /// The agent left a rebase, `am` or sequence stopped midway (not kept).
    pub stopped_midway: bool,
    /// The person's HEAD reflog of the worktree before the run's was mirrored back; `None`
    /// when it could not be read as a plain file of a sane size.
    pub reflog_before: Option<Vec<u8>>,
    /// Whether the worktree's HEAD was on the branch when the run started.
    pub started_on_branch: bool,
}

/// The person's HEAD reflog in `admin`, read before the agent's replaces it.
pub fn reflog(admin: &Utf8Path) -> Option<Vec<u8>> {
    bounded(&admin.join("logs/HEAD"))
}

/// A reflog's bytes: empty when there is none; `None` when it is no plain file, or too big
/// to read.
fn bounded(path: &Utf8Path) -> Option<Vec<u8>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
        Err(_) => return None,
    };
    if !meta.is_file() || meta.len() > MAX_REFLOG {
        return None;
    }
    crate::state::read_regular_file(path).ok().flatten()
}

/// Whether the agent's HEAD, at the end of `run`, is still "on" the branch as git would see
/// it: the run started there, and the last checkout it made (`checkout: moving from A to B`
/// in the HEAD reflog of its `view`) went back to the branch. `None` when the agent's reflog
/// does not continue the person's (it rewrote it): nothing tells.
fn still_on_branch(run: &Run<'_>, view: &Utf8Path) -> Option<bool> {
    let before = run.reflog_before.as_deref()?;
    let after = bounded(&view.join("logs/HEAD"))?;
    let added = after.strip_prefix(before)?;
    let full = format!("refs/heads/{}", run.branch);
    let mut on = run.started_on_branch;
    for line in String::from_utf8_lossy(added).lines() {
        let message = line.split_once('\t').map_or("", |(_, m)| m);
        if let Some(moved) = message.strip_prefix("checkout: moving from ") {
            let to = moved.rsplit_once(" to ").map_or("", |(_, to)| to);
            on = to == run.branch || to == full;
        }
    }
    Some(on)
}

/// Why the branch does not follow the agent's `head`, which is no fast-forward of `tip`;
/// `None` when it does.
fn why_not(
    ctx: &Ctx,
    run: &Run<'_>,
    view: &Utf8Path,
    head: ObjectId,
    tip: ObjectId,
) -> anyhow::Result<Option<&'static str>> {
    if run.stopped_midway {
        return Ok(Some("where it stopped a rebase or sequence midway"));
    }
    match still_on_branch(run, view) {
        Some(true) => {}
        Some(false) => return Ok(Some("a commit it checked out")),
        None => return Ok(Some("its HEAD reflog does not say how it got there")),
    }
    let branch_ref = format!("refs/heads/{}", run.branch);
    let in_history = ctx.reader.count_exclusive(head, &[tip])? == 0;
    if !in_history {
        // A commit of the person's the agent merely names (`reset --hard feature`) stays the
        // person's: the session does not take it in by its branch.
        let others = ctx.reader.ref_tips_except(&[branch_ref])?;
        if ctx.reader.count_exclusive(head, &others)? == 0 {
            return Ok(Some("a commit another ref of yours holds"));
        }
    }
    Ok(None)
}

/// Moves the session's branch from `tip` to the agent's `head`. Returns a note for the
/// person when that is a rewrite (no fast-forward); `Err` carries the warning when the branch
/// stays (the caller leaves the worktree detached at `head`).
pub fn follow(
    ctx: &Ctx,
    run: &Run<'_>,
    view: Option<&Utf8Path>,
    head: ObjectId,
    tip: ObjectId,
) -> anyhow::Result<Result<Option<String>, String>> {
    let forward = ctx.reader.count_exclusive(tip, &[head])? == 0;
    let short = |id: ObjectId| id.to_string()[..12].to_string();
    let (id, branch, wt) = (run.id, run.branch, run.worktree);
    if !forward {
        let why = match view {
            Some(view) => why_not(ctx, run, view, head, tip)?,
            None => Some("which does not build on it"),
        };
        if let Some(why) = why {
            return Ok(Err(format!(
                "git-codex: session '{id}' left HEAD at {} in its worktree ({why}); its branch {branch} stays at {}: 'git -C {wt} switch {branch}' goes back to it, 'git -C {wt} checkout -B {branch}' moves it there (review needs the worktree on its branch)",
                short(head),
                short(tip)
            )));
        }
        // What the branch leaves behind stays the session's before it moves.
        crate::gate::record::record_tips(ctx, id, &[tip, head])?;
    }
    ctx.git.update_refs(
        &ctx.paths.main_root,
        &[RefUpdate::Set {
            name: format!("refs/heads/{branch}"),
            new: head.to_string(),
            old: Some(tip.to_string()),
        }],
    )?;
    Ok(Ok((!forward).then(|| {
        format!(
            "git-codex: session '{id}' rewrote its branch {branch} (a rebase, an amend or a reset): it moved from {} to {}; the commits it left behind stay the session's (its ledger)",
            short(tip),
            short(head)
        )
    })))
}
