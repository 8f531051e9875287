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

/// Keeps a copy of each submodule git dir's `config` and `hooks` in `baseline` (git-codex's
/// own dir, which the agent cannot write), so that settling puts back what the agent changed
/// however it got there (it may rename a whole git dir and make another in its place).
pub fn save_baseline(modules: &Utf8Path, baseline: &Utf8Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(baseline).is_ok() {
        fs_err::remove_dir_all(baseline)?;
    }
    for dir in git_dirs(modules) {
        let Ok(relative) = dir.strip_prefix(modules) else {
            continue;
        };
        let to = baseline.join(relative);
        fs_err::create_dir_all(to.join("hooks"))?;
        if let Some(bytes) = plain_file(&dir.join("config")) {
            fs_err::write(to.join("config"), bytes)?;
        }
        for (name, bytes) in hook_files(&dir.join("hooks")) {
            fs_err::write(to.join("hooks").join(name), bytes)?;
        }
        // The person's own operation in progress there is theirs to finish.
        fs_err::write(to.join("operations"), operations_in(&dir).join("\n"))?;
    }
    Ok(())
}

/// The operation state (a stopped rebase, a merge) in a git dir, by name.
fn operations_in(dir: &Utf8Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| super::admin::is_operation_state(name))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A plain file's bytes (never through a link), small enough to be a config or a hook.
fn plain_file(path: &Utf8Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    (meta.is_file() && meta.len() <= 1 << 20)
        .then(|| fs_err::read(path).ok())
        .flatten()
}

/// The plain files of a hooks dir, by name; `None` for an entry that is anything else.
fn hook_files(dir: &Utf8Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = Utf8PathBuf::from_path_buf(entry.path())
                .ok()
                .and_then(|p| plain_file(&p))
                .unwrap_or_else(|| b"\0not a plain file".to_vec());
            files.push((name, bytes));
        }
    }
    files.sort();
    files
}

/// Puts back each submodule git dir's `config` and `hooks` as `baseline` has them, moving
/// what the agent left there aside; moves aside the operation state it left (a stopped rebase
/// runs its `exec` lines for whoever continues it). Returns what was moved.
fn restore_baseline(modules: &Utf8Path, baseline: &Utf8Path) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let mut moved = Vec::new();
    for dir in git_dirs(modules) {
        let Ok(relative) = dir.strip_prefix(modules) else {
            continue;
        };
        let saved = baseline.join(relative);
        let before = fs_err::read_to_string(saved.join("operations")).unwrap_or_default();
        for name in operations_in(&dir) {
            if !before.lines().any(|l| l == name) {
                moved.push(set_aside(&dir.join(&name))?);
            }
        }
        if !saved.is_dir() {
            continue;
        }
        let config = dir.join("config");
        let want = plain_file(&saved.join("config"));
        if plain_file(&config) != want {
            if std::fs::symlink_metadata(&config).is_ok() {
                moved.push(set_aside(&config)?);
            }
            if let Some(bytes) = want {
                crate::state::atomic_write(&config, &bytes)?;
            }
        }
        let hooks = dir.join("hooks");
        let is_dir = std::fs::symlink_metadata(&hooks).is_ok_and(|m| m.is_dir());
        if !is_dir || hook_files(&hooks) != hook_files(&saved.join("hooks")) {
            if std::fs::symlink_metadata(&hooks).is_ok() {
                moved.push(set_aside(&hooks)?);
            }
            fs_err::create_dir(&hooks)?;
            for (name, bytes) in hook_files(&saved.join("hooks")) {
                let path = hooks.join(&name);
                fs_err::write(&path, bytes)?;
                use std::os::unix::fs::PermissionsExt as _;
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        }
    }
    Ok(moved)
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
    let baseline = ctx.state.modules_baseline_dir(id);
    let mut moved = restore_baseline(&modules, &baseline)?;
    // The git dirs that were there before the run (all of them for a run made before
    // baselines were kept): a `.git` may name only one of those.
    let had_baseline = baseline.is_dir();
    let known: Vec<Utf8PathBuf> = git_dirs(&modules)
        .into_iter()
        .filter(|d| {
            !had_baseline
                || d.strip_prefix(&modules)
                    .is_ok_and(|r| baseline.join(r).is_dir())
        })
        .filter_map(|d| fs_err::canonicalize(&d).ok())
        .filter_map(|d| Utf8PathBuf::from_path_buf(d).ok())
        .collect();
    if std::fs::symlink_metadata(&baseline).is_ok() {
        fs_err::remove_dir_all(&baseline)?;
    }
    for dir in git_dirs(&modules) {
        for name in ["commondir", "gitdir"] {
            let path = dir.join(name);
            if std::fs::symlink_metadata(&path).is_ok() {
                moved.push(set_aside(&path)?);
            }
        }
    }
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
