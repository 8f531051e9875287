//! A snapshot's files put back into a fresh checkout of the commit it was taken on (`session
//! restore`), whatever the agent changed a path into: a directory that became a file or a
//! link, a file or a link that became a directory, a whole tree deleted. `git restore` cannot
//! do that: it resolves every path against one tree, and a path the snapshot no longer has
//! under a directory it turned into a file matches nothing (the restore failed, the work
//! stayed out of reach). Here what the snapshot removed goes first, by us and never through a
//! link; then what it holds is written by git's own checkout code (`checkout-index`), which
//! never writes through a link either.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use camino::Utf8Path;

use super::Git;
use super::snapshot::ScratchIndex;
use crate::error::UserError;

/// One path of a raw `diff-tree -r -z` listing: what it becomes (mode `000000`: removed).
struct Change {
    new_mode: String,
    new_blob: String,
    path: Vec<u8>,
}

impl Git {
    /// Makes the files of the fresh checkout `worktree` those of `snapshot` without touching
    /// its index, so its changes come back as uncommitted, untracked and deleted files.
    /// Exactly the paths the snapshot changed are written, outside the sparse checkout too;
    /// the files the agent never touched there stay out. `scratch_dir` holds a scratch index.
    pub fn restore_files(
        &self,
        worktree: &Utf8Path,
        snapshot: &str,
        scratch_dir: &Utf8Path,
    ) -> anyhow::Result<()> {
        let parent = format!("{snapshot}^1");
        let args = ["diff-tree", "-r", "-z", "--no-renames", &parent, snapshot];
        let listing = self.bytes_with_index(worktree, None, &args, None)?;
        let changes = parse(&listing);
        let root = worktree.as_std_path();
        for change in changes.iter().filter(|c| c.removed()) {
            remove_checked_out(root, &change.path)?;
        }
        let written: Vec<&Change> = changes.iter().filter(|c| !c.removed()).collect();
        if written.is_empty() {
            return Ok(());
        }
        for change in &written {
            clear_the_way(root, change)?;
        }
        let mut info = Vec::new();
        for change in &written {
            info.extend(format!("{} {}\t", change.new_mode, change.new_blob).as_bytes());
            info.extend(&change.path);
            info.push(0);
        }
        let index = ScratchIndex::new(scratch_dir)?;
        let update = ["update-index", "--add", "-z", "--index-info"];
        self.bytes_with_index(worktree, Some(index.path()), &update, Some(&info))?;
        let checkout = ["checkout-index", "--all", "--force"];
        self.bytes_with_index(worktree, Some(index.path()), &checkout, None)
            .map(|_| ())
    }
}

impl Change {
    fn removed(&self) -> bool {
        self.new_mode == "000000"
    }
}

/// Every entry of a raw `-z` listing: `:<old mode> <new mode> <old id> <new id> <status>\0<path>\0`.
fn parse(listing: &[u8]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut fields = listing.split(|b| *b == 0);
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        let meta = String::from_utf8_lossy(meta);
        let words: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        if let [_, new_mode, _, new_blob, _] = words[..]
            && !path.is_empty()
        {
            out.push(Change {
                new_mode: new_mode.to_string(),
                new_blob: new_blob.to_string(),
                path: path.to_vec(),
            });
        }
    }
    out
}

/// `relative` under `root` when every directory on the way is a real one (no link), and what
/// is there (`None`: nothing).
fn reach(root: &Path, relative: &[u8]) -> Option<(PathBuf, Option<std::fs::Metadata>)> {
    let parts: Vec<&[u8]> = relative.split(|b| *b == b'/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == b"." || *p == b"..")
    {
        return None;
    }
    let mut path = root.to_path_buf();
    for (n, part) in parts.iter().enumerate() {
        path.push(OsStr::from_bytes(part));
        let meta = std::fs::symlink_metadata(&path).ok();
        if n + 1 == parts.len() {
            return Some((path, meta));
        }
        if !meta.is_some_and(|m| m.is_dir()) {
            return None;
        }
    }
    None
}

/// Removes what the checkout put at a path the snapshot no longer has (a file, a link, an
/// empty submodule directory), then each directory that this leaves empty. Nothing is read
/// through a link: a path under one is not the checkout's.
fn remove_checked_out(root: &Path, relative: &[u8]) -> anyhow::Result<()> {
    let Some((path, Some(meta))) = reach(root, relative) else {
        return Ok(());
    };
    let removed = if meta.is_dir() {
        std::fs::remove_dir(&path)
    } else {
        std::fs::remove_file(&path)
    };
    if removed.is_err() {
        return Ok(());
    }
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// Before git writes `change`: a directory where the snapshot has a file or a link goes when
/// it is empty; what git would otherwise delete on the way (a directory with files in it, or
/// anything but a directory where one must be) is not the checkout's, and stops the restore.
fn clear_the_way(root: &Path, change: &Change) -> anyhow::Result<()> {
    let parts: Vec<&[u8]> = change.path.split(|b| *b == b'/').collect();
    let mut path = root.to_path_buf();
    for (n, part) in parts.iter().enumerate() {
        path.push(OsStr::from_bytes(part));
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(());
        };
        let last = n + 1 == parts.len();
        let fits = if last {
            !meta.is_dir() || change.new_mode == "160000" || std::fs::remove_dir(&path).is_ok()
        } else {
            meta.is_dir()
        };
        if !fits {
            return Err(UserError::runtime(format!(
                "cannot restore {}: something that is not in the snapshot is in the way",
                path.display()
            ))
            .hint("move it aside, then run 'git codex session restore' again")
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_of_a_listing_is_read() {
        let z = "0".repeat(40);
        let b = "1".repeat(40);
        let listing = format!(
            ":100644 000000 {b} {z} D\0utils/a.py\0:000000 100644 {z} {b} A\0utils\0:120000 100644 {b} {b} T\0odd\nname\0"
        );
        let found: Vec<(String, Vec<u8>)> = parse(listing.as_bytes())
            .into_iter()
            .map(|c| (c.new_mode, c.path))
            .collect();
        assert_eq!(
            found,
            [
                ("000000".to_string(), b"utils/a.py".to_vec()),
                ("100644".to_string(), b"utils".to_vec()),
                ("100644".to_string(), b"odd\nname".to_vec()),
            ]
        );
    }
}
