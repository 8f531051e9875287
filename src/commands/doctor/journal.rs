//! The `interrupted` check: operations a killed command left half-done (their intents in
//! `<state>/journal`, trash entries it was deleting). Every one is finished or rolled back by
//! the next command that takes the state lock; `session prune` is the one to run.

use super::{Check, check};
use crate::context::Ctx;
use crate::output::escape;

pub fn interrupted_check(ctx: &Ctx) -> Check {
    let pending = match ctx.state.pending() {
        Ok(pending) => pending,
        Err(err) => {
            return check(
                "interrupted",
                "fail",
                format!("cannot read {}: {err:#}", ctx.state.journal_dir()),
                Some("make it a readable directory of git-codex's, then run doctor again"),
            );
        }
    };
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for item in pending {
        match item.intent {
            Ok(intent) => found.push(format!(
                "{} of session {} (started {})",
                intent.op.as_str(),
                escape::quote(&intent.id),
                intent.started
            )),
            Err(problem) => unreadable.push(format!("{} ({problem})", item.path)),
        }
    }
    let trash = crate::commands::session::trash::root(&ctx.paths.common_dir);
    let deleting = fs_err::read_dir(&trash)
        .map(|list| {
            list.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".deleting-"))
                .count()
        })
        .unwrap_or(0);
    let temps = ctx.state.stale_temps();
    if !temps.is_empty() {
        let names: Vec<&str> = temps.iter().map(|t| t.as_str()).collect();
        found.push(format!("unfinished write(s) {}", names.join(", ")));
    }
    if deleting > 0 {
        found.push(format!("{deleting} trash entry deletion(s) in {trash}"));
    }
    if !unreadable.is_empty() {
        return check(
            "interrupted",
            "fail",
            format!("unreadable intent(s): {}", unreadable.join(", ")),
            Some(
                "run 'git codex doctor --repair' (it moves each to the trash), then 'git codex doctor' again",
            ),
        );
    }
    if found.is_empty() {
        return check("interrupted", "ok", "no operation was left half-done", None);
    }
    // A command that holds the lock is at work on them (or replays them as it takes it):
    // in progress, not killed.
    if ctx.state.is_busy() {
        return check(
            "interrupted",
            "warn",
            format!(
                "in progress (another git-codex command holds the lock): {}",
                found.join("; ")
            ),
            Some("wait for that command to end, then run doctor again"),
        );
    }
    check(
        "interrupted",
        "fail",
        format!("killed halfway: {}", found.join("; ")),
        Some(
            "run 'git codex session prune': it finishes each removal and rolls back each add or restore (then run it again)",
        ),
    )
}
