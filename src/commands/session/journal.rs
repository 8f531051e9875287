//! Finishing what a killed command left (issue: killed at any moment, nothing is lost). Each
//! multi-step operation writes its intent first (`state::journal`); the next git-codex command
//! that takes the state lock replays it: a removal is finished, an add or restore that never
//! wrote its record is rolled back (its worktree goes to the trash, whole; a branch it made and
//! nothing moved is deleted), so `restore` or `add` can simply be run again. Nothing here ever
//! snapshots a tree that was half-way through a move, and nothing is deleted that the intent
//! does not prove git-codex made.

use camino::Utf8Path;

use super::moves;
use super::remove::{Target, remove_dir_if_exists, remove_session, settle};
use super::trash;
use crate::context::Ctx;
use crate::gate::base_ref;
use crate::git::read::worktree_state;
use crate::output;
use crate::state::StateLock;
use crate::state::journal::{Intent, Op};

/// Takes the state lock, then finishes what killed commands left. Every mutating session
/// command locks through here.
pub fn lock(ctx: &Ctx) -> anyhow::Result<StateLock> {
    let lock = ctx.state.lock()?;
    replay(ctx);
    Ok(lock)
}

/// For the commands that only read (list, show): when a killed command left an intent and no
/// command is at work (the lock is free), finishes it first, so that what they show is whole.
/// Costs one directory read when nothing was left; never fails.
pub fn finish_left(ctx: &Ctx) {
    if ctx.state.pending().is_ok_and(|p| p.is_empty()) {
        return;
    }
    if let Ok(Some(_lock)) = ctx.state.try_lock() {
        replay(ctx);
    }
}

/// Starts an operation: stale lock files on the refs it writes go (a git killed with an earlier
/// command left them), then its intent is written.
pub fn begin(ctx: &Ctx, intent: &Intent) -> anyhow::Result<()> {
    clear_locks(ctx);
    ctx.state.write_intent(intent)
}

/// Finishes or rolls back every interrupted operation; the caller holds the lock. Never fails:
/// what cannot be finished is a warning, its intent stays, and `doctor` names it.
pub fn replay(ctx: &Ctx) {
    if let Err(err) = super::merge::clear_replays(ctx) {
        output::warning(&format!(
            "cannot remove the replay worktree a killed merge left: {err:#}"
        ));
    }
    if let Err(err) = trash::finish_deletions(&ctx.paths.common_dir) {
        output::warning(&format!(
            "cannot finish deleting old trash entries: {err:#}"
        ));
    }
    for temp in ctx.state.stale_temps() {
        match fs_err::remove_file(&temp) {
            Ok(()) => output::note(&format!(
                "Deleted {temp}, a killed git-codex's unfinished write"
            )),
            Err(err) => output::warning(&format!("cannot delete {temp}: {err}")),
        }
    }
    let Ok(pending) = ctx.state.pending() else {
        return;
    };
    // What the killed command started (a git `worktree add` started, a hook) may still be at
    // work: it ends first, or the replay waits for a later command.
    if !pending.is_empty()
        && !crate::git::orphans::wait_for_orphans(
            &[
                ctx.paths.main_root.clone(),
                ctx.paths.common_dir.clone(),
                ctx.worktree_base(),
            ],
            crate::git::orphans::WAIT,
        )
    {
        output::warning(
            "a git started by a killed git-codex command still runs: what that command left is finished by a later one",
        );
        return;
    }
    if !pending.is_empty() {
        clear_locks(ctx);
    }
    for pending in pending {
        let Ok(intent) = pending.intent else {
            continue;
        };
        let done = match intent.op {
            Op::Remove => finish_remove(ctx, &intent),
            Op::Add | Op::Restore => undo_create(ctx, &intent),
        };
        match done.and_then(|()| ctx.state.drop_intent(&intent.id)) {
            Ok(()) => {}
            Err(err) => output::warning(&format!(
                "cannot finish the interrupted {} of session '{}': {err:#}",
                intent.op.as_str(),
                intent.id
            )),
        }
    }
}

/// The lock files a git killed with the command left (on the refs it writes, the repository's
/// index), which git refuses to get past: moved to the trash when provably stale (see
/// `stale_locks`).
fn clear_locks(ctx: &Ctx) {
    if let Err(err) = super::stale_locks::clear_main(&ctx.paths) {
        output::warning(&format!("cannot move stale git locks aside: {err:#}"));
    }
}

/// A removal killed halfway is carried to its end: the worktree whole in the trash, the branch
/// kept or deleted as it would have been, the record gone.
fn finish_remove(ctx: &Ctx, intent: &Intent) -> anyhow::Result<()> {
    let common = &ctx.paths.common_dir;
    let target = Target {
        id: intent.id.clone(),
        branch: intent.branch.clone(),
        worktree: intent.worktree.clone(),
        copied_files: intent.copied_files.clone(),
    };
    // The trash entries this removal made: one holding the worktree means the move got that
    // far, and what is left at the old path (a cross-filesystem move deleting its source) is
    // never snapshotted over the saved work.
    let mut moved = false;
    for entry in trash::entries(common)?.into_iter().filter(|e| {
        e.meta.as_ref().is_some_and(|m| {
            m.id == intent.id && m.worktree == intent.worktree && m.removed >= intent.started
        })
    }) {
        let saved = entry.worktree();
        moves::drop_staging(&saved)?;
        if fs_err::symlink_metadata(&saved).is_ok_and(|m| m.is_dir()) {
            if fs_err::symlink_metadata(&intent.worktree).is_ok() {
                moves::finish_move(&intent.worktree, &saved)?;
            }
            trash::complete(common, &entry.dir, &intent.worktree, None)?;
            moved = true;
        } else {
            // Made, but the worktree never reached it: only its meta.json.
            trash::delete_entry(&entry.dir)?;
        }
    }
    let mut doomed = Vec::new();
    let removed = if !ctx.state.record_path(&intent.id).is_file() {
        // The record went: what is left is the branch's fate (deleted when merged, in the
        // transaction the killed command never ran) and the scratch dirs.
        settle(ctx, &target, intent.keep_branch, &mut doomed, None)?
    } else if moved {
        if fs_err::symlink_metadata(&intent.worktree).is_ok() {
            output::warning(&format!(
                "{} still holds what differs from its copy in the trash: look at it",
                intent.worktree
            ));
        }
        settle(ctx, &target, intent.keep_branch, &mut doomed, None)?
    } else {
        remove_session(ctx, &target, intent.keep_branch, &mut doomed)?
    };
    ctx.git.delete_refs(&ctx.paths.main_root, &doomed)?;
    output::note(&format!(
        "Finished the interrupted removal of session '{}'",
        intent.id
    ));
    for line in super::remove::describe(&target, &removed) {
        output::note(&line);
    }
    Ok(())
}

/// An add or restore killed before it wrote its record is rolled back. Its worktree goes to
/// the trash: whole when it came from there (and `restore` takes it again), else marked
/// interrupted (a checkout half-written, which `restore` never takes). A branch it made that
/// nothing moved goes; the snapshot ref is never touched.
fn undo_create(ctx: &Ctx, intent: &Intent) -> anyhow::Result<()> {
    if ctx.state.record_path(&intent.id).is_file() {
        return Ok(()); // The record is its last step: it finished.
    }
    let common = &ctx.paths.common_dir;
    let worktree = &intent.worktree;
    // Only what an add or restore makes is touched: the session's own path under the
    // worktree base, and an entry directly in the trash.
    if *worktree != ctx.worktree_base().join(format!("wt-{}", intent.id)) {
        anyhow::bail!("its worktree {worktree} is not where git-codex makes one; look at it");
    }
    if let Some(dir) = &intent.entry
        && (dir.parent() != Some(trash::root(common).as_path())
            || dir.file_name().is_none_or(|n| n.starts_with('.')))
    {
        anyhow::bail!("its trash entry {dir} is not in the trash; look at it");
    }
    moves::drop_staging(worktree)?;
    let mut whole = false;
    if let Some(dir) = &intent.entry {
        let saved = dir.join("worktree");
        moves::drop_staging(&saved)?;
        if fs_err::symlink_metadata(&saved).is_ok_and(|m| m.is_dir()) {
            if holds_only_git_file(worktree) {
                // Made by git for the tree to move into, which is still in the trash.
                fs_err::remove_dir_all(worktree)?;
            } else if fs_err::symlink_metadata(worktree).is_ok() {
                moves::finish_move(&saved, worktree)?;
            }
            trash::drop_gitdir_file(&saved)?;
        }
        whole = fs_err::symlink_metadata(&saved).is_err();
    }
    if fs_err::symlink_metadata(worktree).is_ok() {
        let base = ctx.worktree_base();
        if let Some(proof) = trash::prove(&ctx.paths, &base, worktree, true)? {
            let head = worktree_state(worktree).ok().and_then(|s| s.head);
            let why = (!whole).then(|| format!("interrupted {}", intent.op.as_str()));
            let entry = trash::discard(
                common,
                &proof,
                &intent.id,
                &intent.branch,
                head,
                &intent.copied_files,
                why.as_deref(),
            )?;
            output::note(&format!(
                "Rolled back the interrupted {} of session '{}': its worktree is in the trash ({entry})",
                intent.op.as_str(),
                intent.id
            ));
        }
    } else {
        super::modules::forget(common, worktree, &intent.id)?;
    }
    if let Some(dir) = &intent.entry
        && dir.is_dir()
        && whole
    {
        let entry = trash::Entry {
            dir: dir.clone(),
            meta: None,
        };
        let _ = trash::drop_taken(&entry)?;
    }
    drop_half_made_admin(common, worktree)?;
    drop_new_branch(ctx, intent)?;
    remove_dir_if_exists(&ctx.state.tmp_dir(&intent.id))?;
    remove_dir_if_exists(&ctx.state.scratch_dir(&intent.id))
}

/// A `git worktree add` killed early leaves git's admin dir for the worktree half made (its
/// `locked` saying "initializing", no `gitdir` or `commondir` yet), and `git rev-list --all`,
/// `gc` and `fsck` then fail on it. Dropped when it is named for `worktree` (as git names it:
/// the dir's name, maybe a number after) and names no other worktree.
fn drop_half_made_admin(common: &Utf8Path, worktree: &Utf8Path) -> anyhow::Result<()> {
    let Some(name) = worktree.file_name() else {
        return Ok(());
    };
    let Ok(list) = fs_err::read_dir(common.join("worktrees")) else {
        return Ok(());
    };
    for item in list.flatten() {
        let entry = item.file_name();
        let Some(entry) = entry.to_str() else {
            continue;
        };
        let named = entry
            .strip_prefix(name)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()));
        let admin = common.join("worktrees").join(entry);
        if !named || !item.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let gitdir = crate::state::read_regular_file(&admin.join("gitdir"))
            .ok()
            .flatten();
        let ours = gitdir
            .as_deref()
            .is_none_or(|g| String::from_utf8_lossy(g).trim() == worktree.join(".git").as_str());
        let half_made = gitdir.is_none() || !admin.join("commondir").is_file();
        if ours && half_made && !crate::git::worktrees::holds_modules(&admin) {
            fs_err::remove_dir_all(&admin)?;
        }
    }
    Ok(())
}

/// Whether `dir` holds nothing but the `.git` file git wrote there (or nothing at all).
fn holds_only_git_file(dir: &Utf8Path) -> bool {
    if !fs_err::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return false;
    }
    fs_err::read_dir(dir).is_ok_and(|list| {
        list.flatten()
            .all(|c| c.file_name() == ".git" && c.file_type().is_ok_and(|t| t.is_file()))
    })
}

/// Deletes the branch an interrupted add or restore made, with its base ref, when it is
/// still where it was made (nothing was committed to it).
fn drop_new_branch(ctx: &Ctx, intent: &Intent) -> anyhow::Result<()> {
    let Some(start) = &intent.new_branch_at else {
        return Ok(());
    };
    let full = format!("refs/heads/{}", intent.branch);
    match ctx.reader.ref_target(&full)? {
        Some(tip) if start.parse::<gix::ObjectId>().ok() == Some(tip) => {
            let mut doomed = vec![(full, start.clone())];
            if let Some(base) = ctx.reader.ref_target(&base_ref(&intent.id))? {
                doomed.push((base_ref(&intent.id), base.to_string()));
            }
            ctx.git.delete_refs(&ctx.paths.main_root, &doomed)
        }
        Some(_) => {
            output::warning(&format!(
                "kept branch {} of the interrupted {}: it moved since",
                intent.branch,
                intent.op.as_str()
            ));
            Ok(())
        }
        None => Ok(()),
    }
}
