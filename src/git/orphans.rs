//! What a killed git-codex started and left running: every git it starts carries [`MARKER`]
//! (and so does whatever that git starts: `worktree add` runs `git branch` and `git reset` of
//! its own, hooks run). Those outlive the kill, and the next command waits for them before it
//! rolls back what the killed one left, or they would change the repository behind it.

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

/// The environment variable every git git-codex starts carries, with git-codex's pid; the
/// processes that git starts in turn inherit it.
pub const MARKER: &str = "GIT_CODEX_PID";

/// How long a command waits for what a killed git-codex left running before it finishes that
/// command's work or judges its locks.
pub const WAIT: Duration = Duration::from_secs(10);

/// Whether a process started by a git-codex that is dead now (killed) still runs in one of
/// `places` (its working dir there: a git, a git it started, a hook, a setup command).
/// Another repository's leftovers are none of this one's business. Processes that cannot be
/// read (another user's) are not counted.
pub fn orphans_at_work(places: &[Utf8PathBuf]) -> bool {
    let me = std::process::id().to_string();
    let places: Vec<std::path::PathBuf> = places
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone().into_std_path_buf()))
        .collect();
    // The cheap questions first (most processes are no git): its name, where it works, and
    // only then its environment.
    crate::procfs::pids().into_iter().any(|pid| {
        is_git_at_work(pid)
            && crate::procfs::cwd(pid).is_some_and(|cwd| {
                // A dir deleted under it reads "<path> (deleted)": still that place.
                places.iter().any(|p| cwd.starts_with(p))
            })
            && crate::procfs::env_var(pid, MARKER).is_some_and(|owner| {
                owner != me
                    && owner.bytes().all(|b| b.is_ascii_digit())
                    && !crate::procfs::exists(&owner)
            })
    })
}

/// A git or a hook of git-codex's (which takes git's locks): not what a command leaves
/// running on purpose, a server session.setup started or git's fsmonitor daemon, which
/// carry the mark too and would be waited for in vain.
fn is_git_at_work(pid: u32) -> bool {
    let name = crate::procfs::name(pid);
    (name == "git" || name.starts_with("git-"))
        && !crate::procfs::args(pid)
            .iter()
            .any(|a| a == "fsmonitor--daemon")
}

/// Waits, up to `limit`, for what a killed git-codex started in `places` to end. Returns
/// whether it did.
pub fn wait_for_orphans(places: &[Utf8PathBuf], limit: Duration) -> bool {
    let start = Instant::now();
    while orphans_at_work(places) {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}
