//! Worktree plumbing: git's admin entries (`<common-dir>/worktrees/<name>/`), removal.

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

/// The admin dir of `dir` when git-codex can prove `dir` is a linked worktree of this
/// repository: `dir` is a real dir (not a symlink), its `.git` is a file naming an admin dir
/// directly under `<common-dir>/worktrees/`, and that admin dir's `gitdir` names `dir/.git`
/// back. Anything else is not ours to delete (SPEC §8).
pub fn owned_admin_dir(dir: &Utf8Path, common_dir: &Utf8Path) -> Option<Utf8PathBuf> {
    let is_dir = fs_err::symlink_metadata(dir).ok()?.file_type().is_dir();
    let dot_git = dir.join(".git");
    let is_file = fs_err::symlink_metadata(&dot_git)
        .ok()?
        .file_type()
        .is_file();
    if !is_dir || !is_file {
        return None;
    }
    let admin = canonical(&gitdir_of(dir)?)?;
    let admins = canonical(&common_dir.join("worktrees"))?;
    if admin.parent() != Some(admins.as_path())
        || fs_err::symlink_metadata(&admin).ok()?.is_symlink()
    {
        return None;
    }
    let back = fs_err::read_to_string(admin.join("gitdir")).ok()?;
    let back = canonical(&admin.join(back.trim()))?;
    (back == canonical(&dot_git)?).then_some(admin)
}

fn canonical(path: &Utf8Path) -> Option<Utf8PathBuf> {
    Utf8PathBuf::from_path_buf(fs_err::canonicalize(path).ok()?).ok()
}

/// Drops git's admin entries for the worktree at `path` (gone or moved away), locked or not
/// (`git worktree prune` skips locked ones). Only entries under `<common-dir>/worktrees/`,
/// and never one that holds submodules' git dirs (see [`holds_modules`]): the caller keeps
/// those (`session::modules::forget`).
pub fn forget_worktree(common_dir: &Utf8Path, path: &Utf8Path) -> anyhow::Result<()> {
    for entry in admin_entries(common_dir)? {
        if entry.worktree.as_deref() == Some(path) && !holds_modules(&entry.admin_dir) {
            fs_err::remove_dir_all(&entry.admin_dir)?;
        }
    }
    Ok(())
}

/// Whether a worktree's admin dir holds submodules' git dirs (`modules/`, a real dir): the
/// commits made in a submodule of that worktree live there and nowhere else.
pub fn holds_modules(admin: &Utf8Path) -> bool {
    fs_err::symlink_metadata(admin.join("modules")).is_ok_and(|m| m.is_dir())
}

/// Whether `git worktree lock` was used on this worktree.
pub fn is_locked(worktree: &Utf8Path, common_dir: &Utf8Path) -> bool {
    admin_dir_of(worktree, common_dir).is_some_and(|dir| dir.join("locked").exists())
}

/// A session worktree's hooks dir: the main worktree's, absolute, when `core.hooksPath` is
/// relative; else none of its own (an earlier pin is cleared where worktree config is on).
pub enum HooksPin {
    Dir(String),
    None { extension: bool },
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
        )?;
        self.pin_hooks_dir(main_root, path)
    }

    /// `git worktree add <path> <branch>` for a branch that exists.
    pub fn worktree_add_existing(
        &self,
        main_root: &Utf8Path,
        path: &Utf8Path,
        branch: &str,
    ) -> anyhow::Result<()> {
        self.run(main_root, &["worktree", "add", path.as_str(), branch])?;
        self.pin_hooks_dir(main_root, path)
    }

    /// `git worktree add --no-checkout`: registers `path` (a new dir holding only `.git`) on
    /// `branch`, created at `start` when given. The files come from elsewhere (the trash).
    pub fn worktree_add_no_checkout(
        &self,
        main_root: &Utf8Path,
        path: &Utf8Path,
        branch: &str,
        start: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut args = vec!["worktree", "add", "--no-checkout"];
        match start {
            Some(start) => args.extend(["--no-track", "-b", branch, path.as_str(), start]),
            None => args.extend([path.as_str(), branch]),
        }
        self.run(main_root, &args)?;
        self.pin_hooks_dir(main_root, path)
    }

    /// A relative `core.hooksPath` (husky's `.husky/_`, a tracked `.githooks`) is resolved in
    /// each worktree against its own root: in a session worktree that dir is missing (so git
    /// runs no hook, the gate's included) or is the agent's to write. Each session worktree
    /// gets the main worktree's hooks dir, absolute, in its own config (`config --worktree`,
    /// which a confined agent cannot write); a pin left from an earlier relative setting goes.
    pub fn pin_hooks_dir(&self, main_root: &Utf8Path, worktree: &Utf8Path) -> anyhow::Result<()> {
        let pin = self.hooks_pin(main_root)?;
        self.apply_hooks_pin(&pin, worktree)
    }

    /// What [`Git::pin_hooks_dir`] gives every session worktree, read once from the main
    /// worktree's config (turning `extensions.worktreeConfig` on when a pin is needed).
    pub fn hooks_pin(&self, main_root: &Utf8Path) -> anyhow::Result<HooksPin> {
        let configured = self
            .run(main_root, &["config", "core.hooksPath"])
            .unwrap_or_default();
        let relative =
            !configured.is_empty() && !configured.starts_with('/') && !configured.starts_with('~');
        let extension = self
            .run(
                main_root,
                &["config", "--bool", "extensions.worktreeConfig"],
            )
            .is_ok_and(|v| v == "true");
        if !relative {
            return Ok(HooksPin::None { extension });
        }
        if !extension {
            self.run(main_root, &["config", "extensions.worktreeConfig", "true"])?;
        }
        let dir = self.run(
            main_root,
            &["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
        )?;
        Ok(HooksPin::Dir(dir))
    }

    /// Sets (or clears) one worktree's pinned hooks dir.
    pub fn apply_hooks_pin(&self, pin: &HooksPin, worktree: &Utf8Path) -> anyhow::Result<()> {
        match pin {
            HooksPin::Dir(dir) => self
                .run(worktree, &["config", "--worktree", "core.hooksPath", dir])
                .map(|_| ()),
            HooksPin::None { extension: true } => {
                // Nothing set is fine: `--unset` fails then, and that is no error.
                let _ = self.run(
                    worktree,
                    &["config", "--worktree", "--unset", "core.hooksPath"],
                );
                Ok(())
            }
            HooksPin::None { extension: false } => Ok(()),
        }
    }

    /// The paths of every gitlink (submodule) in the worktree's index or its HEAD's tree. A
    /// path that is not UTF-8 comes back as the bytes' lossy text with `\u{FFFD}`, which
    /// callers treat as unknown.
    pub fn gitlink_paths(&self, worktree: &Utf8Path) -> anyhow::Result<Vec<String>> {
        let mut paths = Vec::new();
        let index = self.run_bytes(worktree, &["ls-files", "-s", "-z"])?;
        let tree = self
            .run_bytes(worktree, &["ls-tree", "-r", "-z", "HEAD"])
            .unwrap_or_default();
        // `<mode> <id> <stage>\t<path>` and `<mode> commit <id>\t<path>`.
        for record in index.split(|b| *b == 0).chain(tree.split(|b| *b == 0)) {
            let Some(tab) = record.iter().position(|b| *b == b'\t') else {
                continue;
            };
            let path = String::from_utf8_lossy(&record[tab + 1..]).into_owned();
            if record.starts_with(b"160000 ") && !paths.contains(&path) {
                paths.push(path);
            }
        }
        Ok(paths)
    }

    /// Fills a worktree's index from its HEAD without touching its files.
    pub fn read_head_into_index(&self, worktree: &Utf8Path) -> anyhow::Result<()> {
        self.run(worktree, &["read-tree", "HEAD"]).map(|_| ())
    }
}
