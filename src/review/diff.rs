//! Per-file change statistics, read off git's own patch (`git diff base tip`) so that they
//! equal `git diff --numstat <base> <tip>`: git's rename detection, binary files counted as
//! `-`, a type change (a file made a link, say) one file.

use serde::Serialize;

use super::patch::FilePatch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStat {
    pub path: String,
    /// The path's bytes (`path` shows a byte that is not UTF-8 as `\377`).
    #[serde(skip)]
    pub raw_path: Vec<u8>,
    /// The source of a rename or copy.
    pub old_path: Option<String>,
    pub status: FileStatus,
    pub binary: bool,
    pub insertions: u64,
    pub deletions: u64,
}

/// The files the patch changes, in git's order: one per path, as `--numstat` has them (git
/// writes a type change as a deletion and an addition of the same path, one after the other).
pub fn file_stats(patches: &[FilePatch]) -> Vec<FileStat> {
    let mut stats: Vec<FileStat> = Vec::new();
    for patch in patches {
        let (insertions, deletions) = counts(patch);
        // A type change: the path deleted, then added again.
        if let Some(last) = stats.last_mut()
            && last.raw_path == patch.raw_path
            && last.status == FileStatus::Deleted
            && status_of(patch) == FileStatus::Added
        {
            last.status = FileStatus::Modified;
            last.binary |= patch.binary;
            last.insertions += insertions;
            last.deletions += deletions;
            continue;
        }
        stats.push(FileStat {
            path: patch.path.clone(),
            raw_path: patch.raw_path.clone(),
            old_path: patch.old_path.clone(),
            status: status_of(patch),
            binary: patch.binary,
            insertions,
            deletions,
        });
    }
    for stat in stats.iter_mut().filter(|s| s.binary) {
        stat.insertions = 0;
        stat.deletions = 0;
    }
    stats
}

fn status_of(patch: &FilePatch) -> FileStatus {
    let has = |prefix: &str| patch.header.iter().any(|l| l.starts_with(prefix));
    if has("rename from ") {
        FileStatus::Renamed
    } else if has("copy from ") {
        FileStatus::Copied
    } else if has("new file mode ") {
        FileStatus::Added
    } else if has("deleted file mode ") {
        FileStatus::Deleted
    } else {
        FileStatus::Modified
    }
}

/// Added and removed lines, as `--numstat` counts them.
fn counts(patch: &FilePatch) -> (u64, u64) {
    let mut plus = 0;
    let mut minus = 0;
    for line in patch.hunks.iter().flat_map(|h| &h.lines) {
        match line.as_bytes().first() {
            Some(b'+') => plus += 1,
            Some(b'-') => minus += 1,
            _ => {}
        }
    }
    (plus, minus)
}
