//! What a crash or a person can leave that every later command trips over (issue 16): a
//! state dir git-codex cannot write, git lock files a killed git left, a record path that is
//! a dir. Each finding says what and where, and names the one command that repairs it:
//! `git codex doctor --repair` for what git-codex can prove is its to move (stale locks,
//! record dirs, both moved to the trash, never deleted), `chmod` for permissions.

use camino::{Utf8Path, Utf8PathBuf};

use super::{Check, check};
use crate::commands::session::stale_locks::{self, Found, Session};
use crate::commands::session::{moves, trash};
use crate::context::Ctx;
use crate::output;

pub const REPAIR: &str = "git codex doctor --repair";

pub fn checks(ctx: &Ctx, checks: &mut Vec<Check>) {
    checks.push(state_dir_check(ctx));
    checks.push(locks_check(ctx));
    checks.push(record_dirs_check(ctx));
}

/// Whether `dir` can be written here; the error when not.
fn writable(dir: &Utf8Path) -> Result<(), rustix::io::Errno> {
    rustix::fs::access(dir.as_std_path(), rustix::fs::Access::WRITE_OK)
}

fn state_dir_check(ctx: &Ctx) -> Check {
    let root = &ctx.state.root;
    let dirs: Vec<Utf8PathBuf> = [root.clone(), ctx.state.sessions_dir()]
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    let denied: Vec<(&Utf8PathBuf, rustix::io::Errno)> = dirs
        .iter()
        .filter_map(|d| writable(d).err().map(|e| (d, e)))
        .collect();
    if denied.is_empty() {
        return check("state-dir", "ok", format!("{root} is writable"), None);
    }
    let names: Vec<&str> = denied.iter().map(|(d, _)| d.as_str()).collect();
    let detail = format!(
        "not writable: {}; every command that changes sessions fails",
        names.join(", ")
    );
    let hint = if denied.iter().any(|(_, e)| *e == rustix::io::Errno::ROFS) {
        "the filesystem is mounted read-only: remount it read-write".to_string()
    } else {
        format!("chmod u+w {}", names.join(" "))
    };
    check("state-dir", "fail", detail, Some(&hint))
}

/// Every git lock file of the repository and of each session's worktree.
fn all_locks(ctx: &Ctx) -> Vec<(String, Found)> {
    let mut found: Vec<(String, Found)> = stale_locks::find_main(&ctx.paths)
        .into_iter()
        .map(|f| ("the repository".to_string(), f))
        .collect();
    let (records, _) = ctx.state.records().unwrap_or_default();
    for record in &records {
        let whose = format!("session '{}'", record.id);
        found.extend(
            stale_locks::find_session(&ctx.paths, &Session::from(record))
                .into_iter()
                .map(|f| (whose.clone(), f)),
        );
    }
    found
}

fn locks_check(ctx: &Ctx) -> Check {
    let found = all_locks(ctx);
    let (stale, held): (Vec<_>, Vec<_>) = found.iter().partition(|(_, f)| f.holder.is_none());
    let held_note = held
        .iter()
        .map(|(_, f)| format!("{} (held by {})", f.path, f.holder.as_deref().unwrap_or("")))
        .collect::<Vec<_>>();
    if stale.is_empty() {
        let detail = if held.is_empty() {
            "no git lock files".to_string()
        } else {
            format!("in use now: {}", held_note.join(", "))
        };
        return check("git-locks", "ok", detail, None);
    }
    let names: Vec<String> = stale
        .iter()
        .map(|(whose, f)| format!("{} ({whose})", f.path))
        .collect();
    check(
        "git-locks",
        "fail",
        format!(
            "stale git lock(s), no live process holds them, git fails there until they go: {}",
            names.join(", ")
        ),
        Some(&format!("{REPAIR} (moves them to the trash)")),
    )
}

/// Record paths (`sessions/<id>.json`) that are dirs: no record, and no file git-codex can
/// write there.
fn record_dirs(ctx: &Ctx) -> Vec<Utf8PathBuf> {
    let Ok(entries) = fs_err::read_dir(ctx.state.sessions_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<Utf8PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .filter(|p| p.extension() == Some("json"))
        .collect();
    out.sort();
    out
}

fn record_dirs_check(ctx: &Ctx) -> Check {
    let dirs = record_dirs(ctx);
    if dirs.is_empty() {
        return check("record-paths", "ok", "every record path is a file", None);
    }
    let names: Vec<&str> = dirs.iter().map(|d| d.as_str()).collect();
    check(
        "record-paths",
        "fail",
        format!("a dir where a session record belongs: {}", names.join(", ")),
        Some(&format!("{REPAIR} (moves each to the trash, whole)")),
    )
}

/// `doctor --repair`: moves stale git locks and record-path dirs to the trash, saying what
/// went where. Under the state lock, so no command of git-codex is midway.
pub fn repair(ctx: &Ctx) -> anyhow::Result<()> {
    let _lock = ctx.state.lock()?;
    stale_locks::clear_main(&ctx.paths)?;
    let (records, _) = ctx.state.records()?;
    for record in &records {
        stale_locks::clear_session(&ctx.paths, &Session::from(record))?;
    }
    for dir in record_dirs(ctx) {
        let to = trash_slot(&ctx.paths.common_dir, "record", &dir)?;
        moves::move_dir(&dir, &to)?;
        output::note(&format!(
            "git-codex: moved {dir} (a dir where a session record belongs) to {to}"
        ));
    }
    // An intent nobody can read names nothing to finish: kept, out of the journal's way.
    for pending in ctx.state.pending()? {
        if pending.intent.is_ok() {
            continue;
        }
        let to = trash_slot(&ctx.paths.common_dir, "intent", &pending.path)?;
        fs_err::rename(&pending.path, &to)?;
        output::note(&format!(
            "git-codex: moved {} (an intent that cannot be read) to {to}",
            pending.path
        ));
    }
    Ok(())
}

/// A new place in the trash for `path`: `<trash>/<kind>-<name>@<seconds>-<n>/<name>`.
fn trash_slot(common_dir: &Utf8Path, kind: &str, path: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    let root = trash::root(common_dir);
    fs_err::create_dir_all(&root)?;
    let name = path.file_name().unwrap_or(kind);
    let secs = jiff::Timestamp::now().as_second();
    for n in 0..1000u32 {
        let slot = root.join(format!("{kind}-{name}@{secs}-{n}"));
        match std::fs::create_dir(&slot) {
            Ok(()) => return Ok(slot.join(name)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!("cannot create {slot}")));
            }
        }
    }
    anyhow::bail!("cannot make a new dir in {root}")
}
