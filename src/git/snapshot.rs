//! Snapshots: the uncommitted state of a worktree committed to `refs/codex/snapshots/<id>`
//! without moving any branch or touching the user's index (SPEC §3, §8).

use anyhow::Context as _;
use camino::Utf8Path;

use super::Git;

pub fn snapshot_ref(id: &str) -> String {
    format!("refs/codex/snapshots/{id}")
}

/// The identity of commits git-codex makes itself, so they never depend on the user's setup.
pub const MACHINE_NAME: &str = "git-codex";
pub const MACHINE_EMAIL: &str = "git-codex@localhost";

impl Git {
    /// Commits everything in `worktree` that differs from its HEAD (tracked changes, deletions,
    /// untracked non-ignored files, modes) to the snapshot ref of `id`. Earlier snapshots stay
    /// reachable as a second parent. Returns the new snapshot, or `None` when the tree is clean.
    pub fn snapshot(
        &self,
        worktree: &Utf8Path,
        id: &str,
        scratch_dir: &Utf8Path,
    ) -> anyhow::Result<Option<String>> {
        fs_err::create_dir_all(scratch_dir)?;
        let index = scratch_dir.join(format!(".snapshot-index-{}", std::process::id()));
        let result = self.snapshot_with_index(worktree, id, &index);
        let _ = fs_err::remove_file(&index);
        result
    }

    fn snapshot_with_index(
        &self,
        worktree: &Utf8Path,
        id: &str,
        index: &Utf8Path,
    ) -> anyhow::Result<Option<String>> {
        let head = self.run(worktree, &["rev-parse", "--verify", "HEAD^{commit}"])?;
        // Start from a copy of the worktree's index: its stat cache spares re-hashing every file.
        let real_index = self.run(
            worktree,
            &["rev-parse", "--path-format=absolute", "--git-path", "index"],
        )?;
        if Utf8Path::new(&real_index).is_file() {
            fs_err::copy(&real_index, index).context("cannot copy the worktree's index")?;
        } else {
            self.with_index(worktree, index, &["read-tree", &head])?;
        }
        self.with_index(worktree, index, &["add", "-A", "--", "."])?;
        let tree = self.with_index(worktree, index, &["write-tree"])?;
        let head_tree = self.run(worktree, &["rev-parse", &format!("{head}^{{tree}}")])?;
        if tree == head_tree {
            return Ok(None);
        }
        let reference = snapshot_ref(id);
        let previous = self
            .run(
                worktree,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{reference}^{{commit}}"),
                ],
            )
            .ok()
            .filter(|s| !s.is_empty());
        let message =
            format!("codex({id}): snapshot of uncommitted work\n\nworktree: {worktree}\n");
        let mut args = vec!["commit-tree", tree.as_str(), "-p", head.as_str()];
        if let Some(prev) = &previous {
            args.extend(["-p", prev.as_str()]);
        }
        args.extend(["-m", message.as_str()]);
        let mut cmd = self.command(worktree);
        machine_identity(&mut cmd);
        let commit = self.run_with(cmd, &args)?;
        // An empty old value means "must not exist yet": compare-and-swap either way.
        let old = previous.unwrap_or_default();
        self.run(
            worktree,
            &[
                "update-ref",
                "-m",
                "git-codex: snapshot",
                &reference,
                &commit,
                &old,
            ],
        )?;
        Ok(Some(commit))
    }

    fn with_index(
        &self,
        worktree: &Utf8Path,
        index: &Utf8Path,
        args: &[&str],
    ) -> anyhow::Result<String> {
        let mut cmd = self.command(worktree);
        cmd.env("GIT_INDEX_FILE", index.as_str());
        self.run_with(cmd, args)
    }
}

/// Author and committer for machine-made commits.
pub fn machine_identity(cmd: &mut std::process::Command) {
    cmd.env("GIT_AUTHOR_NAME", MACHINE_NAME)
        .env("GIT_AUTHOR_EMAIL", MACHINE_EMAIL)
        .env("GIT_COMMITTER_NAME", MACHINE_NAME)
        .env("GIT_COMMITTER_EMAIL", MACHINE_EMAIL);
}
