//! What a new worktree gets before the agent arrives: copied files, metadata, setup commands.

use std::process::Stdio;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::json;
use toml::Value;

use crate::context::Ctx;
use crate::error::UserError;
use crate::git::orphans;
use crate::sandbox::gate;
use crate::state::{SessionRecord, atomic_write};

/// `<worktree>/.codex-session.json`: the seed's keys for UIs, plus ours.
pub fn write_metadata(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<()> {
    let review_hook = match ctx.settings.get("review.hook") {
        Some((Value::String(s), _)) => s.clone(),
        _ => String::new(),
    };
    let meta = json!({
        "id": record.id,
        "created": record.created,
        "sandbox": record.sandbox,
        "reviewHook": review_hook,
        "isolationPath": record.worktree,
        "branch": record.branch,
        "base": record.base,
        "expiresAt": record.expires_at(None),
        "port": record.port,
    });
    let mut text = serde_json::to_vec_pretty(&meta)?;
    text.push(b'\n');
    atomic_write(&record.worktree.join(crate::state::SESSION_FILE), &text)
}

/// Copies the `copy_files` globs (relative to the main worktree) into the new worktree,
/// keeping mode bits. Files the checkout already has are left alone. Returns the copied paths,
/// relative to the worktree, so that review never commits them.
pub fn copy_files(
    main_root: &Utf8Path,
    worktree: &Utf8Path,
    patterns: &[String],
    base_dir: &Utf8Path,
) -> anyhow::Result<Vec<String>> {
    let mut copied = Vec::new();
    for pattern in patterns {
        // The rule `config set` and every load apply: a value there is never refused here.
        crate::config::checks::check_copy_pattern(pattern)
            .map_err(|why| UserError::bad_input(format!("session.copy_files: {why}")))?;
        let full = format!("{}/{pattern}", glob::Pattern::escape(main_root.as_str()));
        let matches = glob::glob(&full).map_err(|err| {
            UserError::bad_input(format!("session.copy_files: bad glob '{pattern}': {err}"))
        })?;
        for found in matches {
            let found = found.with_context(|| format!("cannot read a match of '{pattern}'"))?;
            let Ok(found) = Utf8PathBuf::from_path_buf(found) else {
                continue;
            };
            let Ok(relative) = found.strip_prefix(main_root) else {
                continue;
            };
            if relative.starts_with(".git") || found.starts_with(base_dir) {
                continue;
            }
            let destination = worktree.join(relative);
            // A worktree restored from the trash is what the agent left: never copy through
            // a link it planted on the way (a dir that is a link out of the worktree).
            let mut through_link = false;
            let mut prefix = worktree.to_owned();
            for part in relative.parent().into_iter().flat_map(|p| p.components()) {
                prefix.push(part);
                through_link |= prefix.is_symlink();
            }
            if !through_link && !destination.exists() && !destination.is_symlink() {
                copy_entry(&found, &destination)?;
                copied.push(relative.to_string());
            }
        }
    }
    Ok(copied)
}

fn copy_entry(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    if to.exists() || to.is_symlink() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let meta = fs_err::symlink_metadata(from)?;
    if meta.is_symlink() {
        let target = fs_err::read_link(from)?;
        std::os::unix::fs::symlink(&target, to)
            .with_context(|| format!("cannot copy symlink {from}"))?;
    } else if meta.is_dir() {
        fs_err::create_dir_all(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            copy_entry(&from.join(name), &to.join(name))?;
        }
    } else {
        // fs::copy keeps the permission bits.
        fs_err::copy(from, to)?;
    }
    Ok(())
}

/// Runs each `setup` command in the worktree, as argv (never through a shell).
pub fn run_setup(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<()> {
    for words in &ctx.config.setup {
        if words.is_empty() {
            continue;
        }
        let shown = words.join(" ");
        let mut cmd = gate::dying_with_us(words).map_err(|err| {
            UserError::runtime(format!("cannot find git-codex's own program: {err}"))
        })?;
        let status = cmd
            .current_dir(&record.worktree)
            // The gate ends setup with a killed git-codex; a git setup runs carries the mark,
            // so the next command waits for it before it rolls the add back.
            .env(orphans::MARKER, std::process::id().to_string())
            .env("CODEX_SESSION_ID", &record.id)
            .env("CODEX_WORKTREE", record.worktree.as_str())
            .env("CODEX_PORT", record.port.to_string())
            .stdin(Stdio::null())
            // stdout is reserved for the worktree path.
            .stdout(std::io::stderr())
            .status()
            .map_err(|err| {
                UserError::runtime(format!("setup command '{shown}' could not start: {err}"))
                    .hint("fix session.setup; the session was rolled back")
            })?;
        if !status.success() {
            return Err(
                UserError::runtime(format!("setup command '{shown}' failed ({status})"))
                    .hint("fix session.setup or the command; the session was rolled back")
                    .into(),
            );
        }
    }
    Ok(())
}
