//! `sandbox.writable_paths`: more dirs or files a confined agent may write, never one that
//! would hand it the gate or the person's git. One rule for `config set`, `config validate`
//! and each run, so that a value accepted once is never refused at run time.

use camino::{Utf8Path, Utf8PathBuf};

use crate::context::Ctx;
use crate::error::UserError;
use crate::git::read::RepoPaths;

/// The person's home as a run sees it (absolute, or none).
pub fn home() -> Option<Utf8PathBuf> {
    std::env::var("HOME")
        .ok()
        .filter(|h| h.starts_with('/'))
        .map(Utf8PathBuf::from)
}

/// `sandbox.writable_paths`, each a dir or a file: a missing one is made as a dir, unless
/// it is, holds or lies in something that would hand the agent the gate or the person's git
/// (see [`check`]).
pub fn writable_paths(ctx: &Ctx, home: Option<&Utf8Path>) -> anyhow::Result<Vec<Utf8PathBuf>> {
    check(&ctx.paths, home, &ctx.config.writable_paths)?;
    let mut paths = Vec::new();
    for entry in &ctx.config.writable_paths {
        let path = normalize(&expand(entry, &ctx.paths.main_root, home));
        match std::fs::metadata(&path) {
            Ok(_) => {}
            Err(_) => fs_err::create_dir_all(&path)?,
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Refuses an entry that is, holds or lies in the repository's git dir, git-codex's user
/// config, or git's global config (`~/.gitconfig`, `$XDG_CONFIG_HOME/git`). Paths are read
/// with `~` expanded and `..` resolved.
pub fn check(
    paths: &RepoPaths,
    home: Option<&Utf8Path>,
    entries: &[String],
) -> Result<(), UserError> {
    let guarded = guarded_paths(paths, home);
    for entry in entries {
        let path = normalize(&expand(entry, &paths.main_root, home));
        let resolved = path
            .canonicalize_utf8()
            .map(|p| normalize(&p))
            .unwrap_or_else(|_| path.clone());
        if let Some(guard) = guarded.iter().find(|g| {
            g.starts_with(&resolved)
                || resolved.starts_with(g)
                || g.starts_with(&path)
                || path.starts_with(g)
        }) {
            return Err(UserError::bad_input(format!(
                "sandbox.writable_paths names {entry}, which holds or lies in {guard}: the agent could rewrite the gate's or git's own config, hooks and approvals"
            ))
            .hint("name a dir or file of the agent's own, or remove the entry"));
        }
    }
    Ok(())
}

/// What no writable path may hold or lie in (see [`check`]), each as written and
/// as resolved.
fn guarded_paths(paths: &RepoPaths, home: Option<&Utf8Path>) -> Vec<Utf8PathBuf> {
    let mut guarded = vec![paths.common_dir.clone()];
    if let Some(user) = crate::config::user_file()
        && let Some(dir) = user.parent()
    {
        guarded.push(dir.to_path_buf());
    }
    if let Some(home) = home {
        guarded.push(home.join(".gitconfig"));
    }
    let xdg = std::env::var("XDG_CONFIG_HOME")
        .ok()
        .filter(|d| d.starts_with('/'))
        .map(Utf8PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")));
    if let Some(xdg) = xdg {
        guarded.push(xdg.join("git"));
    }
    for var in ["GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM"] {
        if let Ok(file) = std::env::var(var)
            && file.starts_with('/')
        {
            guarded.push(Utf8PathBuf::from(file));
        }
    }
    let resolved: Vec<Utf8PathBuf> = guarded
        .iter()
        .filter_map(|g| g.canonicalize_utf8().ok())
        .collect();
    guarded.extend(resolved);
    guarded.into_iter().map(|g| normalize(&g)).collect()
}

/// `~` and `~/…` from `home`, a relative path from `base`.
fn expand(entry: &str, base: &Utf8Path, home: Option<&Utf8Path>) -> Utf8PathBuf {
    match (entry, home) {
        ("~", Some(home)) => home.to_path_buf(),
        (_, Some(home)) if entry.starts_with("~/") => home.join(&entry[2..]),
        _ => base.join(entry),
    }
}

/// `path` with `.` and `..` resolved lexically (never through the filesystem).
fn normalize(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for part in path.components() {
        match part {
            camino::Utf8Component::ParentDir => {
                out.pop();
            }
            camino::Utf8Component::CurDir => {}
            other => out.push(other.as_str()),
        }
    }
    out
}
