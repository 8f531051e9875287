//! Worktree plumbing: git's admin entries (`<common-dir>/worktrees/<name>/`), removal, restore.

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};

use super::Git;

/// One entry of `<common-dir>/worktrees/`.
#[derive(Debug, Clone)]
pub struct AdminEntry {
    pub admin_dir: Utf8PathBuf,
    /// The worktree's root, from the entry's `gitdir` file.
    pub worktree: Option<Utf8PathBuf>,
    pub locked: bool,
}

/// Every admin entry git keeps for linked worktrees.
pub fn admin_entries(common_dir: &Utf8Path) -> anyhow::Result<Vec<AdminEntry>> {
    let dir = common_dir.join("worktrees");
    let entries = match fs_err::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(admin_dir) = Utf8PathBuf::from_path_buf(entry.path()) else {
            continue;
        };
        if !admin_dir.is_dir() {
            continue;
        }
        let worktree = fs_err::read_to_string(admin_dir.join("gitdir"))
            .ok()
            .map(|text| Utf8PathBuf::from(text.trim()))
            .and_then(|dot_git| dot_git.parent().map(Utf8Path::to_owned));
        out.push(AdminEntry {
            locked: admin_dir.join("locked").exists(),
            admin_dir,
            worktree,
        });
    }
    Ok(out)
}

/// The git dir a linked worktree's `.git` file names (`gitdir: …`), as written: absolute, or
/// joined to the worktree when relative. `None` when `.git` is not such a file.
pub fn gitdir_of(worktree: &Utf8Path) -> Option<Utf8PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    Some(worktree.join(text.strip_prefix("gitdir:")?.trim()))
}

/// The admin dir a worktree's `.git` file points to, if it is one of `common_dir`'s.
pub fn admin_dir_of(worktree: &Utf8Path, common_dir: &Utf8Path) -> Option<Utf8PathBuf> {
    let dir = gitdir_of(worktree)?;
    let dir = Utf8PathBuf::from_path_buf(fs_err::canonicalize(&dir).ok()?).ok()?;
    dir.starts_with(common_dir.join("worktrees")).then_some(dir)
}

/// Whether `git worktree lock` was used on this worktree.
pub fn is_locked(worktree: &Utf8Path, common_dir: &Utf8Path) -> bool {
    admin_dir_of(worktree, common_dir).is_some_and(|dir| dir.join("locked").exists())
}

impl Git {
    /// `git worktree add --no-track -b <branch> <path> <commit>`. Parallel `worktree add` calls
    /// race inside git, so callers hold the state lock.
    pub fn worktree_add(
        &self,
        main_root: &Utf8Path,
        path: &Utf8Path,
        branch: &str,
        commit: &str,
    ) -> anyhow::Result<()> {
        self.run(
            main_root,
            &[
                "worktree",
                "add",
                "--no-track",
                "-b",
                branch,
                path.as_str(),
                commit,
            ],
        )
        .map(|_| ())
    }

    /// `git worktree add <path> <branch>` for a branch that exists.
    pub fn worktree_add_existing(
        &self,
        main_root: &Utf8Path,
        path: &Utf8Path,
        branch: &str,
    ) -> anyhow::Result<()> {
        self.run(main_root, &["worktree", "add", path.as_str(), branch])
            .map(|_| ())
    }

    /// Removes a worktree the way `git worktree remove --force --force` does (its dir, then
    /// its admin entry) without a process per worktree; the caller has snapshotted it. Falls
    /// back to git, then to deleting the dir and `git worktree prune`.
    pub fn worktree_remove(
        &self,
        main_root: &Utf8Path,
        common_dir: &Utf8Path,
        path: &Utf8Path,
    ) -> anyhow::Result<()> {
        if let Some(admin) = admin_dir_of(path, common_dir) {
            fs_err::remove_dir_all(path)
                .with_context(|| format!("cannot delete the worktree dir {path}"))?;
            fs_err::remove_dir_all(&admin)
                .with_context(|| format!("cannot delete git's admin dir {admin}"))?;
            return Ok(());
        }
        if !path.exists() {
            // Gone already: drop git's entry for it, locked or not (`worktree prune` skips locked).
            for entry in admin_entries(common_dir)? {
                if entry.worktree.as_deref() == Some(path) {
                    fs_err::remove_dir_all(&entry.admin_dir)?;
                }
            }
            return Ok(());
        }
        let removed = self.run(
            main_root,
            &["worktree", "remove", "--force", "--force", path.as_str()],
        );
        if removed.is_err() || path.exists() {
            if path.exists() {
                fs_err::remove_dir_all(path)
                    .with_context(|| format!("cannot delete the worktree dir {path}"))?;
            }
            self.run(main_root, &["worktree", "prune"])?;
        }
        Ok(())
    }

    /// Makes the worktree's files those of `snapshot` without touching the index, so its
    /// changes come back as uncommitted, untracked and deleted files.
    pub fn restore_files(&self, worktree: &Utf8Path, snapshot: &str) -> anyhow::Result<()> {
        let source = format!("--source={snapshot}");
        self.run(worktree, &["restore", &source, "--worktree", "--", "."])
            .map(|_| ())
    }
}
