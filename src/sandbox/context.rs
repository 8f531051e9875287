//! Whether git-codex runs on behalf of an agent (SPEC §7a, "no self-approval"): approving,
//! landing, unhooking and reconfiguring belong to a person outside every session. This check
//! is defence in depth, not a boundary: an agent that can run arbitrary programs can clear an
//! environment variable or change directory. Confinement and signed approvals are the
//! boundaries.

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::UserError;
use crate::git::worktrees::gitdir_of;
use crate::state::{SESSION_FILE, StateDir};

/// Why this process is in a session's context, if it is: `CODEX_SESSION_ID` is set, or the
/// current directory is inside a session's worktree.
pub fn detect() -> Option<String> {
    if let Some(id) = std::env::var_os("CODEX_SESSION_ID").filter(|v| !v.is_empty()) {
        return Some(format!(
            "CODEX_SESSION_ID is set (session '{}')",
            id.to_string_lossy()
        ));
    }
    let cwd = Utf8PathBuf::from_path_buf(std::env::current_dir().ok()?).ok()?;
    let top = cwd.ancestors().find(|dir| dir.join(".git").exists())?;
    if top.join(SESSION_FILE).is_file() {
        return Some(format!(
            "{top} is a session's worktree ({SESSION_FILE} is there)"
        ));
    }
    let session = owning_session(top)?;
    Some(format!("{top} is the worktree of session '{session}'"))
}

/// The session whose record names `top` as its worktree, found through the worktree's
/// `.git` file, its admin dir's `commondir`, and the state dir's records.
fn owning_session(top: &Utf8Path) -> Option<String> {
    let admin = gitdir_of(top)?;
    let common = std::fs::read_to_string(admin.join("commondir")).ok()?;
    let common = admin.join(common.trim_end());
    let (records, _) = StateDir::new(&common).records().ok()?;
    let top = top.canonicalize_utf8().ok()?;
    records
        .into_iter()
        .find(|r| r.worktree.canonicalize_utf8().ok().as_ref() == Some(&top))
        .map(|r| r.id)
}

/// Refuses (exit 3) to `what` in a session's context.
pub fn refuse_in_session(what: &str) -> anyhow::Result<()> {
    match detect() {
        None => Ok(()),
        Some(why) => Err(UserError::refused(format!(
            "refusing to {what} from a session's context: {why}"
        ))
        .hint("approving, landing, unhooking and configuring belong to a person outside the session: run this from the main worktree, in a shell of your own")
        .into()),
    }
}
