//! Snapshots: the uncommitted state of a worktree committed to `refs/codex/snapshots/<id>`
//! without moving any branch or touching the user's index (SPEC §3, §8).

use anyhow::Context as _;
use camino::Utf8Path;

use super::{Git, unseen};

pub fn snapshot_ref(id: &str) -> String {
    format!("refs/codex/snapshots/{id}")
}

/// The identity of commits git-codex makes itself, so they never depend on the user's setup.
pub const MACHINE_NAME: &str = "git-codex";
pub const MACHINE_EMAIL: &str = "git-codex@localhost";

/// A scratch index file, removed when dropped.
pub(super) struct ScratchIndex(camino::Utf8PathBuf);

impl ScratchIndex {
    pub(super) fn path(&self) -> &Utf8Path {
        &self.0
    }

    pub(super) fn new(scratch_dir: &Utf8Path) -> anyhow::Result<Self> {
        fs_err::create_dir_all(scratch_dir)?;
        Ok(ScratchIndex(
            scratch_dir.join(format!(".snapshot-index-{}", std::process::id())),
        ))
    }
}

impl Drop for ScratchIndex {
    fn drop(&mut self) {
        let _ = fs_err::remove_file(&self.0);
    }
}

impl Git {
    /// Commits everything in `worktree` that differs from its HEAD (tracked changes, deletions,
    /// untracked non-ignored files, modes) to the snapshot ref of `id`. Earlier snapshots stay
    /// reachable as a second parent. Returns the new snapshot, or `None` when the tree is clean
    /// and not `keep_head` (set when HEAD has commits the branch lacks: the snapshot keeps
    /// them reachable).
    pub fn snapshot(
        &self,
        worktree: &Utf8Path,
        id: &str,
        scratch_dir: &Utf8Path,
        keep_head: bool,
    ) -> anyhow::Result<Option<String>> {
        let index = ScratchIndex::new(scratch_dir)?;
        let head = self.run(worktree, &["rev-parse", "--verify", "HEAD^{commit}"])?;
        // Start from a copy of the worktree's index: its stat cache spares re-hashing every file.
        // The index lies in the admin dir, which the agent may write: a link there (to a file
        // of the person's), a fifo, or a file git cannot read is not used; HEAD's tree is.
        let real_index = self.index_path(worktree)?;
        let copied = match crate::state::read_regular_file(&real_index)? {
            Some(bytes) => {
                fs_err::write(&index.0, bytes).context("cannot copy the worktree's index")?;
                self.with_index(worktree, &index.0, &["ls-files", "--stage", "-z"])
                    .is_ok()
            }
            None => false,
        };
        if !copied {
            self.with_index(worktree, &index.0, &["read-tree", &head])?;
        }
        let nested = self.nested_gitlinks(worktree, Some(&index.0))?;
        let mut add = vec!["add", "--sparse", "-A", "--", "."];
        add.extend(nested.exclusions.iter().map(String::as_str));
        self.with_index(worktree, &index.0, &add)?;
        if let Some(update) = nested.update_index() {
            self.with_index(worktree, &index.0, &update)?;
        }
        let tree = self.with_index(worktree, &index.0, &["write-tree"])?;
        let tree = self.store_unfiltered(worktree, &index.0, &head, tree)?;
        let head_tree = self.run(worktree, &["rev-parse", &format!("{head}^{{tree}}")])?;
        if tree == head_tree && !keep_head {
            return Ok(None);
        }
        self.commit_snapshot(worktree, id, &tree, Some(&head), worktree)
            .map(Some)
    }

    /// Commits `tree` on top of `head` (and the previous snapshot), then moves the snapshot
    /// ref with compare-and-swap.
    fn commit_snapshot(
        &self,
        cwd: &Utf8Path,
        id: &str,
        tree: &str,
        head: Option<&str>,
        source: &Utf8Path,
    ) -> anyhow::Result<String> {
        let reference = snapshot_ref(id);
        let previous = self
            .run(
                cwd,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{reference}^{{commit}}"),
                ],
            )
            .ok()
            .filter(|s| !s.is_empty());
        let message = format!(
            "codex({id}): snapshot of uncommitted work\n\nworktree: {source}\n{}\n",
            super::unfiltered::MARKER
        );
        let mut args = vec!["commit-tree", tree];
        for parent in head.iter().chain(previous.as_deref().iter()) {
            args.extend(["-p", parent]);
        }
        args.extend(["-m", message.as_str()]);
        let mut cmd = self.command(cwd);
        machine_identity(&mut cmd);
        let commit = self.run_with(cmd, &args)?;
        // An empty old value means "must not exist yet": compare-and-swap either way.
        let old = previous.unwrap_or_default();
        self.run(
            cwd,
            &[
                "update-ref",
                "-m",
                "git-codex: snapshot",
                &reference,
                &commit,
                &old,
            ],
        )?;
        Ok(commit)
    }

    /// Commits everything the agent changed in `worktree` (tracked, untracked non-ignored,
    /// deletions, renames, modes), except `exclude` (paths `copy_files` put there), to its
    /// branch `branch_ref` as `codex(<id>): snapshot`. Plumbing only: no user hook runs and no
    /// user identity is needed. Returns the commit, or `None` when nothing changed.
    pub fn commit_worktree(
        &self,
        worktree: &Utf8Path,
        branch_ref: &str,
        id: &str,
        exclude: &[String],
    ) -> anyhow::Result<Option<String>> {
        let head_ref = self
            .run(worktree, &["symbolic-ref", "-q", "HEAD"])
            .unwrap_or_default();
        if head_ref != branch_ref {
            let head = if head_ref.is_empty() {
                "detached"
            } else {
                head_ref.as_str()
            };
            return Err(crate::error::UserError::refused(format!(
                "the worktree {worktree} is not on its session branch {branch_ref} (HEAD is {head})"
            ))
            .hint(format!(
                "switch back with 'git -C {worktree} switch {}'",
                branch_ref.trim_start_matches("refs/heads/")
            ))
            .into());
        }
        self.repair_index(worktree)?;
        let mut excluded: Vec<String> = exclude
            .iter()
            .map(|p| format!(":(exclude,literal){p}"))
            .collect();
        let nested = self.nested_gitlinks(worktree, None)?;
        excluded.extend(nested.exclusions.iter().cloned());
        // `--sparse`: files outside the sparse checkout are the agent's work too.
        let mut add = vec!["add", "--sparse", "-A", "--", "."];
        add.extend(excluded.iter().map(String::as_str));
        self.run(worktree, &add)?;
        if let Some(update) = nested.update_index() {
            self.run(worktree, &update)?;
        }
        let tree = self.run(worktree, &["write-tree"])?;
        let head = self.run(worktree, &["rev-parse", "--verify", "HEAD^{commit}"])?;
        if tree == self.run(worktree, &["rev-parse", &format!("{head}^{{tree}}")])? {
            return Ok(None);
        }
        let message = format!("codex({id}): snapshot\n");
        let (name, email) = (format!("codex({id})"), format!("{id}@codex.localhost"));
        let mut cmd = self.command(worktree);
        cmd.env("GIT_AUTHOR_NAME", &name)
            .env("GIT_AUTHOR_EMAIL", &email)
            .env("GIT_COMMITTER_NAME", &name)
            .env("GIT_COMMITTER_EMAIL", &email);
        let commit = self.run_with(cmd, &["commit-tree", &tree, "-p", &head, "-m", &message])?;
        let update = [
            "update-ref",
            "-m",
            "git-codex: review snapshot",
            branch_ref,
            &commit,
            &head,
        ];
        self.run(worktree, &update)?;
        Ok(Some(commit))
    }

    /// Where the worktree's index is, as a path in its git dir: `--git-path index` would
    /// resolve a link the agent put there and name what it points to.
    fn index_path(&self, worktree: &Utf8Path) -> anyhow::Result<camino::Utf8PathBuf> {
        let git_dir = self.run(
            worktree,
            &["rev-parse", "--path-format=absolute", "--git-dir"],
        )?;
        Ok(Utf8Path::new(&git_dir).join("index"))
    }

    /// The worktree's index as git will use it: a link the agent left in its place (to a file
    /// of the person's, say) or anything else that is no regular file is removed and the index
    /// made again from HEAD, so git reads nothing through it.
    fn repair_index(&self, worktree: &Utf8Path) -> anyhow::Result<()> {
        let path = self.index_path(worktree)?;
        let path = path.as_path();
        match fs_err::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err.into()),
            Ok(meta) => {
                if meta.is_dir() {
                    fs_err::remove_dir_all(path)?;
                } else {
                    fs_err::remove_file(path)?;
                }
                self.run(worktree, &["read-tree", "HEAD"]).map(|_| ())
            }
        }
    }

    /// The gitlinks of the index (`index`, else the worktree's own): pathspecs that keep
    /// `git add -A` out of each, and the ones whose nested repository moved. For such an
    /// entry `add` asks the nested repository whether it is dirty, by running `git status` in
    /// it: under that repository's config, which the agent wrote (its fsmonitor hook, its
    /// filters). git has no option to skip that; a path outside the pathspec is never
    /// compared, and a move is read in-process ([`unseen::nested_head`]) and staged by
    /// `update-index`, as `add` would. A nested repository not yet in the index is only named
    /// (its HEAD read) by `add`, which is safe.
    fn nested_gitlinks(
        &self,
        worktree: &Utf8Path,
        index: Option<&Utf8Path>,
    ) -> anyhow::Result<Nested> {
        let mut cmd = self.command(worktree);
        if let Some(index) = index {
            cmd.env("GIT_INDEX_FILE", index.as_str());
        }
        let args = ["ls-files", "--stage", "-z"];
        let os_args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        let out = self.output(cmd, &os_args)?;
        super::check(&args, &out)?;
        let mut nested = Nested::default();
        for (path, id) in gitlinks(&out.stdout) {
            let Ok(path) = std::str::from_utf8(path) else {
                return Err(crate::error::UserError::refused(format!(
                    "the worktree {worktree} holds a nested repository at a path that is not UTF-8 ({}); git-codex does not run git over it",
                    String::from_utf8_lossy(path)
                ))
                .hint("look at it, and rename or remove it yourself")
                .into());
            };
            nested.exclusions.push(format!(":(exclude,literal){path}"));
            // Same hash kind only: a sha256 nested repository cannot be a sha1 gitlink.
            let recorded = gix::ObjectId::from_hex(id).ok();
            if let Some(head) = unseen::nested_head(&worktree.join(path))
                && recorded.is_some_and(|r| r != head && r.kind() == head.kind())
            {
                nested.moved.push((path.to_string(), head.to_string()));
            }
        }
        Ok(nested)
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

/// The paths and commits of the gitlinks in `git ls-files --stage -z` output
/// (`<mode> <object> <stage>\t<path>\0`…).
pub fn gitlinks(listed: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    listed.split(|b| *b == 0).filter_map(|entry| {
        let tab = entry.iter().position(|b| *b == b'\t')?;
        let id = entry.get(7..)?.split(|b| *b == b' ').next()?;
        entry
            .starts_with(b"160000 ")
            .then(|| (&entry[tab + 1..], id))
    })
}

/// What [`Git::nested_gitlinks`] found.
#[derive(Default)]
struct Nested {
    exclusions: Vec<String>,
    /// (path, commit now checked out there)
    moved: Vec<(String, String)>,
}

impl Nested {
    /// The `update-index` that records each move, when there is one.
    fn update_index(&self) -> Option<Vec<&str>> {
        if self.moved.is_empty() {
            return None;
        }
        let mut args = vec!["update-index"];
        for (path, head) in &self.moved {
            args.extend(["--cacheinfo", "160000", head.as_str(), path.as_str()]);
        }
        Some(args)
    }
}

/// Author and committer for machine-made commits.
pub fn machine_identity(cmd: &mut std::process::Command) {
    cmd.env("GIT_AUTHOR_NAME", MACHINE_NAME)
        .env("GIT_AUTHOR_EMAIL", MACHINE_EMAIL)
        .env("GIT_COMMITTER_NAME", MACHINE_NAME)
        .env("GIT_COMMITTER_EMAIL", MACHINE_EMAIL);
}
