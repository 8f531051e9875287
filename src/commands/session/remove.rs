//! `git codex session remove <id>`, and the removal every other command uses: snapshot
//! uncommitted work first, remove the worktree, delete the branch only when it is merged.

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;

use super::trash;
use crate::cli::SessionRemoveArgs;
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::base_ref;
use crate::git::Git;
use crate::git::read::{RepoPaths, worktree_state};
use crate::git::snapshot::snapshot_ref;
use crate::git::worktrees::is_locked;
use crate::output::{self, escape};
use crate::sandbox::{confine, process};
use crate::state::journal::{Intent, Op};
use crate::state::{SessionRecord, id};

/// What a removal works on. Built from the record, or from the naming conventions when the
/// record is corrupt, so a broken session can still be cleaned up.
pub struct Target {
    pub id: String,
    pub branch: String,
    pub worktree: Utf8PathBuf,
    /// Files `copy_files` put in the worktree: kept with it in the trash.
    pub copied_files: Vec<String>,
}

impl From<&SessionRecord> for Target {
    fn from(record: &SessionRecord) -> Self {
        Target {
            id: record.id.clone(),
            branch: record.branch.clone(),
            worktree: record.worktree.clone(),
            copied_files: record.copied_files.clone(),
        }
    }
}

impl Target {
    pub fn full_branch(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// Where a session of this id would live, by convention.
    pub fn by_convention(ctx: &Ctx, id: &str) -> Target {
        Target {
            id: id.to_string(),
            branch: format!("{}{id}", ctx.config.branch_prefix),
            worktree: ctx.worktree_base().join(format!("wt-{id}")),
            copied_files: Vec::new(),
        }
    }
}

/// What happened to a session's work and branch.
#[derive(Debug, Default)]
pub struct Removed {
    pub snapshot: Option<String>,
    pub branch_deleted: bool,
    /// Commits of the kept branch that are on no other branch.
    pub branch_kept_commits: usize,
    /// The trash entry the worktree went to, whole.
    pub trash: Option<Utf8PathBuf>,
}

pub fn run(args: SessionRemoveArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    // A remove that was killed half-way left its intent, which the lock's replay finishes:
    // run again, the remove has then done what was asked.
    let was_begun = ctx.state.pending().is_ok_and(|pending| {
        pending.iter().any(|p| {
            p.intent
                .as_ref()
                .is_ok_and(|i| i.id == id.as_str() && i.op == Op::Remove)
        })
    });
    let _lock = super::journal::lock(&ctx)?;
    if was_begun && !ctx.state.record_path(id.as_str()).exists() {
        output::note(&format!(
            "Removed session '{id}': a killed remove had begun it; 'git codex session restore {id}' brings it back"
        ));
        return Ok(());
    }
    let target = match ctx.state.record(&id) {
        Ok(record) => {
            stop_agent(&record, args.force)?;
            Target::from(&record)
        }
        Err(err) if ctx.state.record_path(id.as_str()).is_file() => {
            output::warning(&format!("{err:#}; removing by convention"));
            Target::by_convention(&ctx, id.as_str())
        }
        Err(err) => return Err(err),
    };
    if !args.force && is_locked(&target.worktree, &ctx.paths.common_dir) {
        return Err(UserError::refused(format!(
            "the worktree of session '{id}' is locked ({})",
            target.worktree
        ))
        .hint(format!(
            "unlock it with 'git worktree unlock {}', or pass --force",
            target.worktree
        ))
        .into());
    }
    let mut doomed = Vec::new();
    let removed = remove_session(&ctx, &target, args.keep_branch, &mut doomed)?;
    ctx.git.delete_refs(&ctx.paths.main_root, &doomed)?;
    ctx.state.drop_intent(id.as_str())?;
    output::note(&format!("Removed session '{id}' ({})", target.worktree));
    for line in describe(&target, &removed) {
        output::note(&line);
    }
    Ok(())
}

/// What a removal did, as lines for people.
pub fn describe(target: &Target, removed: &Removed) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(snapshot) = &removed.snapshot {
        lines.push(format!(
            "Saved uncommitted work to {} ({}); bring it back with 'git codex session restore {}'",
            snapshot_ref(&target.id),
            &snapshot[..snapshot.len().min(12)],
            target.id
        ));
    }
    if let Some(trash) = &removed.trash {
        lines.push(format!(
            "Moved the worktree whole to {trash}; 'git codex session restore {}' brings it back",
            target.id
        ));
    }
    if removed.branch_deleted {
        lines.push(format!(
            "Deleted branch {} (merged)",
            escape::quote(&target.branch)
        ));
    } else if removed.branch_kept_commits > 0 {
        lines.push(format!(
            "Kept branch {}: {} commit(s) are on no other branch",
            escape::quote(&target.branch),
            removed.branch_kept_commits
        ));
    }
    lines
}

/// Removes a session; the caller holds the lock and deletes the refs pushed to `doomed` in
/// one transaction. Work is never lost: a failed snapshot stops the removal before anything
/// is deleted, and a branch is doomed only when its commits are on a branch not doomed.
pub fn remove_session(
    ctx: &Ctx,
    target: &Target,
    keep_branch: bool,
    doomed: &mut Vec<(String, String)>,
) -> anyhow::Result<Removed> {
    // A killed merge of it kept the person's changes aside: they go back first, never
    // stranded in a ref no record names.
    if let Ok(record) = ctx.state.record(&crate::state::id::parse(&target.id)?)
        && let Some(begun) = record.landing.as_ref().filter(|l| l.kept.is_some())
        && let Some(wt) = ctx
            .git
            .worktree_with_branch(&ctx.paths.main_root, &begun.target)?
    {
        super::half_landing::bring_back_kept(ctx, &wt, &record)?;
    }
    intend_removal(ctx, target, keep_branch)?;
    let saved = prepare_removal(ctx, target).and_then(|tip| {
        let scratch = ctx.state.scratch_dir(&target.id);
        let base = ctx.worktree_base();
        save_and_remove_worktree(&ctx.git, &ctx.paths, &base, target, tip, &scratch, true)
    });
    let (snapshot, trash) = match saved {
        Ok(saved) => saved,
        Err(err) => {
            // A failure said so and left the session as it was: nothing for a later command
            // to finish (the journal is for kills).
            let _ = ctx.state.drop_intent(&target.id);
            return Err(err);
        }
    };
    let mut removed = settle(ctx, target, keep_branch, doomed, snapshot)?;
    removed.trash = trash;
    Ok(removed)
}

/// What comes before a session's worktree is saved and moved: a confined run whose git-codex
/// was killed has its commits join the branch, and everything the session had is recorded
/// before its worktree's reflog goes. Returns the branch's tip.
pub fn prepare_removal(ctx: &Ctx, target: &Target) -> anyhow::Result<Option<ObjectId>> {
    if let Some(warning) =
        confine::settle_locked(ctx, &target.id, &target.branch, &target.worktree)?
    {
        output::warning(&warning);
    }
    crate::gate::record::observe_id(ctx, &target.id)?;
    ctx.reader.ref_target(&target.full_branch())
}

/// Writes that session `target` is being removed, before anything of it changes: a removal
/// killed halfway is finished by the next git-codex command (see `journal`). Dropped once the
/// refs the removal dooms are deleted.
pub fn intend_removal(ctx: &Ctx, target: &Target, keep_branch: bool) -> anyhow::Result<()> {
    super::journal::begin(
        ctx,
        &Intent {
            op: Op::Remove,
            id: target.id.clone(),
            branch: target.branch.clone(),
            worktree: target.worktree.clone(),
            started: jiff::Timestamp::now(),
            new_branch_at: None,
            entry: None,
            keep_branch,
            copied_files: target.copied_files.clone(),
        },
    )
}

/// The first half of a removal, safe to run for many sessions at once: prove the worktree is
/// ours, save the work to the snapshot ref, then move the worktree whole to the trash.
/// `branch_tip` is where the session branch pointed; `recorded` says a session record names
/// the worktree. Returns the snapshot and the trash entry.
pub fn save_and_remove_worktree(
    git: &Git,
    paths: &RepoPaths,
    base: &Utf8Path,
    target: &Target,
    branch_tip: Option<ObjectId>,
    scratch: &Utf8Path,
    recorded: bool,
) -> anyhow::Result<(Option<String>, Option<Utf8PathBuf>)> {
    let Some(proof) = trash::prove(paths, base, &target.worktree, recorded)? else {
        // Gone already: drop git's entry for it (into the trash, with a note, when it holds
        // submodules' git dirs).
        super::modules::forget(&paths.common_dir, &target.worktree, &target.id)?;
        return Ok((None, None));
    };
    let session = super::stale_locks::Session {
        id: &target.id,
        worktree: &target.worktree,
        agent: None,
    };
    // A killed git's locks there would fail the snapshot's git.
    super::stale_locks::clear_session(paths, &session)?;
    let proof = match proof.admin {
        Some(_) => proof,
        None => relink(paths, base, target, recorded)?.unwrap_or(proof),
    };
    // Where the worktree was, for restore: its HEAD, else (unreadable) the branch's tip.
    let head = worktree_state(&target.worktree)
        .ok()
        .and_then(|s| s.head)
        .or(branch_tip);
    // Without its admin dir git would find another repository above it: the trash alone keeps
    // the tree, whole.
    let snapshot = match proof.admin {
        Some(_) => snapshot_if_needed(git, target, branch_tip, scratch)?,
        None => None,
    };
    let entry = trash::discard(
        &paths.common_dir,
        &proof,
        &target.id,
        &target.branch,
        head,
        &target.copied_files,
        None,
    )?;
    Ok((snapshot, Some(entry)))
}

/// A worktree whose `.git` file is gone (a deletion killed halfway, or a person) while git
/// still has its admin dir gets the file back, so that its work can be snapshotted with its
/// index: the proof again, or `None` when git has no admin dir for it.
fn relink(
    paths: &RepoPaths,
    base: &Utf8Path,
    target: &Target,
    recorded: bool,
) -> anyhow::Result<Option<trash::Proof>> {
    let dot_git = target.worktree.join(".git");
    if fs_err::symlink_metadata(&dot_git).is_ok() {
        return Ok(None);
    }
    let Some(admin) = crate::git::worktrees::admin_entries(&paths.common_dir)?
        .into_iter()
        .find(|e| e.worktree.as_deref() == Some(target.worktree.as_path()))
    else {
        return Ok(None);
    };
    let mut file = crate::state::create_fresh(&dot_git)?;
    std::io::Write::write_all(
        &mut file,
        format!("gitdir: {}\n", admin.admin_dir).as_bytes(),
    )?;
    output::note(&format!(
        "{} had lost its .git file; it names git's admin dir {} again",
        target.worktree, admin.admin_dir
    ));
    trash::prove(paths, base, &target.worktree, recorded)
}

/// A live agent's session is not removed under it (exit 3); with `--force` its processes are
/// stopped first (SIGTERM, then SIGKILL).
fn stop_agent(record: &SessionRecord, force: bool) -> anyhow::Result<()> {
    let Some(agent) = record.agent.as_ref().filter(|a| a.is_alive()) else {
        return Ok(());
    };
    if !force {
        return Err(UserError::refused(format!(
            "session '{}' runs an agent (pid {}, {:?}): it is not removed under it",
            record.id, agent.pid, agent.command
        ))
        .hint("wait for the agent to end, or pass --force to stop it (its commits are kept, its work snapshotted)")
        .into());
    }
    output::note(&format!(
        "Stopping the agent of session '{}' (pid {})",
        record.id, agent.pid
    ));
    if !process::stop(agent.pid, agent.start_ticks) {
        return Err(UserError::runtime(format!(
            "the agent of session '{}' (pid {}) did not stop",
            record.id, agent.pid
        ))
        .hint("nothing was removed; stop it yourself and try again")
        .into());
    }
    Ok(())
}

/// The second half, one session at a time: the branch's fate, the record and the tmp dir.
pub fn settle(
    ctx: &Ctx,
    target: &Target,
    keep_branch: bool,
    doomed: &mut Vec<(String, String)>,
    snapshot: Option<String>,
) -> anyhow::Result<Removed> {
    let mut removed = Removed {
        snapshot,
        ..Removed::default()
    };
    let full_branch = target.full_branch();
    if let Some(tip) = ctx.reader.ref_target(&full_branch)? {
        // Merged means on a branch that is not a session's: being carried by another
        // session's branch (one started from this one) is not being merged.
        let mut excluded: Vec<String> = doomed.iter().map(|(name, _)| name.clone()).collect();
        excluded.push(full_branch.clone());
        excluded.extend(session_branches(ctx)?);
        let others = ctx.reader.branch_tips_except(&excluded)?;
        let unmerged = ctx.reader.count_exclusive(tip, &others)?;
        if unmerged > 0 {
            removed.branch_kept_commits = unmerged;
        } else if !keep_branch {
            doomed.push((full_branch, tip.to_string()));
            if let Some(base) = ctx.reader.ref_target(&base_ref(&target.id))? {
                doomed.push((base_ref(&target.id), base.to_string()));
            }
            removed.branch_deleted = true;
        }
    }
    crate::gate::record::forget_if_landed(ctx, &target.id)?;
    ctx.state.delete_record(&target.id)?;
    remove_dir_if_exists(&ctx.state.tmp_dir(&target.id))?;
    remove_dir_if_exists(&ctx.state.scratch_dir(&target.id))?;
    Ok(removed)
}

/// Every session branch (full names): under the branch prefix, or named by a record.
fn session_branches(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    let prefix = format!("refs/heads/{}", ctx.config.branch_prefix);
    let mut names: Vec<String> = ctx
        .reader
        .branches_with_prefix(&prefix)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let (records, _) = ctx.state.records()?;
    names.extend(
        records
            .into_iter()
            .map(|r| format!("refs/heads/{}", r.branch)),
    );
    Ok(names)
}

/// Snapshots the worktree when it has changes, or when its HEAD left the session branch
/// (commits there would otherwise go with the worktree). The checks run in-process; git is
/// spawned only when there is something to save, or when a check fails (then git decides).
fn snapshot_if_needed(
    git: &Git,
    target: &Target,
    branch_tip: Option<ObjectId>,
    scratch: &Utf8Path,
) -> anyhow::Result<Option<String>> {
    if !target.worktree.is_dir() {
        return Ok(None);
    }
    let (head_moved, clean) = match worktree_state(&target.worktree) {
        Ok(state) => (
            state.head.is_none() || state.head != branch_tip,
            matches!(state.dirty, Ok(false)),
        ),
        Err(_) => (true, false),
    };
    if !head_moved && clean {
        return Ok(None);
    }
    git.snapshot(&target.worktree, &target.id, scratch, head_moved)
        .map_err(|err| {
            UserError::runtime(format!(
                "cannot snapshot the uncommitted work in {}: {err:#}",
                target.worktree
            ))
            .hint("nothing was removed; commit or move the work, then try again")
            .into()
        })
}

pub fn remove_dir_if_exists(dir: &Utf8Path) -> anyhow::Result<()> {
    match fs_err::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}
