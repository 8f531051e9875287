//! What a killed `session merge` can leave: the detached worktree a rebase replays in, still
//! registered with git, and a merge or squash stopped in the worktree that has the target
//! checked out (`MERGE_HEAD`, `SQUASH_MSG`, a staged result).

use camino::{Utf8Path, Utf8PathBuf};

use super::Git;
use super::worktrees::{admin_entries, holds_modules};

/// The name [`Git::land`] gives a replay worktree: `replay-<pid>`.
pub fn is_replay_name(name: &str) -> bool {
    name.strip_prefix("replay-")
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Looking leaves the index file as it is (no stat refresh written back).
const QUIET: &[&str] = &["--no-optional-locks"];

/// A merge stopped before its commit, as found in a worktree.
#[derive(Debug, PartialEq, Eq)]
pub enum Unfinished {
    /// `MERGE_HEAD` names `head`; `conflicts` lists unmerged files; `only_the_merge` says
    /// the index is exactly what the merge made (nobody staged anything else since).
    Merge {
        head: String,
        conflicts: Vec<String>,
        only_the_merge: bool,
    },
    /// `SQUASH_MSG` with staged changes, squashing `head` (its newest commit); `conflicts`
    /// lists unmerged files; `only_the_squash` says the index is exactly the squash.
    Squash {
        head: String,
        conflicts: Vec<String>,
        only_the_squash: bool,
    },
}

/// `text` when it is an object id, else "" (whatever else a file holds is not shown or used).
fn object_id(text: &str) -> String {
    let text = text.trim();
    let hex = !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit());
    if hex { text.to_string() } else { String::new() }
}

impl Git {
    /// Removes the replay worktrees of merges that are no longer running, and returns them:
    /// only entries whose admin dir names a `replay-<pid>` dir of a session's scratch dir
    /// under `scratch_root` (git-codex made those and nothing else there). The caller holds
    /// the state lock, which every merge holds while it replays.
    pub fn clear_replays(
        &self,
        main_root: &Utf8Path,
        common_dir: &Utf8Path,
        scratch_root: &Utf8Path,
    ) -> anyhow::Result<Vec<Utf8PathBuf>> {
        let roots = [
            scratch_root.to_path_buf(),
            scratch_root.canonicalize_utf8().unwrap_or_default(),
        ];
        let mut cleared = Vec::new();
        for entry in admin_entries(common_dir)? {
            let Some(worktree) = entry.worktree else {
                continue;
            };
            let ours = worktree.file_name().is_some_and(is_replay_name)
                && worktree
                    .parent()
                    .and_then(Utf8Path::parent)
                    .is_some_and(|root| roots.iter().any(|r| r == root));
            // Never through a symlink: what it points at is not the scratch dir's.
            let linked = |p: &Utf8Path| fs_err::symlink_metadata(p).is_ok_and(|m| m.is_symlink());
            let through_link = linked(&worktree) || worktree.parent().is_some_and(linked);
            if !ours || through_link || holds_modules(&entry.admin_dir) {
                continue;
            }
            let path = worktree.as_str();
            let removed = self
                .run(
                    main_root,
                    &["worktree", "remove", "--force", "--force", path],
                )
                .is_ok();
            if !removed {
                // Gone already (its session's scratch dir was removed), or half made.
                if fs_err::symlink_metadata(&worktree).is_ok_and(|m| m.is_dir()) {
                    fs_err::remove_dir_all(&worktree)?;
                }
                fs_err::remove_dir_all(&entry.admin_dir)?;
            }
            cleared.push(worktree);
        }
        Ok(cleared)
    }

    /// The merge or squash stopped in worktree `wt`, if any.
    pub fn unfinished_merge(&self, wt: &Utf8Path) -> anyhow::Result<Option<Unfinished>> {
        let git_dir = Utf8PathBuf::from(self.run(wt, &["rev-parse", "--absolute-git-dir"])?);
        let first_line = |file: &str| {
            std::fs::read_to_string(git_dir.join(file))
                .ok()
                .map(|text| object_id(text.lines().next().unwrap_or_default()))
        };
        let unmerged = || -> anyhow::Result<Vec<String>> {
            let listed = self.run(
                wt,
                &[QUIET, &["diff", "--name-only", "--diff-filter=U"]].concat(),
            )?;
            Ok(listed.lines().map(str::to_string).collect())
        };
        if let Some(head) = first_line("MERGE_HEAD") {
            let conflicts = unmerged()?;
            let only_the_merge = conflicts.is_empty() && self.index_is_merge_of(wt, &head)?;
            return Ok(Some(Unfinished::Merge {
                head,
                conflicts,
                only_the_merge,
            }));
        }
        let Some(squashed) = std::fs::read_to_string(git_dir.join("SQUASH_MSG")).ok() else {
            return Ok(None);
        };
        let staged = self
            .run(
                wt,
                &["diff", "--cached", "--quiet", "--ignore-submodules=dirty"],
            )
            .is_err();
        if !staged {
            return Ok(None);
        }
        // git writes "Squashed commit of the following:" then the commits, newest first.
        let head = squashed
            .lines()
            .find_map(|l| l.strip_prefix("commit "))
            .map(object_id)
            .unwrap_or_default();
        let conflicts = unmerged()?;
        let only_the_squash =
            conflicts.is_empty() && !head.is_empty() && self.index_is_merge_of(wt, &head)?;
        Ok(Some(Unfinished::Squash {
            head,
            conflicts,
            only_the_squash,
        }))
    }

    /// Whether the index of `wt` is exactly HEAD merged with `other`, cleanly. Only the
    /// merged tree's objects are written (unreachable, as git's own merges leave them).
    pub fn index_is_merge_of(&self, wt: &Utf8Path, other: &str) -> anyhow::Result<bool> {
        let Ok(merged) = self.run(wt, &["merge-tree", "--write-tree", "HEAD", other]) else {
            return Ok(false);
        };
        let tree = merged.lines().next().unwrap_or_default();
        let same = [QUIET, &["diff-index", "--cached", "--quiet", tree]].concat();
        Ok(!tree.is_empty() && self.run(wt, &same).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::is_replay_name;

    #[test]
    fn replay_names_are_replay_and_a_pid() {
        assert!(is_replay_name("replay-123"));
        assert!(!is_replay_name("replay-"));
        assert!(!is_replay_name("replay-12x"));
        assert!(!is_replay_name("wt-replay-1"));
    }
}
