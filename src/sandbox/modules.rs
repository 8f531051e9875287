//! A session's submodules, as a confined agent could turn them against the person: git runs
//! programs a repository's own config names (`core.fsmonitor`, hooks, filters), and the
//! person's `git status` in the session worktree runs git inside every populated submodule.
//! So the submodules' git dirs (mounted writable, for the agent's commits there) keep their
//! `config` and `hooks` read-only, and when the run ends every submodule's `.git` in the
//! worktree must name one of those git dirs, and nothing a git dir of its own could be.

use camino::{Utf8Path, Utf8PathBuf};

use crate::context::Ctx;

/// How deep submodule names (which may hold `/`) and nested submodules are looked for.
const MAX_DEPTH: usize = 8;

fn is_dir(path: &Utf8Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// The git dirs under `modules` (a dir holding `HEAD` and `objects/`), nested ones too, never
/// through a link.
pub fn git_dirs(modules: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![(modules.to_path_buf(), 0)];
    while let Some((dir, depth)) = todo.pop() {
        if depth > MAX_DEPTH {
            continue;
        }
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else {
                continue;
            };
            if !is_dir(&path) {
                continue;
            }
            let head = std::fs::symlink_metadata(path.join("HEAD")).is_ok_and(|m| m.is_file());
            if head && is_dir(&path.join("objects")) {
                if is_dir(&path.join("modules")) {
                    todo.push((path.join("modules"), depth + 1));
                }
                found.push(path);
            } else {
                todo.push((path, depth + 1));
            }
        }
    }
    found
}

/// What stays read-only in each submodule git dir during a run: its `config` and its `hooks`
/// dir (made, empty, when it has none: else the agent could make one git would run).
pub fn read_only_paths(modules: &Utf8Path) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let mut paths = Vec::new();
    for dir in git_dirs(modules) {
        let hooks = dir.join("hooks");
        if std::fs::symlink_metadata(&hooks).is_err() {
            fs_err::create_dir(&hooks)?;
        }
        for path in [dir.join("config"), hooks] {
            if std::fs::symlink_metadata(&path).is_ok() {
                paths.push(path);
            }
        }
    }
    Ok(paths)
}

/// After a run: a `commondir` file planted in a submodule git dir (git would then read the
/// config of whatever dir it names) and a submodule `.git` in the worktree that is not a
/// file naming one of the session's submodule git dirs are moved aside, never deleted.
/// Returns a warning naming them.
pub fn settle(
    ctx: &Ctx,
    id: &str,
    worktree: &Utf8Path,
    admin: &Utf8Path,
) -> anyhow::Result<Option<String>> {
    let modules = admin.join("modules");
    let mut moved = Vec::new();
    for dir in git_dirs(&modules) {
        for name in ["commondir", "gitdir"] {
            let path = dir.join(name);
            if std::fs::symlink_metadata(&path).is_ok() {
                moved.push(set_aside(&path)?);
            }
        }
    }
    let known: Vec<Utf8PathBuf> = git_dirs(&modules)
        .into_iter()
        .filter_map(|d| fs_err::canonicalize(&d).ok())
        .filter_map(|d| Utf8PathBuf::from_path_buf(d).ok())
        .collect();
    let mut unchecked = Vec::new();
    for path in ctx.git.gitlink_paths(worktree)? {
        if path.contains('\u{FFFD}') {
            unchecked.push(path);
            continue;
        }
        if let Some(planted) = planted_git(worktree, &path, &known) {
            moved.push(set_aside(&planted)?);
            // The submodule stays checked out: its `.git` names its own git dir again.
            let at = worktree.join(&path);
            if planted == at.join(".git")
                && let Some(dir) = git_dir_for(&at, &known)
            {
                crate::state::atomic_write(&planted, format!("gitdir: {dir}\n").as_bytes())?;
            }
        }
    }
    let mut lines = Vec::new();
    if !moved.is_empty() {
        let list: Vec<String> = moved.iter().map(|p| p.to_string()).collect();
        lines.push(format!(
            "git-codex: session '{id}' left what would make your git in its submodules run programs of its choosing; moved aside: {}",
            list.join(", ")
        ));
    }
    if !unchecked.is_empty() {
        lines.push(format!(
            "git-codex: session '{id}' has submodule paths that are not UTF-8, which git-codex cannot check: do not run git in {worktree} before looking at them"
        ));
    }
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

/// The path to move aside at the gitlink `path`, if any: a link on the way there (git would
/// follow it to a `.git` anywhere), or a `.git` that is not a small file naming one of
/// `known` (a dir of the agent's, a link, a gitfile pointing elsewhere).
fn planted_git(worktree: &Utf8Path, path: &str, known: &[Utf8PathBuf]) -> Option<Utf8PathBuf> {
    let mut at = worktree.to_path_buf();
    for part in Utf8Path::new(path).components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Err(_) => return None,
            Ok(meta) if meta.file_type().is_symlink() => return Some(at),
            Ok(meta) if !meta.is_dir() => return None,
            Ok(_) => {}
        }
    }
    let git = at.join(".git");
    let meta = std::fs::symlink_metadata(&git).ok()?;
    if !meta.is_file() || meta.len() > 4096 {
        return Some(git);
    }
    let text = fs_err::read_to_string(&git).ok()?;
    let named = text.trim_end().strip_prefix("gitdir: ").map(Utf8Path::new);
    let resolved = named
        .map(|n| {
            if n.is_absolute() {
                n.to_path_buf()
            } else {
                at.join(n)
            }
        })
        .and_then(|p| fs_err::canonicalize(&p).ok())
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok());
    match resolved {
        Some(dir) if known.contains(&dir) => None,
        _ => Some(git),
    }
}

/// The submodule git dir (of `known`) whose `core.worktree` is `checkout`: read from its own
/// config, which the agent could not write.
fn git_dir_for(checkout: &Utf8Path, known: &[Utf8PathBuf]) -> Option<Utf8PathBuf> {
    let checkout = Utf8PathBuf::from_path_buf(fs_err::canonicalize(checkout).ok()?).ok()?;
    known.iter().find_map(|dir| {
        let text = fs_err::read_to_string(dir.join("config")).ok()?;
        let mut in_core = false;
        let configured = text.lines().find_map(|line| {
            let line = line.trim();
            if line.starts_with('[') {
                in_core = line.eq_ignore_ascii_case("[core]");
                return None;
            }
            let (key, value) = line.split_once('=')?;
            (in_core && key.trim().eq_ignore_ascii_case("worktree"))
                .then(|| value.trim().to_string())
        })?;
        let named = dir.join(configured);
        let real = Utf8PathBuf::from_path_buf(fs_err::canonicalize(&named).ok()?).ok()?;
        (real == checkout).then(|| dir.clone())
    })
}

/// Renames `path` to `<path>.agent-planted` (a number after it when that is taken).
fn set_aside(path: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    let mut to = Utf8PathBuf::from(format!("{path}.agent-planted"));
    let mut n = 1;
    while std::fs::symlink_metadata(&to).is_ok() {
        n += 1;
        to = Utf8PathBuf::from(format!("{path}.agent-planted-{n}"));
    }
    fs_err::rename(path, &to)?;
    Ok(to)
}
