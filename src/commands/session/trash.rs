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
    if admin.is_none() && fs_err::symlink_metadata(path.join(".git")).is_ok() {
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
    };
    let mut text = serde_json::to_vec_pretty(&meta)?;
    text.push(b'\n');
    atomic_write(&entry.join("meta.json"), &text)?;
    if let Err(err) = move_dir(&proof.path, &entry.join("worktree")) {
        let _ = fs_err::remove_dir_all(&entry);
        return Err(UserError::runtime(format!(
            "cannot move the worktree {} to the trash {entry}: {err:#}",
            proof.path
        ))
        .hint("nothing was removed; fix the cause and try again")
        .into());
    }
    if let Some(admin) = &proof.admin {
        super::modules::keep_admin(admin, &entry.join("admin"))?;
    }
    // Its `.git` file named git's admin dir, which a new session of this id gets again: git
    // run in the trash must not reach into that one.
    let dot_git = entry.join("worktree").join(".git");
    if fs_err::symlink_metadata(&dot_git).is_ok_and(|m| m.is_file())
        && fs_err::read_to_string(&dot_git).is_ok_and(|t| t.starts_with("gitdir:"))
    {
        fs_err::remove_file(&dot_git)?;
    }
    forget_worktree(common_dir, &proof.path)?;
    Ok(entry)
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

/// Renames `from` to `to`; across filesystems (EXDEV) copies everything (dirs, files with
/// their modes, symlinks as symlinks), then deletes from `from` exactly what was copied: a
/// file written there meanwhile (a process still at work) stays, and so does whatever could
/// not be deleted, with a warning. A special file (fifo, socket, device) stops the copy:
/// `from` stays whole.
pub fn move_dir(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
            let mut copied = Vec::new();
            if let Err(err) = copy_tree(from, to, &mut copied) {
                let _ = fs_err::remove_dir_all(to);
                return Err(err.context(format!(
                    "{from} is on another filesystem and cannot be copied whole"
                )));
            }
            // The copy is whole in `to` from here on: it is never taken back.
            let mut left = 0;
            for (path, is_dir) in copied.iter().rev() {
                let gone = if *is_dir {
                    std::fs::remove_dir(path)
                } else {
                    std::fs::remove_file(path)
                };
                left += usize::from(gone.is_err());
            }
            if left > 0 {
                crate::output::warning(&format!(
                    "{from} is saved whole in {to}, but {left} item(s) could not be deleted from it (or were written there meanwhile): look at what is left"
                ));
            }
            Ok(())
        }
        Err(err) => Err(anyhow::Error::new(err).context(format!("cannot rename {from} to {to}"))),
    }
}

/// Copies `from` to `to`, noting each copied path of `from` (a dir before what it holds).
fn copy_tree(
    from: &Utf8Path,
    to: &Utf8Path,
    copied: &mut Vec<(Utf8PathBuf, bool)>,
) -> anyhow::Result<()> {
    let meta = fs_err::symlink_metadata(from)?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        std::os::unix::fs::symlink(fs_err::read_link(from)?, to)?;
        copied.push((from.to_owned(), false));
    } else if kind.is_dir() {
        fs_err::create_dir(to)?;
        copied.push((from.to_owned(), true));
        for child in fs_err::read_dir(from)? {
            let child = child?;
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                anyhow::bail!("{from} holds a name that is not UTF-8");
            };
            copy_tree(&from.join(name), &to.join(name), copied)?;
        }
        fs_err::set_permissions(to, meta.permissions())?;
    } else if kind.is_file() {
        fs_err::copy(from, to)?;
        copied.push((from.to_owned(), false));
    } else {
        anyhow::bail!("{from} is a special file (fifo, socket or device)");
    }
    Ok(())
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
        if !item.file_type()?.is_dir() {
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
        e.meta.as_ref().is_some_and(|m| m.id == id)
            && fs_err::symlink_metadata(e.worktree()).is_ok_and(|m| m.is_dir())
    }))
}

/// Moves everything of a trash entry's worktree but a `.git` into `worktree` (a fresh
/// worktree holding only its `.git`). Returns the saved index, if any.
pub fn take_back(entry: &Entry, worktree: &Utf8Path) -> anyhow::Result<Option<Utf8PathBuf>> {
    let saved = entry.worktree();
    for child in fs_err::read_dir(&saved)? {
        let child = child?;
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            anyhow::bail!("{saved} holds a name that is not UTF-8");
        };
        if name == ".git" {
            continue;
        }
        let to = worktree.join(name);
        if fs_err::symlink_metadata(&to).is_ok() {
            anyhow::bail!("{to} already exists");
        }
        let from = saved.join(name);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EXDEV) => move_dir(&from, &to)?,
            Err(err) => return Err(err.into()),
        }
    }
    let index = entry.dir.join("admin").join("index");
    Ok(index.is_file().then_some(index))
}

/// Deletes a trash entry whose worktree went back, unless something is left in it (a `.git`
/// dir the agent made, submodules' git dirs that could not go back): then it stays, and the
/// path is returned.
pub fn drop_taken(entry: &Entry) -> anyhow::Result<Option<Utf8PathBuf>> {
    let saved = entry.worktree();
    if let Ok(mut left) = fs_err::read_dir(&saved)
        && left.next().is_some()
    {
        return Ok(Some(saved));
    }
    if holds_modules(&entry.dir.join("admin")) {
        return Ok(Some(entry.dir.join("admin")));
    }
    fs_err::remove_dir_all(&entry.dir)?;
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
