//! Submodules' git dirs. A submodule initialized in a session worktree keeps its repository
//! in the worktree's admin dir (`<common-dir>/worktrees/<name>/modules/<sub>`), and commits
//! made there live nowhere else: that admin dir goes to the trash with the worktree, comes
//! back with it on `restore`, and is never deleted while it holds one.

use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;

use super::trash::{self, Entry, Meta};
use crate::error::UserError;
use crate::git::worktrees::{admin_entries, forget_worktree, holds_modules};
use crate::output;
use crate::state::atomic_write;

/// Moves a worktree's admin dir to `to` (in the trash). When it cannot be moved and holds
/// submodules' git dirs, nothing is deleted and the error says where they are; otherwise it
/// only held git's bookkeeping, which goes.
pub fn keep_admin(admin: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    if fs_err::rename(admin, to).is_ok() {
        return Ok(());
    }
    match super::moves::move_dir(admin, to) {
        Ok(()) => Ok(()),
        Err(err) if holds_modules(admin) => Err(UserError::runtime(format!(
            "cannot move {admin}, which holds the git dirs of the worktree's submodules, to the trash {to}: {err:#}"
        ))
        .hint(format!(
            "the worktree itself is in the trash ({}); {admin} was left where it is: fix the cause and move it there yourself",
            to.parent().map(|p| p.join("worktree")).unwrap_or_default()
        ))
        .into()),
        Err(_) => Ok(fs_err::remove_dir_all(admin)?),
    }
}

/// Drops git's entries for the worktree at `path`, which is gone. An entry that holds
/// submodules' git dirs (their commits live nowhere else) goes to the trash instead, as
/// `<id>@<seconds>/admin`; returns where.
pub fn forget(
    common_dir: &Utf8Path,
    path: &Utf8Path,
    id: &str,
) -> anyhow::Result<Option<Utf8PathBuf>> {
    let mut kept = None;
    for entry in admin_entries(common_dir)? {
        if entry.worktree.as_deref() == Some(path) && holds_modules(&entry.admin_dir) {
            kept = Some(trash_admin(common_dir, &entry.admin_dir, path, id)?);
        }
    }
    forget_worktree(common_dir, path)?;
    Ok(kept)
}

/// Deletes git's entry `admin` for a worktree that is gone (`session prune`); into the trash
/// when it holds submodules' git dirs.
pub fn drop_stale_admin(common_dir: &Utf8Path, admin: &Utf8Path, id: &str) -> anyhow::Result<()> {
    if !holds_modules(admin) {
        return Ok(fs_err::remove_dir_all(admin)?);
    }
    // The agent's to write: read as a plain file only (a fifo would hang prune).
    let worktree = crate::state::read_regular_file(&admin.join("gitdir"))
        .ok()
        .flatten()
        .and_then(|t| String::from_utf8(t).ok())
        .and_then(|t| Utf8PathBuf::from(t.trim()).parent().map(Into::into))
        .unwrap_or_else(|| admin.to_owned());
    trash_admin(common_dir, admin, &worktree, id).map(|_| ())
}

/// Moves the admin dir `admin` of the vanished worktree `worktree` whole into a new trash
/// entry, with a meta that names it. Returns the entry.
pub fn trash_admin(
    common_dir: &Utf8Path,
    admin: &Utf8Path,
    worktree: &Utf8Path,
    id: &str,
) -> anyhow::Result<Utf8PathBuf> {
    let root = trash::root(common_dir);
    fs_err::create_dir_all(&root)?;
    let removed = Timestamp::now();
    let entry = trash::new_entry(&root, id, removed)?;
    let meta = Meta {
        id: id.to_string(),
        branch: String::new(),
        head: None,
        removed,
        worktree: worktree.to_owned(),
        copied_files: Vec::new(),
        admin: admin.file_name().map(str::to_string),
        interrupted: None,
    };
    let mut text = serde_json::to_vec_pretty(&meta)?;
    text.push(b'\n');
    atomic_write(&entry.join("meta.json"), &text)?;
    keep_admin(admin, &entry.join("admin"))?;
    output::note(&format!(
        "git-codex: the git dirs of the submodules of {worktree} (gone) are kept in the trash: {entry}/admin/modules"
    ));
    Ok(entry)
}

/// Puts the submodules' git dirs of a trash entry back into `admin`, the admin dir of the
/// worktree its files went back to, when the worktree is at the same path under the same
/// admin name (each submodule's `.git` file names its git dir by a relative path through
/// both). Otherwise they stay in the trash entry, and the warning returned says where.
pub fn take_back(entry: &Entry, worktree: &Utf8Path, admin: Option<Utf8PathBuf>) -> Option<String> {
    let saved = entry.dir.join("admin").join("modules");
    if !holds_modules(&entry.dir.join("admin")) {
        return None;
    }
    let meta = entry.meta.as_ref()?;
    let old_name = meta.admin.as_deref().or_else(|| meta.worktree.file_name());
    let admin = admin.filter(|a| meta.worktree == worktree && old_name == a.file_name());
    let moved = admin
        .as_ref()
        .is_some_and(|admin| fs_err::rename(&saved, admin.join("modules")).is_ok());
    (!moved).then(|| {
        format!(
            "the git dirs of the submodules of {worktree} stay in the trash ({saved}): the worktree came back under another path or admin dir; move them to its admin dir's modules/ and fix each submodule's .git file"
        )
    })
}
