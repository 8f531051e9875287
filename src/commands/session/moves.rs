//! Moving a worktree whole, so that a kill at any moment leaves it whole in one place: a rename
//! when it can be; across filesystems a copy into a staging dir beside the target, renamed into
//! place only once complete, and only then the source deleted, file by file. What a killed move
//! leaves is finished by [`finish_move`] and [`drop_staging`] (the journal's replay).

use camino::{Utf8Path, Utf8PathBuf};

/// Where a cross-filesystem move of `to` builds its copy: a hidden sibling, never a name
/// git-codex gives a worktree or a trash entry.
pub fn staging(to: &Utf8Path) -> Utf8PathBuf {
    let name = to.file_name().unwrap_or("dir");
    to.with_file_name(format!(".{name}.partial"))
}

/// Deletes the staging copy an interrupted move of `to` left (its source is still whole: it
/// is deleted only after the copy is renamed into place). Never follows a link.
pub fn drop_staging(to: &Utf8Path) -> anyhow::Result<bool> {
    let staged = staging(to);
    match fs_err::symlink_metadata(&staged) {
        Ok(meta) if meta.is_dir() => {
            fs_err::remove_dir_all(&staged)?;
            Ok(true)
        }
        Ok(_) => {
            fs_err::remove_file(&staged)?;
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

/// Renames `from` to `to`; across filesystems (EXDEV) copies everything (dirs, files with
/// their modes, symlinks as symlinks) to [`staging`], renames the copy to `to`, then deletes
/// from `from` exactly what was copied: a file written there meanwhile (a process still at
/// work) stays, and so does whatever could not be deleted, with a warning. A special file
/// (fifo, socket, device) stops the copy: `from` stays whole.
pub fn move_dir(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
            let staged = staging(to);
            drop_staging(to)?;
            let mut copied = Vec::new();
            if let Err(err) = copy_tree(from, &staged, &mut copied) {
                let _ = fs_err::remove_dir_all(&staged);
                return Err(err.context(format!(
                    "{from} is on another filesystem and cannot be copied whole"
                )));
            }
            fs_err::rename(&staged, to)?;
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
            warn_left(from, to, left);
            Ok(())
        }
        Err(err) => Err(anyhow::Error::new(err).context(format!("cannot rename {from} to {to}"))),
    }
}

fn warn_left(from: &Utf8Path, to: &Utf8Path, left: usize) {
    if left > 0 {
        crate::output::warning(&format!(
            "{from} is saved whole in {to}, but {left} item(s) could not be deleted from it (or were written there meanwhile): look at what is left"
        ));
    }
}

/// Finishes a cross-filesystem move killed while it deleted its source: whatever in `from`
/// is the same as its copy in `to` (same kind, bytes, mode or link target) is deleted;
/// anything else stays. Returns whether `from` is gone.
pub fn finish_move(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<bool> {
    let mut left = 0;
    delete_copied(from, to, &mut left)?;
    warn_left(from, to, left);
    Ok(fs_err::symlink_metadata(from).is_err())
}

fn delete_copied(from: &Utf8Path, to: &Utf8Path, left: &mut usize) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = fs_err::symlink_metadata(from) else {
        return Ok(());
    };
    let Ok(copy) = fs_err::symlink_metadata(to) else {
        *left += 1;
        return Ok(());
    };
    let kind = meta.file_type();
    if kind.is_dir() && copy.is_dir() {
        for child in fs_err::read_dir(from)? {
            let name = child?.file_name();
            match name.to_str() {
                Some(name) => delete_copied(&from.join(name), &to.join(name), left)?,
                None => *left += 1,
            }
        }
        // Not empty: something in it differs from the copy, and is counted already.
        let _ = std::fs::remove_dir(from);
        return Ok(());
    }
    let same = if kind.is_symlink() && copy.file_type().is_symlink() {
        fs_err::read_link(from)? == fs_err::read_link(to)?
    } else if kind.is_file() && copy.file_type().is_file() {
        meta.permissions().mode() == copy.permissions().mode()
            && meta.len() == copy.len()
            && fs_err::read(from)? == fs_err::read(to)?
    } else {
        false
    };
    if same {
        fs_err::remove_file(from)?;
    } else {
        *left += 1;
    }
    Ok(())
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
