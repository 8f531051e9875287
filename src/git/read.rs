//! Reads through gix: discovery, revisions, refs, ancestry counts and worktree status.
//! No git process is spawned here.

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;

use super::steady_refs;

use crate::error::UserError;

/// Where a repository lives, as every command needs it.
#[derive(Debug, Clone)]
pub struct RepoPaths {
    /// `git rev-parse --git-common-dir`, absolute.
    pub common_dir: Utf8PathBuf,
    /// The main worktree's root.
    pub main_root: Utf8PathBuf,
}

pub struct Reader {
    /// The main repository: refs and objects are shared by every worktree.
    pub repo: gix::Repository,
    /// The worktree the command runs in: its HEAD is what `HEAD` means to the user.
    current: gix::Repository,
}

fn utf8(path: &std::path::Path) -> anyhow::Result<Utf8PathBuf> {
    let absolute = fs_err::canonicalize(path)?;
    Utf8PathBuf::from_path_buf(absolute).map_err(|p| {
        UserError::runtime(format!("path {} is not valid UTF-8", p.display()))
            .hint("git-codex needs UTF-8 paths for its repository and worktrees")
            .into()
    })
}

impl Reader {
    /// Finds the repository containing `cwd` (honouring GIT_DIR as git does).
    pub fn discover(cwd: &Utf8Path) -> anyhow::Result<(Reader, RepoPaths)> {
        real_git_dir_in_env();
        // History as stored: a replace ref would show the gate another history than the one
        // that lands (the git CLI gets GIT_NO_REPLACE_OBJECTS, see `Git::command`).
        let no_replace = ["core.useReplaceRefs=false"];
        let defaults = gix::sec::trust::Mapping::<gix::open::Options>::default();
        let trust = gix::sec::trust::Mapping {
            full: defaults.full.config_overrides(no_replace),
            reduced: defaults.reduced.config_overrides(no_replace),
        };
        let repo = gix::ThreadSafeRepository::discover_with_environment_overrides_opts(
            cwd,
            Default::default(),
            trust,
        )
        .map(gix::Repository::from)
        .map_err(|_| {
            if let Some(config) = super::formats::sha256_repository(cwd) {
                return UserError::bad_input(format!(
                    "this is a SHA-256 repository ({config} sets extensions.objectFormat = sha256), which git-codex does not support yet"
                ))
                .hint("git-codex reads SHA-1 repositories only for now; use it in a SHA-1 clone");
            }
            UserError::bad_input(format!(
                "not a git repository (or any parent up to /): {cwd}"
            ))
            .hint("run git codex inside a repository, or use 'git -C <path> codex ...'")
        })?;
        super::formats::refuse_reftable(&repo)?;
        if repo.workdir().is_none() {
            return Err(bare_error(repo.git_dir()).into());
        }
        let common_dir = utf8(repo.common_dir())?;
        let mut main = repo
            .clone()
            .main_repo()
            .context("cannot open the main repository of this worktree")?;
        // Diffs and walks read the same trees and commits again and again.
        main.object_cache_size_if_unset(16 * 1024 * 1024);
        let Some(main_workdir) = main.workdir() else {
            return Err(bare_error(main.git_dir()).into());
        };
        let main_root = utf8(main_workdir)?;
        let paths = RepoPaths {
            common_dir,
            main_root,
        };
        Ok((
            Reader {
                repo: main,
                current: repo,
            },
            paths,
        ))
    }

    /// Resolves a revision, as the current worktree sees it, to a commit id.
    pub fn resolve_commit(&self, rev: &str) -> anyhow::Result<ObjectId> {
        let bad = || {
            if rev == "HEAD" {
                UserError::bad_input("HEAD names no commit: this branch has no commits yet")
                    .hint("make a first commit, or pass --base REV")
            } else {
                UserError::bad_input(format!(
                    "bad base revision '{rev}': it names no commit in this repository"
                ))
                .hint("give a branch, tag or commit, e.g. --base main")
            }
        };
        let id = steady_refs::rev_parse(&self.current, rev).map_err(|_| bad())?;
        let commit = id
            .object()
            .map_err(|_| bad())?
            .peel_to_commit()
            .map_err(|_| bad())?;
        Ok(commit.id)
    }

    /// The commit whose id is or starts with `hex` (4 to 40 hex digits): `Ok(None)` when no
    /// object has it, an error naming the problem when it is ambiguous or not a commit.
    pub fn commit_by_prefix(&self, hex: &str) -> anyhow::Result<Option<ObjectId>> {
        use gix::prelude::Find as _;
        let prefix = gix::hash::Prefix::from_hex(hex).map_err(|err| {
            anyhow::anyhow!("'{hex}' is not a commit id or a prefix of one ({err})")
        })?;
        let id = match self.repo.objects.lookup_prefix(prefix, None)? {
            None => return Ok(None),
            Some(Err(())) => {
                anyhow::bail!("'{hex}' is the start of more than one object's id: give more of it")
            }
            Some(Ok(id)) => id,
        };
        let mut buf = Vec::new();
        match self.repo.objects.try_find(&id, &mut buf)? {
            Some(data) if data.kind == gix::object::Kind::Commit => Ok(Some(id)),
            _ => anyhow::bail!("'{hex}' names {id}, which is not a commit"),
        }
    }

    /// The commit a ref points at, or `None` when the ref does not exist.
    pub fn ref_target(&self, name: &str) -> anyhow::Result<Option<ObjectId>> {
        match steady_refs::find(&self.repo, name)? {
            Some(mut reference) => Ok(Some(reference.peel_to_id()?.detach())),
            None => Ok(None),
        }
    }

    /// The object a ref points at, not peeled (an annotated tag stays a tag).
    pub fn ref_id(&self, name: &str) -> anyhow::Result<Option<ObjectId>> {
        match steady_refs::find(&self.repo, name)? {
            Some(reference) => Ok(reference.target().try_id().map(|id| id.to_owned())),
            None => Ok(None),
        }
    }

    /// The full name of the branch `rev` names, if it names one (`main` → `refs/heads/main`,
    /// `origin/main` → `refs/remotes/origin/main`, `HEAD` → the current worktree's branch).
    pub fn branch_named(&self, rev: &str) -> Option<String> {
        if rev == "HEAD" {
            let head = self.current.head_name().ok()??;
            return Some(head.as_bstr().to_string());
        }
        ["refs/heads/", "refs/remotes/"]
            .iter()
            .map(|prefix| format!("{prefix}{rev}"))
            .find(|full| matches!(steady_refs::find(&self.repo, full), Ok(Some(_))))
    }

    /// The repository's default branch, as people mean it: what `origin/HEAD` names, else
    /// `init.defaultBranch` or `main`, `master`, `trunk` when such a branch exists, else the
    /// branch the main worktree has checked out. `None` when none names a branch.
    pub fn default_branch(&self) -> Option<String> {
        if let Ok(Some(origin)) = steady_refs::find(&self.repo, "refs/remotes/origin/HEAD")
            && let Some(target) = origin.target().try_name()
            && let Some(branch) = target
                .as_bstr()
                .to_string()
                .strip_prefix("refs/remotes/origin/")
        {
            return Some(branch.to_string());
        }
        let configured = self
            .repo
            .config_snapshot()
            .string("init.defaultBranch")
            .map(|b| b.to_string());
        let named = configured
            .into_iter()
            .chain(["main", "master", "trunk"].map(str::to_string))
            .find(|b| {
                matches!(
                    steady_refs::find(&self.repo, &format!("refs/heads/{b}")),
                    Ok(Some(_))
                )
            });
        if named.is_some() {
            return named;
        }
        let head = std::fs::read_to_string(self.repo.common_dir().join("HEAD")).ok()?;
        head.trim_end()
            .strip_prefix("ref: refs/heads/")
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    }

    /// Tips (peeled) of every ref but git-codex's own (`refs/codex/…`) and those named in
    /// `except`: local and remote-tracking branches, tags, the stash, notes.
    pub fn ref_tips_except(&self, except: &[String]) -> anyhow::Result<Vec<ObjectId>> {
        let mut tips = Vec::new();
        for mut reference in steady_refs::list_skipping_broken(&self.repo)? {
            let name = reference.name().as_bstr().to_string();
            if name.starts_with("refs/codex/") || except.contains(&name) {
                continue;
            }
            if let Ok(id) = reference.peel_to_id()
                && self.repo.find_commit(id.detach()).is_ok()
            {
                tips.push(id.detach());
            }
        }
        Ok(tips)
    }

    /// The commits reachable from `tip` but from none of `hidden`.
    pub fn commits_between(
        &self,
        tip: ObjectId,
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<ObjectId>> {
        self.commits_from(&[tip], hidden)
    }

    /// The commits reachable from any of `tips` but from none of `hidden`.
    pub fn commits_from(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<ObjectId>> {
        Ok(self
            .commits_with_parents(tips, hidden)?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }

    /// As [`Reader::commits_from`], each commit with its parents.
    pub fn commits_with_parents(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<(ObjectId, Vec<ObjectId>)>> {
        let tips: Vec<ObjectId> = tips
            .iter()
            .filter(|t| !hidden.contains(t))
            .copied()
            .collect();
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let walk = self
            .repo
            .rev_walk(tips)
            .with_hidden(hidden.iter().copied())
            .all()?;
        let mut out = Vec::new();
        for info in walk {
            let info = info?;
            out.push((info.id, info.parent_ids.iter().copied().collect()));
        }
        Ok(out)
    }

    /// Commits reachable from `tip` but from none of `hidden`.
    pub fn count_exclusive(&self, tip: ObjectId, hidden: &[ObjectId]) -> anyhow::Result<usize> {
        Ok(self.commits_between(tip, hidden)?.len())
    }

    /// Local branches whose full name starts with `prefix`, with their tips.
    pub fn branches_with_prefix(&self, prefix: &str) -> anyhow::Result<Vec<(String, ObjectId)>> {
        self.branches_where(|name| name.starts_with(prefix))
    }

    /// Local branches whose full name `wanted` accepts, with their tips (only those are
    /// peeled: a hook asks for the protected ones among hundreds of session branches).
    pub fn branches_where(
        &self,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        for mut reference in steady_refs::list(&self.repo, "refs/heads/")? {
            let name = reference.name().as_bstr().to_string();
            if wanted(&name)
                && let Ok(id) = reference.peel_to_id()
            {
                out.push((name, id.detach()));
            }
        }
        Ok(out)
    }

    /// For each of `prefixes` (ending in `/`), every ref whose full name starts with it,
    /// with the object it names (not peeled); read side by side.
    pub fn refs_with_prefixes(
        &self,
        prefixes: &[&str],
    ) -> anyhow::Result<Vec<std::collections::BTreeMap<String, ObjectId>>> {
        steady_refs::direct_with_prefixes(&self.repo, prefixes)
    }

    /// Tips of every local branch except those named (full names) in `except`.
    pub fn branch_tips_except(&self, except: &[String]) -> anyhow::Result<Vec<ObjectId>> {
        let mut tips = Vec::new();
        for mut reference in steady_refs::list(&self.repo, "refs/heads/")? {
            let name = reference.name().as_bstr().to_string();
            if except.contains(&name) {
                continue;
            }
            if let Ok(id) = reference.peel_to_id() {
                tips.push(id.detach());
            }
        }
        Ok(tips)
    }

    /// The commits of `tip` not reachable from `hidden`, newest first.
    pub fn commit_lines(
        &self,
        tip: ObjectId,
        hidden: ObjectId,
    ) -> anyhow::Result<Vec<crate::review::CommitLine>> {
        let mut lines = Vec::new();
        if tip == hidden {
            return Ok(lines);
        }
        for info in self.repo.rev_walk([tip]).with_hidden([hidden]).all()? {
            let commit = self.repo.find_commit(info?.id)?;
            let author = commit.author()?;
            lines.push(crate::review::CommitLine {
                sha: commit.id.to_string(),
                subject: commit.message()?.summary().to_string(),
                author: format!("{} <{}>", author.name, author.email),
            });
        }
        Ok(lines)
    }

    /// The branch checked out in the current worktree and its commit (`None` when detached
    /// or unborn).
    pub fn current_head(&self) -> anyhow::Result<Option<(String, ObjectId)>> {
        let Some(name) = self.current.head_name()? else {
            return Ok(None);
        };
        let name = name.as_bstr().to_string();
        let Ok(Some(mut branch)) = steady_refs::find(&self.current, &name) else {
            return Ok(None);
        };
        Ok(Some((name, branch.peel_to_id()?.detach())))
    }

    /// An object's data as stored (a tag with its signature, say).
    pub fn raw_object(&self, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        Ok(self.repo.find_object(id)?.data.clone())
    }

    /// The git dir of the current worktree (`.git`, or `.git/worktrees/<name>`).
    pub fn current_git_dir(&self) -> Utf8PathBuf {
        Utf8PathBuf::from_path_buf(self.current.git_dir().to_path_buf()).unwrap_or_default()
    }

    /// A commit's first parent.
    pub fn first_parent(&self, id: ObjectId) -> Option<ObjectId> {
        let commit = self.repo.find_commit(id).ok()?;
        commit.parent_ids().next().map(|p| p.detach())
    }

    /// The base of a restored session: the main worktree's branch, counted from where the
    /// session's history meets it.
    pub fn restore_base(&self, start: ObjectId) -> anyhow::Result<(String, ObjectId)> {
        let Some(head) = self.repo.head_name()? else {
            return Ok((start.to_string(), start));
        };
        let name = head.shorten().to_string();
        let tip = match steady_refs::find(&self.repo, &head.as_bstr().to_string())? {
            Some(mut branch) => branch.peel_to_id()?.detach(),
            None => return Ok((start.to_string(), start)),
        };
        let meet = self
            .repo
            .merge_base(start, tip)
            .ok()
            .flatten()
            .map_or(start, |id| id.detach());
        Ok((name, meet))
    }

    /// The committer time of a commit.
    pub fn commit_time(&self, id: ObjectId) -> anyhow::Result<jiff::Timestamp> {
        let commit = self.repo.find_commit(id)?;
        let seconds = commit.time()?.seconds;
        Ok(jiff::Timestamp::from_second(seconds)?)
    }
}

/// The common git dir of the repository containing `cwd`, bare or not; `None` outside any.
/// The config commands need only this, so that a server's bare repository can be configured.
/// `GIT_DIR` (a hook's, say) through a symbolic link: git resolves `commondir` against the
/// real directory, gix against the path as written; give gix the real one.
fn real_git_dir_in_env() {
    let Some(dir) = std::env::var_os("GIT_DIR") else {
        return;
    };
    if let Ok(real) = std::fs::canonicalize(std::path::Path::new(&dir).join("."))
        && real.as_os_str() != dir
    {
        // SAFETY: called while the command opens its repository, before any thread of its
        // own is started; git started from here sees the same directory.
        unsafe { std::env::set_var("GIT_DIR", real) };
    }
}

pub fn discover_common_dir(cwd: &Utf8Path) -> anyhow::Result<Option<Utf8PathBuf>> {
    match gix::discover_with_environment_overrides(cwd) {
        Ok(repo) => {
            // A bare server's gate (`pre-receive`) reads refs through the git CLI, which
            // reads reftable: its config stays reachable there.
            if repo.workdir().is_some() {
                super::formats::refuse_reftable(&repo)?;
            }
            utf8(repo.common_dir()).map(Some)
        }
        Err(_) => Ok(None),
    }
}

fn bare_error(git_dir: &std::path::Path) -> UserError {
    UserError::bad_input(format!(
        "{} is a bare repository: sessions need a main worktree",
        git_dir.display()
    ))
    .hint("run git codex in a clone with a working tree")
}

/// What a worktree holds now: where its HEAD is, and whether it has changes (staged,
/// unstaged, deleted or untracked non-ignored files).
pub struct WorktreeState {
    pub head: Option<ObjectId>,
    pub dirty: anyhow::Result<bool>,
}

/// Reads a worktree's state in-process, opening it once. `known` is a commit and its tree the
/// caller has already read (the session branch's tip): when HEAD is there, no object is read.
pub fn worktree_state(worktree: &Utf8Path) -> anyhow::Result<WorktreeState> {
    worktree_state_knowing(worktree, None, false)
}

/// What the caller already knows of the branch a worktree should have checked out.
#[derive(Debug, Clone)]
pub struct KnownHead {
    /// `refs/heads/…`
    pub branch_ref: String,
    pub tip: ObjectId,
    /// The tip's tree.
    pub tree: ObjectId,
    pub hash: gix::hash::Kind,
    /// `info/exclude` ignores the session file (see `state::session_file_excluded`).
    pub session_file_excluded: bool,
}

/// A worktree's HEAD and whether it is dirty. With `known`, a clean worktree on that branch
/// is recognised by stat alone (see `fast_status`); anything else gets gix's full status.
/// With `refresh`, a clean worktree whose files had to be read gets its index written back
/// with their stat data, as `git status` does (see `index_refresh`): only for a worktree no
/// agent is running in.
pub fn worktree_state_knowing(
    worktree: &Utf8Path,
    known: Option<&KnownHead>,
    refresh: bool,
) -> anyhow::Result<WorktreeState> {
    if let Some(k) = known
        && super::fast_status::certainly_clean(worktree, k)
    {
        return Ok(WorktreeState {
            head: Some(k.tip),
            dirty: Ok(false),
        });
    }
    let repo = open_worktree(worktree)?;
    let head = repo.head_id().ok().map(|id| id.detach());
    let head_tree = match known {
        Some(k) if Some(k.tip) == head => Some(k.tree),
        _ => None,
    };
    Ok(WorktreeState {
        head,
        dirty: is_dirty(&repo, head_tree, refresh),
    })
}

/// Writes back the index of a worktree git has just checked out, as the first `git status`
/// there would, once the filesystem's clock has moved past it: git writes the last files in
/// the same tick of that clock as the index, and until the index is written in a later tick
/// those entries are racily clean, so that every look reads them again and `fast_status`
/// cannot answer at all. Only tracked files are looked at (their stat data; the racy ones'
/// content), and only when some entry is racy. Best effort; the wait is at most one tick of
/// the coarse clock the kernel stamps files with (a few ms).
pub fn settle_checkout(worktree: &Utf8Path) {
    let _ = settle(worktree);
}

fn settle(worktree: &Utf8Path) -> anyhow::Result<()> {
    let repo = open_worktree(worktree)?;
    if has_untrusted_filter(&repo) {
        return Ok(());
    }
    let (index, read) = read_index(&repo)?;
    let written = index.timestamp();
    let racy = index
        .entries()
        .iter()
        .any(|e| e.stat.is_racy(written, super::fast_status::NSEC_STAT));
    if read.is_empty() || !racy || !super::index_refresh::may_write(&index) {
        return Ok(());
    }
    wait_for_clock_past(written);
    let index_path = repo.index_path();
    let index = gix::index::File::from_state(index, super::index_refresh::temp_path(&index_path));
    let mut items = worktree_status(&repo, index, gix::status::UntrackedFiles::None, None)?;
    if items.next().transpose()?.is_none()
        && let Some(outcome) = items.into_outcome()
    {
        super::index_refresh::write_back(&index_path, &read, outcome);
    }
    Ok(())
}

/// A worktree opened for its status: racily clean entries are told by the nanosecond, as in
/// `fast_status`.
fn open_worktree(worktree: &Utf8Path) -> anyhow::Result<gix::Repository> {
    Ok(gix::open_opts(
        worktree.as_std_path(),
        gix::open::Options::default().config_overrides(["gitoxide.core.useNsec=true"]),
    )?)
}

fn wait_for_clock_past(time: filetime::FileTime) {
    let time = (time.unix_seconds(), i64::from(time.nanoseconds()));
    for _ in 0..50 {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        if (now.tv_sec, now.tv_nsec) > time {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn is_dirty(
    repo: &gix::Repository,
    head_tree: Option<ObjectId>,
    refresh: bool,
) -> anyhow::Result<bool> {
    if has_untrusted_filter(repo) {
        // Comparing content would run a filter command from the worktree the agent wrote:
        // counted dirty without looking (a removal then snapshots it, through git-codex's git,
        // which does not run such filters in session worktrees).
        return Ok(true);
    }
    let (index, read) = read_index(repo)?;
    let head_tree = match head_tree {
        Some(tree) => tree,
        None => repo.head_tree_id_or_empty()?.detach(),
    };
    if has_staged_changes(repo, &index, head_tree)? {
        return Ok(true);
    }
    // What the status below does not see: files outside the sparse checkout, and nested
    // repositories (left out of it so that none of their config runs) that moved.
    if let Some(worktree) = repo.workdir().and_then(|w| Utf8Path::from_path(w))
        && (super::unseen::skipped_but_present(worktree, &index)
            || super::unseen::moved_gitlink(worktree, &index))
    {
        return Ok(true);
    }
    let index_path = repo.index_path();
    let refresh = refresh && !read.is_empty() && super::index_refresh::may_write(&index);
    // Refreshed, the index is written beside the real one first.
    let file_path = if refresh {
        super::index_refresh::temp_path(&index_path)
    } else {
        index_path.clone()
    };
    let index = gix::index::File::from_state(index, file_path);
    // One thread per worktree: callers spread many worktrees over the cores instead.
    let mut items = worktree_status(repo, index, gix::status::UntrackedFiles::Collapsed, Some(1))?;
    let dirty = items.next().transpose()?.is_some();
    if !dirty
        && refresh
        && let Some(outcome) = items.into_outcome()
    {
        super::index_refresh::write_back(&index_path, &read, outcome);
    }
    Ok(dirty)
}

/// gix's status of the worktree against `index`, with nested repositories left out (their
/// status would run their config, filters included, which the agent wrote).
fn worktree_status(
    repo: &gix::Repository,
    index: gix::index::File,
    untracked: gix::status::UntrackedFiles,
    thread_limit: Option<usize>,
) -> anyhow::Result<gix::status::index_worktree::Iter> {
    Ok(repo
        .status(gix::progress::Discard)?
        .index(gix::worktree::IndexPersistedOrInMemory::InMemory(index))
        .untracked_files(untracked)
        .index_worktree_rewrites(None)
        .index_worktree_submodules(gix::status::Submodule::Given {
            ignore: gix::submodule::config::Ignore::All,
            check_dirty: false,
        })
        .index_worktree_options_mut(|opts| opts.thread_limit = thread_limit)
        .into_index_worktree_iter(Vec::<gix::bstr::BString>::new())?)
}

/// Whether the repository configures a filter driver other than git-lfs's (see
/// `Git::guarding_sessions`).
fn has_untrusted_filter(repo: &gix::Repository) -> bool {
    let config = repo.config_snapshot();
    let Some(sections) = config.plumbing().sections_by_name("filter") else {
        return false;
    };
    let mut listing = Vec::new();
    for section in sections {
        let name = section
            .header()
            .subsection_name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        for kind in ["clean", "smudge", "process"] {
            if let Some(value) = section.value(kind) {
                listing.extend_from_slice(format!("filter.{name}.{kind}\n{value}\0").as_bytes());
            }
        }
    }
    !super::session_overrides_from(&listing, Utf8Path::new("/")).is_empty()
}

/// The worktree's index, read into memory rather than mapped (with several threads at work,
/// every unmap interrupts the other cores) and without re-hashing the whole file.
/// With the bytes it was read from (none when there is no index).
fn read_index(repo: &gix::Repository) -> anyhow::Result<(gix::index::State, Vec<u8>)> {
    let path = repo.index_path();
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((gix::index::State::new(repo.object_hash()), Vec::new()));
        }
        Err(err) => return Err(err.into()),
    };
    let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&path)?);
    let (state, _) =
        gix::index::State::from_bytes(&data, mtime, repo.object_hash(), Default::default())?;
    Ok((state, data))
}

/// Whether the index differs from HEAD's tree. The index's cache-tree answers at once when
/// it is valid (as after a checkout or commit); otherwise the trees are compared.
fn has_staged_changes(
    repo: &gix::Repository,
    index: &gix::index::State,
    head_tree: ObjectId,
) -> anyhow::Result<bool> {
    if let Some(tree) = index.tree()
        && tree.num_entries.is_some()
    {
        return Ok(tree.id != head_tree);
    }
    let mut pathspec = repo.pathspec(
        false,
        None::<&str>,
        false,
        &gix::index::State::new(repo.object_hash()),
        gix::worktree::stack::state::attributes::Source::IdMapping,
    )?;
    let mut changed = false;
    repo.tree_index_status(
        &head_tree,
        index,
        Some(&mut pathspec),
        gix::status::tree_index::TrackRenames::Disabled,
        |_, _, _| {
            changed = true;
            Ok(gix::diff::index::Action::Break(()))
        },
    )?;
    Ok(changed)
}
