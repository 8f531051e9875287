//! Lock files a killed git left (`<ref>.lock`): git refuses to touch the ref again until someone
//! deletes the file. git-codex deletes one only when it is provably stale: git-codex holds its
//! state lock (no other git-codex is at work) and no git process runs in the repository, its git
//! dir or the worktree base (a live git may hold a ref lock without keeping it open).

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

/// The environment variable every git git-codex starts carries, with git-codex's pid; the
/// processes that git starts in turn inherit it.
pub const MARKER: &str = "GIT_CODEX_PID";

/// Whether a process started by a git-codex that is dead now (killed) still runs: a git, a
/// git it started, a hook. Processes that cannot be read (another user's) are not counted.
pub fn orphans_at_work() -> bool {
    let Ok(list) = std::fs::read_dir("/proc") else {
        return false;
    };
    let me = std::process::id().to_string();
    let prefix = format!("{MARKER}=");
    list.flatten().any(|entry| {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(environ) = std::fs::read(std::path::Path::new("/proc").join(pid).join("environ"))
        else {
            return false;
        };
        environ
            .split(|b| *b == 0)
            .filter_map(|var| std::str::from_utf8(var).ok()?.strip_prefix(prefix.as_str()))
            .any(|owner| {
                owner != me
                    && owner.bytes().all(|b| b.is_ascii_digit())
                    && !std::path::Path::new("/proc").join(owner).exists()
            })
    })
}

/// Waits, up to `limit`, for what a killed git-codex started to end. Returns whether it did.
pub fn wait_for_orphans(limit: Duration) -> bool {
    let start = Instant::now();
    while orphans_at_work() {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Whether a git process (other than this one) has its working directory under one of `roots`.
/// Processes that cannot be read (another user's) are not counted.
pub fn git_runs_in(roots: &[&Utf8Path]) -> bool {
    let Ok(list) = std::fs::read_dir("/proc") else {
        return true; // Cannot look: nothing is provably stale.
    };
    let me = std::process::id().to_string();
    list.flatten().any(|entry| {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        if pid == me {
            return false;
        }
        let proc = std::path::Path::new("/proc").join(pid);
        let is_git = std::fs::read_link(proc.join("exe")).is_ok_and(|exe| {
            exe.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "git" || n.starts_with("git-"))
        });
        is_git
            && std::fs::read_link(proc.join("cwd"))
                .is_ok_and(|cwd| roots.iter().any(|root| cwd.starts_with(root.as_std_path())))
    })
}

/// Deletes the lock files of `refs` (full names) that are provably stale; the caller holds the
/// state lock. Returns the files deleted. Only regular files named `<ref>.lock` in the common
/// dir are touched, never followed through a link.
pub fn clear_ref_locks(
    common_dir: &Utf8Path,
    refs: &[String],
    roots: &[&Utf8Path],
) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let found: Vec<Utf8PathBuf> = refs
        .iter()
        .filter(|name| {
            name.starts_with("refs/") && !name.split('/').any(|c| c == ".." || c.is_empty())
        })
        .map(|name| common_dir.join(format!("{name}.lock")))
        .chain(std::iter::once(common_dir.join("packed-refs.lock")))
        .filter(|path| fs_err::symlink_metadata(path).is_ok_and(|m| m.is_file()))
        .collect();
    if found.is_empty() || orphans_at_work() || git_runs_in(roots) {
        return Ok(Vec::new());
    }
    for path in &found {
        fs_err::remove_file(path)?;
    }
    Ok(found)
}
