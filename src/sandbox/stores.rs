//! Where a confined agent's git and git-lfs keep objects. Inside its sandbox, the repository's
//! object dir (`<common>/objects`) is the agent's own store (`<state>/objects/<id>`) and its
//! LFS store (`<common>/lfs`, or `lfs.storage`) the agent's own (`<state>/lfs/<id>`), each
//! mounted over the shared one. The shared stores are shown read-only at a dir of git-codex's
//! (`<state>/shared/objects`, `<state>/shared/lfs`), which the agent's store names as its
//! alternate (`info/alternates`); git-lfs reads the LFS store beside an alternate object dir.
//!
//! Why mounts and not `GIT_OBJECT_DIRECTORY`: an environment variable reaches every git the
//! agent runs, so a `git clone`, a repository it makes with `git init`, or a submodule would
//! keep their objects in the session's store, not their own. With mounts, only the session's
//! repository sees another store, and every other repository is as it is anywhere else.
//!
//! The agent may rewrite its store's `info/alternates`: that changes its own git's view only.
//! Settling never reads it (see `super::settle`). Outside the sandbox, `<state>/shared/objects`
//! is a link to the shared store, so a repository the agent cloned from the session's one
//! (whose alternates name it) still works after the run.

use camino::{Utf8Path, Utf8PathBuf};

use crate::context::Ctx;

/// The object and LFS stores of a confined run.
#[derive(Debug, Clone)]
pub struct Stores {
    /// The agent's own object store, mounted over [`Stores::objects`].
    pub own: Utf8PathBuf,
    /// The repository's object dir: the shared store, but in the agent's sandbox.
    pub objects: Utf8PathBuf,
    /// The agent's own LFS store, mounted over [`Stores::lfs`].
    pub own_lfs: Utf8PathBuf,
    /// The repository's LFS store: the shared one, but in the agent's sandbox.
    pub lfs: Utf8PathBuf,
    /// git-codex's dir where the sandbox shows the shared stores, read-only.
    pub shared: Utf8PathBuf,
    /// The shared store's own alternates made absolute, when some are relative: shown in
    /// place of its `info/alternates` (see [`absolute_alternates`]).
    pub alternates: Option<Utf8PathBuf>,
}

/// Makes session `id`'s stores and the links of [`Stores::shared`], and names the shared store
/// as the alternate of the agent's. Under the state lock.
pub fn prepare(ctx: &Ctx, id: &str) -> anyhow::Result<Stores> {
    let mut stores = Stores {
        own: ctx.state.objects_dir(id),
        objects: ctx.paths.common_dir.join("objects"),
        own_lfs: ctx.state.lfs_dir(id),
        lfs: super::lfs::shared_store(ctx),
        shared: ctx.state.root.join("shared"),
        alternates: None,
    };
    fs_err::create_dir_all(&stores.own)?;
    fs_err::create_dir_all(&stores.own_lfs)?;
    // The mount point: git-lfs makes it on first use anyway.
    fs_err::create_dir_all(&stores.lfs)?;
    fs_err::create_dir_all(&stores.shared)?;
    link(&stores.shared.join("objects"), &stores.objects)?;
    link(&stores.shared.join("lfs"), &stores.lfs)?;
    if let Some(text) = absolute_alternates(&stores.objects)? {
        let path = stores.shared.join("alternates");
        crate::state::atomic_write(&path, text.as_bytes())?;
        stores.alternates = Some(path);
    }
    let info = stores.own.join("info");
    if !std::fs::symlink_metadata(&info).is_ok_and(|m| m.is_dir()) {
        // Never written through: whatever is there is made anew.
        let _ = std::fs::remove_file(&info);
        fs_err::create_dir(&info)?;
    }
    let alternate = stores.shared.join("objects");
    crate::state::atomic_write(
        &info.join("alternates"),
        format!("{}\n", alternate_line(&alternate)).as_bytes(),
    )?;
    Ok(stores)
}

/// Makes `path` a link to `target` unless it is one already (replacing whatever is there).
fn link(path: &Utf8Path, target: &Utf8Path) -> anyhow::Result<()> {
    if std::fs::read_link(path).is_ok_and(|t| t == target.as_std_path()) {
        return Ok(());
    }
    let tmp = path.with_file_name(format!(
        ".{}.git-codex{}",
        path.file_name().unwrap_or("link"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    if let Err(err) = fs_err::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.into());
    }
    Ok(())
}

/// The shared store's own `info/alternates` with each relative entry made absolute; `None`
/// when none is relative. Git reads a relative entry relative to where it finds the store,
/// which in the sandbox is [`Stores::shared`], not the repository.
fn absolute_alternates(objects: &Utf8Path) -> anyhow::Result<Option<String>> {
    let Some(bytes) = crate::state::read_regular_file(&objects.join("info/alternates"))? else {
        return Ok(None);
    };
    let mut relative = false;
    let mut text = String::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        // A comment, an absolute path, or a quoted one (rare enough to be left as it is).
        if line.is_empty() || line.starts_with(['#', '/', '"']) {
            text.push_str(line);
        } else {
            relative = true;
            text.push_str(&alternate_line(&objects.join(line)));
        }
        text.push('\n');
    }
    Ok(relative.then_some(text))
}

/// `path` as a line of `info/alternates`: C-quoted when a newline, quote or backslash in it
/// would be read otherwise.
fn alternate_line(path: &Utf8Path) -> String {
    let text = path.as_str();
    if !text.contains(['\n', '"', '\\']) {
        return text.to_string();
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// The bwrap arguments that mount the stores: after every other writable mount (the
/// repository may lie in a dir shown again read-only), before the pinned files.
pub fn bwrap_args(stores: &Stores) -> Vec<String> {
    let mut args = Vec::new();
    let mut mount = |flag: &str, from: &Utf8Path, to: &Utf8Path| {
        args.extend([flag.to_string(), from.to_string(), to.to_string()]);
    };
    mount("--bind", &stores.own, &stores.objects);
    mount("--bind", &stores.own_lfs, &stores.lfs);
    // Sources are the host's: the shared stores, not what was just mounted over them.
    args.extend(["--tmpfs".to_string(), stores.shared.to_string()]);
    let mut mount = |flag: &str, from: &Utf8Path, to: &Utf8Path| {
        args.extend([flag.to_string(), from.to_string(), to.to_string()]);
    };
    mount("--ro-bind", &stores.objects, &stores.shared.join("objects"));
    mount("--ro-bind", &stores.lfs, &stores.shared.join("lfs"));
    if let Some(alternates) = &stores.alternates {
        let shown = stores.shared.join("objects/info/alternates");
        mount("--ro-bind", alternates, &shown);
    }
    args.extend(["--remount-ro".to_string(), stores.shared.to_string()]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alternate_path_is_quoted_only_when_git_would_read_it_otherwise() {
        assert_eq!(
            alternate_line(Utf8Path::new("/a b/objects")),
            "/a b/objects"
        );
        assert_eq!(
            alternate_line(Utf8Path::new("/a\n\"b\\/objects")),
            "\"/a\\n\\\"b\\\\/objects\""
        );
    }
}
