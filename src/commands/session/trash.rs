//! The trash: a removed worktree goes whole (ignored files, nested repositories, modes) to
//! `<state>/trash/<id>@<seconds>/worktree`, by a rename; `restore` takes it back and `prune`
//! empties what is older than `session.trash_retention` (SPEC §8). Nothing is moved or
//! deleted that git-codex cannot prove it made, and no symlink is followed.

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::context::resolve_path;
use crate::error::UserError;
use crate::git::read::RepoPaths;
use crate::git::worktrees::{forget_worktree, holds_modules, owned_admin_dir};
use crate::state::atomic_write;
use std::io::Write as _;

/// What a trash entry says of itself (`meta.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub id: String,
    pub branch: String,
    /// The worktree's HEAD commit when it was removed.
    pub head: Option<String>,
    pub removed: Timestamp,
    /// Where the worktree was.
    pub worktree: Utf8PathBuf,
    /// Files `copy_files` put there, never committed by review.
    #[serde(default)]
    pub copied_files: Vec<String>,
    /// The name of git's admin dir for it, which its submodules' `.git` files name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Set on what an interrupted `add` or `restore` had made when it was rolled back: kept,
    /// but never what `restore` brings back (it may be half-written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// One entry of the trash.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dir: Utf8PathBuf,
    pub meta: Option<Meta>,
}

impl Entry {
    /// When it was trashed: from its meta, else from its name.
    pub fn removed(&self) -> Option<Timestamp> {
        self.meta.as_ref().map(|m| m.removed).or_else(|| {
            let name = self.dir.file_name()?;
            let secs: i64 = name.rsplit_once('@')?.1.split('-').next()?.parse().ok()?;
            Timestamp::from_second(secs).ok()
        })
    }

    pub fn worktree(&self) -> Utf8PathBuf {
        self.dir.join("worktree")
    }
}

pub fn root(common_dir: &Utf8Path) -> Utf8PathBuf {
    crate::state::StateDir::new(common_dir).root.join("trash")
}

/// Why a dir may be moved to the trash.
#[derive(Debug)]
pub struct Proof {
    pub path: Utf8PathBuf,
    /// Git's admin dir for it, when its `.git` file and the admin dir name each other.
    pub admin: Option<Utf8PathBuf>,
}

/// Proves that git-codex made `path` before anything touches it: a linked worktree of this
/// repository (its `.git` file and git's admin dir name each other), or, when `recorded`, a
/// real dir under the worktree base. Never the repository or anything holding it, never a
/// symlink. `None` when `path` is gone.
pub fn prove(
    paths: &RepoPaths,
    base: &Utf8Path,
    path: &Utf8Path,
    recorded: bool,
) -> anyhow::Result<Option<Proof>> {
    let meta = match fs_err::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let refuse = |why: &str| -> anyhow::Result<Option<Proof>> {
        Err(UserError::refused(format!(
            "{path} was not removed: {why}; git-codex deletes nothing it cannot prove it made"
        ))
        .hint(format!(
            "look at it, and move or delete it yourself if it is yours to lose ({path})"
        ))
        .into())
    };
    if meta.file_type().is_symlink() {
        return refuse("it is a symlink, and git-codex follows none");
    }
    if !meta.is_dir() {
        return refuse("it is not a directory");
    }
    let real = resolve_path(path);
    let git_dir = resolve_path(&paths.common_dir);
    for precious in [resolve_path(&paths.main_root), git_dir.clone()] {
        if precious.starts_with(&real) {
            return refuse(&format!("it is or holds the repository ({precious})"));
        }
    }
    if real.starts_with(&git_dir) {
        return refuse(&format!("it lies inside the git dir {git_dir}"));
    }
    let admin = owned_admin_dir(path, &paths.common_dir);
    if admin.is_none() && !(recorded && recorded_under(&real, base)) {
        return refuse(
            "it is no session's recorded worktree under the worktree base, and its .git does not point into this repository's worktrees",
        );
    }
    if admin.is_none()
        && fs_err::symlink_metadata(path.join(".git")).is_ok()
        && !names_lost_admin(path, &paths.common_dir)
    {
        // Snapshotting it would write into whatever repository its .git names.
        return refuse("its .git does not point into this repository's worktrees any more");
    }
    // Never carry another worktree along (a base set inside a session's worktree).
    for entry in crate::git::worktrees::admin_entries(&paths.common_dir)? {
        if let Some(other) = entry.worktree {
            let other = resolve_path(&other);
            if other != real && other.starts_with(&real) {
                return refuse(&format!("it holds another worktree ({other})"));
            }
        }
    }
    Ok(Some(Proof {
        path: path.to_owned(),
        admin,
    }))
}

/// Whether `dir/.git` is the file git wrote for a linked worktree of this repository whose
/// admin dir is gone: nothing else is reached through it (git run there finds nothing).
fn names_lost_admin(dir: &Utf8Path, common_dir: &Utf8Path) -> bool {
    let dot_git = dir.join(".git");
    if !fs_err::symlink_metadata(&dot_git).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Some(target) = crate::git::worktrees::gitdir_of(dir) else {
        return false;
    };
    let worktrees = resolve_path(&common_dir.join("worktrees"));
    let parent = target.parent().map(resolve_path);
    parent.as_deref() == Some(worktrees.as_path()) && fs_err::symlink_metadata(&target).is_err()
}

/// Whether `real` lies strictly under the (resolved) worktree base.
fn recorded_under(real: &Utf8Path, base: &Utf8Path) -> bool {
    let base = resolve_path(base);
    real != base && real.starts_with(&base)
}

/// Moves a proven worktree whole into the trash and unregisters it from git (its admin dir
/// goes along, for the index). Returns the trash entry. On failure nothing was lost: the
/// worktree is where it was, or whole in the trash.
pub fn discard(
    common_dir: &Utf8Path,
    proof: &Proof,
    id: &str,
    branch: &str,
    head: Option<ObjectId>,
    copied_files: &[String],
    interrupted: Option<&str>,
) -> anyhow::Result<Utf8PathBuf> {
    let root = root(common_dir);
    match fs_err::symlink_metadata(&root) {
        Ok(meta) if !meta.is_dir() => {
            return Err(UserError::runtime(format!(
                "the trash {root} is not a directory (a symlink?); nothing was removed"
            ))
            .hint(format!("move {root} aside and try again"))
            .into());
        }
        Ok(_) => {}
        Err(_) => fs_err::create_dir_all(&root)?,
    }
    let removed = Timestamp::now();
    let entry = new_entry(&root, id, removed)?;
    let meta = Meta {
        id: id.to_string(),
        branch: branch.to_string(),
        head: head.map(|h| h.to_string()),
        removed,
        worktree: proof.path.clone(),
        copied_files: copied_files.to_vec(),
        admin: proof
            .admin
            .as_ref()
            .and_then(|a| a.file_name())
            .map(str::to_string),
        interrupted: interrupted.map(str::to_string),
    };
    let mut text = serde_json::to_vec_pretty(&meta)?;
    text.push(b'\n');
    atomic_write(&entry.join("meta.json"), &text)?;
    if let Err(err) = super::moves::move_dir(&proof.path, &entry.join("worktree")) {
        let _ = fs_err::remove_dir_all(&entry);
        return Err(UserError::runtime(format!(
            "cannot move the worktree {} to the trash {entry}: {err:#}",
            proof.path
        ))
        .hint("nothing was removed; fix the cause and try again")
        .into());
    }
    complete(common_dir, &entry, &proof.path, proof.admin.as_deref())?;
    Ok(entry)
}

/// The steps of a removal after the worktree is in the trash entry, safe to run again (the
/// journal's replay does when a removal was killed between them): git's admin dir goes along
/// (for the index and submodules' git dirs), the `.git` file that named it goes, and git
/// forgets the worktree.
pub fn complete(
    common_dir: &Utf8Path,
    entry: &Utf8Path,
    worktree: &Utf8Path,
    admin: Option<&Utf8Path>,
) -> anyhow::Result<()> {
    let admin = admin.map(Utf8Path::to_owned).or_else(|| {
        crate::git::worktrees::admin_entries(common_dir)
            .ok()?
            .into_iter()
            .find(|e| e.worktree.as_deref() == Some(worktree))
            .map(|e| e.admin_dir)
    });
    if let Some(admin) = admin.filter(|a| a.is_dir())
        && fs_err::symlink_metadata(entry.join("admin")).is_err()
    {
        super::modules::keep_admin(&admin, &entry.join("admin"))?;
    }
    // Its `.git` file named git's admin dir, which a new session of this id gets again: git
    // run in the trash must not reach into that one.
    drop_gitdir_file(&entry.join("worktree"))?;
    forget_worktree(common_dir, worktree)
}

/// Deletes `dir/.git` when it is a `gitdir:` file (what git writes in a linked worktree);
/// a `.git` dir of the agent's own repository is not touched.
pub fn drop_gitdir_file(dir: &Utf8Path) -> anyhow::Result<()> {
    let dot_git = dir.join(".git");
    if fs_err::symlink_metadata(&dot_git).is_ok_and(|m| m.is_file())
        && fs_err::read_to_string(&dot_git).is_ok_and(|t| t.starts_with("gitdir:"))
    {
        fs_err::remove_file(&dot_git)?;
    }
    Ok(())
}

/// Deletes a proven worktree that holds nothing of anyone's (a rolled-back new checkout)
/// and unregisters it.
pub fn delete(common_dir: &Utf8Path, proof: &Proof) -> anyhow::Result<()> {
    fs_err::remove_dir_all(&proof.path)?;
    if let Some(admin) = &proof.admin {
        fs_err::remove_dir_all(admin)?;
    }
    forget_worktree(common_dir, &proof.path)
}

/// A fresh entry dir `<id>@<seconds>` (`-2`, `-3`… when taken).
pub(super) fn new_entry(root: &Utf8Path, id: &str, at: Timestamp) -> anyhow::Result<Utf8PathBuf> {
    let stem = format!("{id}@{}", at.as_second());
    for n in 1..1000 {
        let name = if n == 1 {
            stem.clone()
        } else {
            format!("{stem}-{n}")
        };
        let dir = root.join(name);
        match fs_err::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(UserError::runtime(format!("cannot make a trash entry for '{id}' in {root}")).into())
}

/// Every entry of the trash, newest first. Symlinks in the trash are not entries.
pub fn entries(common_dir: &Utf8Path) -> anyhow::Result<Vec<Entry>> {
    let root = root(common_dir);
    let list = match fs_err::symlink_metadata(&root) {
        Ok(meta) if meta.is_dir() => fs_err::read_dir(&root)?,
        _ => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for item in list {
        let item = item?;
        let Ok(dir) = Utf8PathBuf::from_path_buf(item.path()) else {
            continue;
        };
        // Hidden names are entries being deleted (see `delete_entry`).
        if !item.file_type()?.is_dir() || dir.file_name().is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        let meta = fs_err::read_to_string(dir.join("meta.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        out.push(Entry { dir, meta });
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.removed()));
    Ok(out)
}

/// The newest trash entry of session `id` whose worktree is still there.
pub fn newest_of(common_dir: &Utf8Path, id: &str) -> anyhow::Result<Option<Entry>> {
    Ok(entries(common_dir)?.into_iter().find(|e| {
        e.meta
            .as_ref()
            .is_some_and(|m| m.id == id && m.interrupted.is_none())
            && fs_err::symlink_metadata(e.worktree()).is_ok_and(|m| m.is_dir())
    }))
}

/// Puts a trash entry's worktree back at `worktree` whole, by one rename: `worktree` is the
/// fresh worktree git just made for it, holding only its `.git` file, which moves into the
/// saved tree first. A kill leaves the tree whole in the trash or whole in place (the journal's
/// replay takes it from there). Returns the saved index, if any.
pub fn put_back(entry: &Entry, worktree: &Utf8Path) -> anyhow::Result<Option<Utf8PathBuf>> {
    let saved = entry.worktree();
    let dot_git = worktree.join(".git");
    let Some(link) = crate::state::read_regular_file(&dot_git)? else {
        anyhow::bail!("{dot_git} is not the file git made");
    };
    if let Some(other) = fs_err::read_dir(worktree)?
        .flatten()
        .find(|c| c.file_name() != ".git")
    {
        anyhow::bail!(
            "{} already exists",
            worktree.join(other.file_name().to_string_lossy().as_ref())
        );
    }
    // What a killed removal left (the `.git` file of the admin dir it had) goes; a `.git` of
    // the agent's own stays in the entry, beside the worktree.
    drop_gitdir_file(&saved)?;
    if fs_err::symlink_metadata(saved.join(".git")).is_ok() {
        fs_err::rename(saved.join(".git"), entry.dir.join("agent-git"))?;
    }
    crate::state::create_fresh(&saved.join(".git"))?.write_all(&link)?;
    fs_err::remove_file(&dot_git)?;
    fs_err::remove_dir(worktree)?;
    super::moves::move_dir(&saved, worktree)?;
    let index = entry.dir.join("admin").join("index");
    Ok(index.is_file().then_some(index))
}

/// Deletes a trash entry: renamed to a hidden name first, so that a kill halfway leaves no
/// half-deleted entry that `restore` could take; `finish_deletions` ends what a kill left.
pub fn delete_entry(dir: &Utf8Path) -> anyhow::Result<()> {
    let name = dir.file_name().unwrap_or_default();
    let doomed = dir.with_file_name(format!(".deleting-{name}"));
    fs_err::rename(dir, &doomed)?;
    fs_err::remove_dir_all(&doomed)?;
    Ok(())
}

/// Ends the deletions of trash entries that a kill interrupted. Returns how many.
pub fn finish_deletions(common_dir: &Utf8Path) -> anyhow::Result<usize> {
    let Ok(list) = fs_err::read_dir(root(common_dir)) else {
        return Ok(0);
    };
    let mut done = 0;
    for item in list.flatten() {
        let Ok(path) = Utf8PathBuf::from_path_buf(item.path()) else {
            continue;
        };
        if path
            .file_name()
            .is_some_and(|n| n.starts_with(".deleting-"))
            && item.file_type().is_ok_and(|t| t.is_dir())
        {
            fs_err::remove_dir_all(&path)?;
            done += 1;
        }
    }
    Ok(done)
}

/// Deletes a trash entry whose worktree went back, unless something is left in it (a `.git`
/// dir the agent made, submodules' git dirs that could not go back): then it stays, and the
/// path is returned.
pub fn drop_taken(entry: &Entry) -> anyhow::Result<Option<Utf8PathBuf>> {
    let saved = entry.worktree();
    if fs_err::symlink_metadata(&saved).is_ok() {
        return Ok(Some(saved));
    }
    let agent_git = entry.dir.join("agent-git");
    if fs_err::symlink_metadata(&agent_git).is_ok() {
        return Ok(Some(agent_git));
    }
    if holds_modules(&entry.dir.join("admin")) {
        return Ok(Some(entry.dir.join("admin")));
    }
    delete_entry(&entry.dir)?;
    Ok(None)
}

/// The bytes a dir holds, symlinks counted as themselves and never followed.
pub fn size_of(path: &Utf8Path) -> u64 {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(list) = fs_err::read_dir(path) else {
        return 0;
    };
    list.flatten()
        .filter_map(|c| Utf8PathBuf::from_path_buf(c.path()).ok())
        .map(|c| size_of(&c))
        .sum::<u64>()
        + meta.len()
}

/// A known agent's state and the log dir from an earlier session of the same id
/// (`<state>/agents/<id>`, `<state>/logs/<id>`): moved whole to the trash
/// (`agents-<id>@<secs>/{agents,logs}`) so a new session's agent starts
/// from the person's config alone, not from what the earlier agent left (instructions, MCP
/// servers, a model provider). A link in its place is only unlinked. Returns where it went.
pub fn discard_agent_state(common_dir: &Utf8Path, id: &str) -> anyhow::Result<Option<Utf8PathBuf>> {
    let state = crate::state::StateDir::new(common_dir);
    // Its agent state, and the log dir it wrote (`CODEX_LOG_DIR`): both the earlier agent's.
    let mut found = Vec::new();
    for (dir, name) in [
        (state.root.join("agents").join(id), "agents"),
        (state.logs_dir(id), "logs"),
    ] {
        match fs_err::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => found.push((dir, name)),
            Ok(_) => fs_err::remove_file(&dir)?,
            Err(_) => {}
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    let root = root(common_dir);
    fs_err::create_dir_all(&root)?;
    let entry = new_entry(&root, &format!("agents-{id}"), Timestamp::now())?;
    for (dir, name) in found {
        fs_err::rename(&dir, entry.join(name))?;
    }
    Ok(Some(entry))
}
