//! Installing the hook shims (SPEC §6): written into the effective hooks dir, chaining any
//! hook already there (ours runs first), removed byte for byte on uninstall.

use std::os::unix::fs::PermissionsExt as _;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::error::UserError;
use crate::git::Git;
use crate::state::atomic_write;

pub const CLIENT_HOOKS: &[&str] = &[
    "reference-transaction",
    "pre-merge-commit",
    "pre-commit",
    "pre-push",
    "post-checkout",
];
pub const SERVER_HOOKS: &[&str] = &["pre-receive"];

/// The line every shim carries, so that ours are told from anyone else's.
const MARKER: &str = "# git-codex shim";
mod cache;
pub mod health;
pub mod managers;

pub use cache::{SUM_FILE as CACHE_SUM_FILE, refresh_cache};
use managers::Manager;

const PREAMBLE: &str = include_str!("../../hooks/_preamble.sh");
const CHAIN: &str = include_str!("../../hooks/_chain.sh");

fn body(name: &str) -> Option<&'static str> {
    Some(match name {
        "reference-transaction" => include_str!("../../hooks/reference-transaction"),
        "pre-merge-commit" => include_str!("../../hooks/pre-merge-commit"),
        "pre-commit" => include_str!("../../hooks/pre-commit"),
        "pre-push" => include_str!("../../hooks/pre-push"),
        "post-checkout" => include_str!("../../hooks/post-checkout"),
        "pre-receive" => include_str!("../../hooks/pre-receive"),
        _ => return None,
    })
}

/// A value inside single quotes in sh.
pub(crate) fn sh_quote(text: &str) -> String {
    text.replace('\'', "'\\''")
}

/// The shim for `name`, pointing at this binary and this state dir.
pub fn shim(name: &str, bin: &Utf8Path, state_dir: &Utf8Path) -> anyhow::Result<String> {
    let body = body(name).with_context(|| format!("internal: no shim for {name}"))?;
    let preamble = PREAMBLE
        .replace("@BIN@", &sh_quote(bin.as_str()))
        .replace("@STATE@", &sh_quote(state_dir.as_str()));
    let header = format!(
        "#!/bin/sh\n{MARKER} for {name} (written by `git codex hooks install`; `git codex hooks uninstall`\n# removes it and puts back the hook it chained). Edits here are lost on the next install.\n"
    );
    let chain = CHAIN.replace("@NAME@", name);
    Ok(format!(
        "{header}{}",
        body.replace("@CHAIN@\n", &chain)
            .replace("@PREAMBLE@\n", &preamble)
    ))
}

pub(crate) fn is_ours(path: &Utf8Path) -> bool {
    fs_err::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l.starts_with(MARKER)))
}

/// The binary a shim was written to call.
pub fn shim_binary(path: &Utf8Path) -> Option<Utf8PathBuf> {
    let text = fs_err::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("codex_bin='"))?;
    let value = line.strip_prefix("codex_bin='")?.strip_suffix('\'')?;
    Some(Utf8PathBuf::from(value.replace("'\\''", "'")))
}

pub(crate) fn chained_path(dir: &Utf8Path, name: &str) -> Utf8PathBuf {
    dir.join(format!("{name}.codex-chained"))
}

/// The hooks dir git uses here (`core.hooksPath` honoured), absolute.
pub fn hooks_dir(git: &Git, cwd: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    let path = git.run(
        cwd,
        &["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
    )?;
    Ok(Utf8PathBuf::from(path))
}

/// What is at one hook's path.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState {
    pub name: String,
    /// "ours" (git runs git-codex's shim for this hook, itself or through a manager's hook),
    /// "missing" or "foreign" (someone else's hook, and git-codex's does not run).
    pub state: &'static str,
    /// A hook of the user's that ours runs after itself.
    pub chained: bool,
    /// The hook manager whose hook is at this name: husky, lefthook, pre-commit or git-lfs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<&'static str>,
    /// Where git-codex's shim is, when not at the hook's own name: where the manager runs it
    /// (pre-commit's `<name>.legacy`), or where it set it aside (lefthook's `<name>.old`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ours_at: Option<String>,
}

impl HookState {
    pub fn effective(&self) -> bool {
        self.state == "ours"
    }
}

fn occupied(path: &Utf8Path) -> bool {
    path.exists() || path.is_symlink()
}

/// Where git-codex's shim for `name` is under `dir` besides its own name, and whether the
/// manager whose hook is at the name runs it.
fn ours_beside(dir: &Utf8Path, name: &str, manager: Option<Manager>) -> Option<(String, bool)> {
    let manager = manager?;
    if let Some(legacy) = manager.runs_chained_as(name)
        && is_ours(&dir.join(&legacy))
    {
        return Some((legacy, true));
    }
    let old = manager.sets_aside_as(name)?;
    is_ours(&dir.join(&old)).then_some((old, false))
}

pub fn status(dir: &Utf8Path, names: &[&str]) -> Vec<HookState> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let ours = is_ours(&path);
            let manager = Manager::of_file(&path);
            let beside = ours_beside(dir, name, manager);
            // Whose hook ours chains, when ours is at the name.
            let manager = if ours {
                Manager::of_file(&chained_path(dir, name))
            } else {
                manager
            };
            let state = if ours || beside.as_ref().is_some_and(|(_, runs)| *runs) {
                "ours"
            } else if occupied(&path) {
                "foreign"
            } else {
                "missing"
            };
            HookState {
                name: name.to_string(),
                state,
                chained: occupied(&chained_path(dir, name)),
                manager: manager.map(Manager::name),
                ours_at: beside.map(|(file, _)| file),
            }
        })
        .collect()
}

/// Writes the shims into `dir`; an existing hook that is not ours moves aside to
/// `<name>.codex-chained` and keeps running after ours, under its own name. Where a manager
/// already runs ours (pre-commit's `<name>.legacy`), ours is rewritten there and the
/// manager's hook stays; a copy of ours a manager set aside (lefthook's `<name>.old`) goes.
pub fn install(
    dir: &Utf8Path,
    names: &[&str],
    bin: &Utf8Path,
    state_dir: &Utf8Path,
) -> anyhow::Result<Vec<HookState>> {
    fs_err::create_dir_all(dir)?;
    for name in names {
        let path = dir.join(name);
        let manager = Manager::of_file(&path);
        let mut target = path.clone();
        match ours_beside(dir, name, manager) {
            Some((legacy, true)) => {
                drop_manager_copy(dir, name)?;
                target = dir.join(legacy);
            }
            Some((old, false)) => fs_err::remove_file(dir.join(old))?,
            None => {}
        }
        if target == path && occupied(&path) && !is_ours(&path) {
            chain(dir, name)?;
        }
        atomic_write(&target, shim(name, bin, state_dir)?.as_bytes())?;
        fs_err::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(status(dir, names))
}

/// pre-commit installed before git-codex (chained) and again after (it runs ours as
/// `<name>.legacy`): ours skips pre-commit's older hook (it would refuse to run as its own
/// legacy hook), and `install` removes it.
fn runs_itself_again(dir: &Utf8Path, name: &str) -> bool {
    Manager::of_file(&dir.join(name)) == Some(Manager::PreCommit)
        && Manager::of_file(&chained_path(dir, name)) == Some(Manager::PreCommit)
}

/// Ends that loop: the older copy goes when it is the same as the hook at the name, byte for
/// byte (pre-commit wrote it again); anything else is the person's to look at.
fn drop_manager_copy(dir: &Utf8Path, name: &str) -> anyhow::Result<()> {
    if !runs_itself_again(dir, name) {
        return Ok(());
    }
    let chained = chained_path(dir, name);
    if fs_err::read(&chained)? == fs_err::read(dir.join(name))? {
        return Ok(fs_err::remove_file(&chained)?);
    }
    Err(UserError::refused(format!(
        "pre-commit runs git-codex's {name} hook, which runs an older pre-commit hook ({chained}) again"
    ))
    .hint(format!(
        "remove {chained} (pre-commit's own {name} hook replaces it), then run 'git codex hooks install' again"
    ))
    .into())
}

/// Moves the hook at `name` aside to `<name>.codex-chained`. A chained hook already there
/// stays: the new one goes only when it is the same, byte for byte (a manager that wrote the
/// same hook again); anything else is the person's to merge.
fn chain(dir: &Utf8Path, name: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    let chained = chained_path(dir, name);
    if !occupied(&chained) {
        return Ok(fs_err::rename(&path, &chained)?);
    }
    let same = !path.is_symlink()
        && !chained.is_symlink()
        && matches!((fs_err::read(&path), fs_err::read(&chained)), (Ok(a), Ok(b)) if a == b);
    if !same {
        return Err(UserError::refused(format!(
            "{path} is not git-codex's, and {chained} (a hook git-codex chained earlier) is in the way"
        ))
        .hint("merge the two hooks by hand, then run 'git codex hooks install' again")
        .into());
    }
    Ok(fs_err::remove_file(&path)?)
}

/// Removes our shims and puts chained hooks back, byte for byte. Foreign hooks stay; our
/// shim where a manager runs or set it aside (`.legacy`, `.old`) goes too.
pub fn uninstall(dir: &Utf8Path, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut kept = Vec::new();
    for name in names {
        let path = dir.join(name);
        if !is_ours(&path) {
            if let Some((beside, _)) = ours_beside(dir, name, Manager::of_file(&path)) {
                fs_err::remove_file(dir.join(beside))?;
            }
            if path.exists() {
                kept.push(name.to_string());
            }
            continue;
        }
        fs_err::remove_file(&path)?;
        let chained = chained_path(dir, name);
        if occupied(&chained) {
            fs_err::rename(&chained, &path)?;
        }
    }
    Ok(kept)
}
