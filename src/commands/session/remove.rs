//! `git codex session remove <id>`, and the removal every other command uses: snapshot
//! uncommitted work first, remove the worktree, delete the branch only when it is merged.

use camino::{Utf8Path, Utf8PathBuf};

use crate::cli::SessionRemoveArgs;
use crate::context::Ctx;
use crate::error::UserError;
use crate::git::snapshot::snapshot_ref;
use crate::output;
use crate::state::id;

/// What a removal works on. Built from the record, or from the naming conventions when the
/// record is corrupt, so a broken session can still be cleaned up.
pub struct Target {
    pub id: String,
    pub branch: String,
    pub worktree: Utf8PathBuf,
}

pub struct Removed {
    pub snapshot: Option<String>,
    pub branch_deleted: bool,
    pub branch_kept_commits: usize,
}

pub fn run(args: SessionRemoveArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    let _lock = ctx.state.lock()?;
    let target = match ctx.state.record(&id) {
        Ok(record) => Target {
            id: record.id,
            branch: record.branch,
            worktree: record.worktree,
        },
        Err(err) if ctx.state.record_path(id.as_str()).is_file() => {
            output::warning(&format!("{err:#}; removing by convention"));
            Target {
                id: id.to_string(),
                branch: format!("{}{id}", ctx.config.branch_prefix),
                worktree: ctx.worktree_base().join(format!("wt-{id}")),
            }
        }
        Err(err) => return Err(err),
    };
    if !args.force && is_locked(&target.worktree) {
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
    let removed = remove_session(&ctx, &target, args.keep_branch)?;
    if let Some(snapshot) = &removed.snapshot {
        output::note(&format!(
            "Saved uncommitted work to {} ({})",
            snapshot_ref(&target.id),
            &snapshot[..snapshot.len().min(12)]
        ));
    }
    output::note(&format!("Removed session '{id}' ({})", target.worktree));
    if removed.branch_deleted {
        output::note(&format!("Deleted branch {} (merged)", target.branch));
    } else if removed.branch_kept_commits > 0 {
        output::note(&format!(
            "Kept branch {}: {} commit(s) are on no other branch",
            target.branch, removed.branch_kept_commits
        ));
    }
    Ok(())
}

/// Removes a session; the caller holds the lock. Work is never lost: a failed snapshot stops
/// the removal before anything is deleted, and unmerged branches are kept.
pub fn remove_session(ctx: &Ctx, target: &Target, keep_branch: bool) -> anyhow::Result<Removed> {
    let scratch = ctx.state.tmp_dir(&target.id);
    let snapshot = if target.worktree.is_dir() {
        ctx.git
            .snapshot(&target.worktree, &target.id, &scratch)
            .map_err(|err| {
                UserError::runtime(format!(
                    "cannot snapshot the uncommitted work in {}: {err:#}",
                    target.worktree
                ))
                .hint("nothing was removed; commit or move the work, then try again")
            })?
    } else {
        None
    };
    ctx.git
        .worktree_remove(&ctx.paths.main_root, &target.worktree)?;
    let full_branch = format!("refs/heads/{}", target.branch);
    let mut removed = Removed {
        snapshot,
        branch_deleted: false,
        branch_kept_commits: 0,
    };
    if let Some(tip) = ctx.reader.ref_target(&full_branch)? {
        let others = ctx.reader.other_branch_tips(&full_branch)?;
        let unmerged = ctx.reader.count_exclusive(tip, &others)?;
        if unmerged > 0 {
            removed.branch_kept_commits = unmerged;
        } else if !keep_branch {
            ctx.git
                .delete_ref(&ctx.paths.main_root, &full_branch, &tip.to_string())?;
            removed.branch_deleted = true;
        }
    }
    ctx.state.delete_record(&target.id)?;
    remove_dir_if_exists(&scratch)?;
    Ok(removed)
}

fn remove_dir_if_exists(dir: &Utf8Path) -> anyhow::Result<()> {
    match fs_err::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}

/// Whether `git worktree lock` was used on this worktree: its admin dir has a `locked` file.
fn is_locked(worktree: &Utf8Path) -> bool {
    let Ok(text) = fs_err::read_to_string(worktree.join(".git")) else {
        return false;
    };
    text.strip_prefix("gitdir:")
        .map(|dir| Utf8Path::new(dir.trim()).join("locked").exists())
        .unwrap_or(false)
}
