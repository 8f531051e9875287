//! Writing a worktree's refreshed index back, as `git status` does: a worktree just made has
//! every entry racily clean (its files are as new as its index), so each look at it re-reads
//! every file until the index is written again with their stat data. The index gix refreshed
//! is written beside the real one, then put in its place only while git-codex holds
//! `index.lock` and the index there is still, byte for byte, the one the status read: a git
//! (or an agent) holding the lock, or one that wrote the index meanwhile, wins and nothing is
//! written. Nothing here follows a link (the admin dir is a session's to write).

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::state::read_regular_file;

/// Where the refreshed index is written first: beside `index`, named for this process.
pub fn temp_path(index: &Path) -> PathBuf {
    let mut name = index.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".codex-refresh.{}", std::process::id()));
    index.with_file_name(name)
}

/// Whether gix writes `index` back whole: it writes no split index, untracked cache, fs
/// monitor or resolve-undo data, and a sparse index stays as git wrote it.
pub fn may_write(index: &gix::index::State) -> bool {
    index.link().is_none()
        && index.untracked().is_none()
        && index.fs_monitor().is_none()
        && index.resolve_undo().is_none()
        && !index.is_sparse()
}

/// Puts what the status of `outcome` refreshed (its index's path is [`temp_path`]) in place of
/// `index`, which held `read` when the status began. Best effort: the next look pays again.
pub fn write_back(index: &Path, read: &[u8], mut outcome: gix::status::Outcome) {
    if !outcome.has_changes() {
        return;
    }
    let temp = temp_path(index);
    if matches!(outcome.write_changes(), Some(Ok(()))) {
        swap(index, &temp, read);
    }
    let _ = std::fs::remove_file(&temp);
}

fn swap(index: &Path, temp: &Path, read: &[u8]) -> bool {
    let mut lock = index.as_os_str().to_os_string();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    // Held as git holds it: made anew (never through a link), or not at all.
    let Ok(_held) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock)
    else {
        return false;
    };
    let unchanged = Path::new(index)
        .to_str()
        .and_then(|p| read_regular_file(camino::Utf8Path::new(p)).ok().flatten())
        .is_some_and(|now| now == read);
    let moved = unchanged && std::fs::rename(temp, index).is_ok();
    let _ = std::fs::remove_file(&lock);
    moved
}
