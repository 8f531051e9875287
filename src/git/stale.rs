//! Lock files a killed git left (`<ref>.lock`): git refuses to touch the ref again until someone
//! deletes the file. git-codex deletes one only when it is provably stale: git-codex holds its
//! state lock (no other git-codex is at work) and no git process runs in the repository, its git
//! dir or the worktree base (a live git may hold a ref lock without keeping it open).

use camino::{Utf8Path, Utf8PathBuf};

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
    if found.is_empty() || git_runs_in(roots) {
        return Ok(Vec::new());
    }
    for path in &found {
        fs_err::remove_file(path)?;
    }
    Ok(found)
}
