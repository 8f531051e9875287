//! Installing the hook shims (SPEC §6): written into the effective hooks dir, chaining any
//! hook already there (ours runs first), removed byte for byte on uninstall.

use std::os::unix::fs::PermissionsExt as _;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::config::Config;
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
const PREAMBLE: &str = include_str!("../../hooks/_preamble.sh");

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
fn sh_quote(text: &str) -> String {
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
    Ok(format!(
        "{header}{}",
        body.replace("@PREAMBLE@\n", &preamble)
    ))
}

fn is_ours(path: &Utf8Path) -> bool {
    fs_err::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l.starts_with(MARKER)))
}

/// The binary a shim was written to call.
pub fn shim_binary(path: &Utf8Path) -> Option<Utf8PathBuf> {
    let text = fs_err::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("codex_bin='"))?;
    let value = line.strip_prefix("codex_bin='")?.strip_suffix('\'')?;
    Some(Utf8PathBuf::from(value.replace("'\\''", "'")))
}

fn chained_path(dir: &Utf8Path, name: &str) -> Utf8PathBuf {
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
    /// "ours", "missing" or "foreign" (someone else's hook where ours should be).
    pub state: &'static str,
    /// A hook of the user's that ours runs after itself.
    pub chained: bool,
}

pub fn status(dir: &Utf8Path, names: &[&str]) -> Vec<HookState> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let state = if is_ours(&path) {
                "ours"
            } else if path.exists() || path.is_symlink() {
                "foreign"
            } else {
                "missing"
            };
            HookState {
                name: name.to_string(),
                state,
                chained: chained_path(dir, name).exists() || chained_path(dir, name).is_symlink(),
            }
        })
        .collect()
}

/// Writes the shims into `dir`; an existing hook that is not ours moves aside to
/// `<name>.codex-chained` and keeps running after ours.
pub fn install(
    dir: &Utf8Path,
    names: &[&str],
    bin: &Utf8Path,
    state_dir: &Utf8Path,
) -> anyhow::Result<Vec<HookState>> {
    fs_err::create_dir_all(dir)?;
    for name in names {
        let path = dir.join(name);
        let chained = chained_path(dir, name);
        let occupied = path.exists() || path.is_symlink();
        if occupied && !is_ours(&path) {
            if chained.exists() || chained.is_symlink() {
                return Err(UserError::refused(format!(
                    "{path} is not git-codex's, and {chained} (a hook git-codex chained earlier) is in the way"
                ))
                .hint("merge the two hooks by hand, then run 'git codex hooks install' again")
                .into());
            }
            fs_err::rename(&path, &chained)?;
        }
        atomic_write(&path, shim(name, bin, state_dir)?.as_bytes())?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(status(dir, names))
}

/// Removes our shims and puts chained hooks back, byte for byte. Foreign hooks stay.
pub fn uninstall(dir: &Utf8Path, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut kept = Vec::new();
    for name in names {
        let path = dir.join(name);
        if !is_ours(&path) {
            if path.exists() {
                kept.push(name.to_string());
            }
            continue;
        }
        fs_err::remove_file(&path)?;
        let chained = chained_path(dir, name);
        if chained.exists() || chained.is_symlink() {
            fs_err::rename(&chained, &path)?;
        }
    }
    Ok(kept)
}

/// Rewrites the cache from the config files alone: an environment override is one command's
/// (the person's own bypass), and the cache serves every later command. The files' text is
/// read first, so a file changed meanwhile only makes the shim ask git-codex again.
pub fn refresh_cache(
    state: &crate::state::StateDir,
    records: &[crate::state::SessionRecord],
) -> anyhow::Result<()> {
    let texts = ConfigTexts::read(&state.config_file());
    let settings = crate::config::Settings::load_files(&state.config_file())?;
    write_cache(&state.root, &settings.config(), &texts, records)
}

/// The config files' text, as the shim reads it back (each line and a newline) to tell
/// whether the cache still holds: an edit that keeps the file's time (`cp -p`, `touch -r`)
/// is an edit all the same.
pub struct ConfigTexts {
    repo: String,
    user: String,
}

impl ConfigTexts {
    fn read(repo_file: &Utf8Path) -> ConfigTexts {
        let as_shim_reads = |path: Option<Utf8PathBuf>| -> String {
            let Some(path) = path else {
                return String::new();
            };
            match fs_err::read_to_string(&path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
                // Text the shell cannot hold as it is (a NUL byte): a value no file's text
                // reads back as (that always ends in a newline), so the shim always asks.
                Ok(text) if !text.contains('\0') => text
                    .split_terminator('\n')
                    .map(|l| format!("{l}\n"))
                    .collect(),
                _ => "unreadable-text".to_string(),
            }
        };
        ConfigTexts {
            repo: as_shim_reads(Some(repo_file.to_owned())),
            user: as_shim_reads(crate::config::user_file()),
        }
    }
}

/// The copy of the protected patterns the reference-transaction shim sources, so that
/// updates of other refs never start git-codex. Rewritten whenever config is loaded by a
/// hook with a newer config file. Its `codex_protected` comes from the same parsed patterns
/// as the gate's (src/config/protected.rs) and may only say "protected" more often. It also
/// names the user config file it was made with: under another one, the shim asks git-codex.
pub fn write_cache(
    state_dir: &Utf8Path,
    config: &Config,
    texts: &ConfigTexts,
    records: &[crate::state::SessionRecord],
) -> anyhow::Result<()> {
    let gate_on = config.review.require_approval && config.gate_reference_transaction;
    let mut text =
        String::from("# written by git-codex from the protected patterns; do not edit\n");
    text.push_str(&format!("codex_cache_version={CACHE_VERSION}\n"));
    text.push_str(&format!("codex_gate={}\n", u8::from(gate_on)));
    let user = crate::config::user_file()
        .map(|p| p.to_string())
        .unwrap_or_default();
    text.push_str(&format!("codex_cache_user='{}'\n", sh_quote(&user)));
    text.push_str(&format!(
        "codex_cache_repo_text='{}'\n",
        sh_quote(&texts.repo)
    ));
    text.push_str(&format!(
        "codex_cache_user_text='{}'\n",
        sh_quote(&texts.user)
    ));
    text.push_str(&session_ref_function(config, records));
    text.push_str(&config.review.protected.shell_function());
    let path = state_dir.join("hooks-cache.sh");
    // Hooks refresh it on every run: unchanged, it is not written (nor synced) again.
    if fs_err::read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    atomic_write(&path, text.as_bytes())
}

/// What the shim expects of the cache; another version makes it ask git-codex (which writes
/// a new one).
const CACHE_VERSION: u32 = 3;

/// `codex_session_ref REF`: whether REF is, or may be, a session's branch (under the branch
/// prefix, or named by a record outside it, say after the prefix changed), whose moves the
/// ledger keeps. Sessions under the prefix add nothing, so adding one leaves the cache as it is.
fn session_ref_function(config: &Config, records: &[crate::state::SessionRecord]) -> String {
    let mut patterns = vec![format!(
        "refs/heads/{}*",
        literal_pattern(&config.branch_prefix)
    )];
    for record in records {
        if !record.branch.starts_with(&config.branch_prefix) {
            patterns.push(format!("refs/heads/{}", literal_pattern(&record.branch)));
        }
    }
    if patterns
        .iter()
        .any(|p| p.chars().any(|c| c.is_control() || c == '\n'))
    {
        return "codex_session_ref() { return 0; }\n".to_string();
    }
    format!(
        "codex_session_ref() {{\n  case \"$1\" in\n    {}) return 0 ;;\n  esac\n  return 1\n}}\n",
        patterns.join("|")
    )
}

/// Text as a sh `case` pattern that matches it literally.
fn literal_pattern(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// When `core.hooksPath` is relative, each worktree resolves it against its own root, and a
/// dir that is not tracked (husky's `.husky/_`) does not exist in new session worktrees.
pub fn worktree_problem(git: &Git, main_root: &Utf8Path) -> Option<String> {
    let configured = git.run(main_root, &["config", "core.hooksPath"]).ok()?;
    if configured.is_empty() || Utf8Path::new(&configured).is_absolute() {
        return None;
    }
    let tracked = git
        .run(main_root, &["ls-files", "--", &configured])
        .is_ok_and(|out| !out.is_empty());
    (!tracked).then(|| {
        format!(
            "core.hooksPath is '{configured}', relative to each worktree, and not tracked: new session worktrees lack it, so git runs no hooks there"
        )
    })
}
