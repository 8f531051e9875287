//! Per-file change statistics between two commits, computed in-process with gix so that they
//! equal `git diff --numstat <base> <tip>`: renames detected as git does, binary files counted
//! as `-`.

use std::ops::ControlFlow;

use gix::ObjectId;
use gix::object::tree::diff::Change;
use serde::Serialize;

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
    /// The source of a rename or copy.
    pub old_path: Option<String>,
    pub status: FileStatus,
    pub binary: bool,
    pub insertions: u64,
    pub deletions: u64,
}

/// The files that differ between `base` and `tip`, sorted by path.
pub fn file_stats(
    repo: &gix::Repository,
    base: ObjectId,
    tip: ObjectId,
) -> anyhow::Result<Vec<FileStat>> {
    let base_tree = repo.find_commit(base)?.tree()?;
    let tip_tree = repo.find_commit(tip)?.tree()?;
    let mut cache = repo.diff_resource_cache_for_tree_diff()?;
    let mut stats = Vec::new();
    let mut failure = None;
    let mut platform = base_tree.changes()?;
    platform.options(|opts| {
        opts.track_path();
    });
    platform.for_each_to_obtain_tree(&tip_tree, |change| {
        if change.entry_mode().is_tree() {
            return Ok(ControlFlow::Continue(()));
        }
        match stat_of(&change, &mut cache) {
            Ok(stat) => stats.push(stat),
            Err(err) => {
                failure = Some(err);
                return Ok(ControlFlow::Break(()));
            }
        }
        cache.clear_resource_cache_keep_allocation();
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    stats.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(stats)
}

fn stat_of(
    change: &Change<'_, '_, '_>,
    cache: &mut gix::diff::blob::Platform,
) -> anyhow::Result<FileStat> {
    let (status, old_path) = match change {
        Change::Addition { .. } => (FileStatus::Added, None),
        Change::Deletion { .. } => (FileStatus::Deleted, None),
        Change::Modification { .. } => (FileStatus::Modified, None),
        Change::Rewrite {
            source_location,
            copy,
            ..
        } => (
            if *copy {
                FileStatus::Copied
            } else {
                FileStatus::Renamed
            },
            Some(source_location.to_string()),
        ),
    };
    let counts = if change.entry_mode().is_commit() {
        // A submodule moved: git counts the one-line change of its commit id.
        Some((1, u64::from(!matches!(status, FileStatus::Added))))
    } else {
        change
            .diff(cache)?
            .line_counts()?
            .map(|c| (u64::from(c.insertions), u64::from(c.removals)))
    };
    Ok(FileStat {
        path: change.location().to_string(),
        old_path,
        status,
        binary: counts.is_none(),
        insertions: counts.map_or(0, |c| c.0),
        deletions: counts.map_or(0, |c| c.1),
    })
}
