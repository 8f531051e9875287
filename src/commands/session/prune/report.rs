//! What prune says it did (or would do), for people and as JSON.

use serde_json::json;

use super::{Kind, Outcome, session_target};
use crate::commands::session::remove::describe;
use crate::output::{self, escape};

fn verb(kind: Kind, dry_run: bool) -> &'static str {
    match (kind, dry_run) {
        (Kind::Expired | Kind::MissingWorktree, false) => "Pruned session",
        (Kind::Expired | Kind::MissingWorktree, true) => "Would prune session",
        (Kind::OrphanDir, false) => "Removed orphan dir",
        (Kind::OrphanDir, true) => "Would remove orphan dir",
        (Kind::Unowned, _) => "Left alone",
        (Kind::Trash, false) => "Emptied trash",
        (Kind::Trash, true) => "Would empty trash",
        (Kind::StaleAdmin, false) => "Removed stale git worktree entry",
        (Kind::StaleAdmin, true) => "Would remove stale git worktree entry",
        (Kind::OrphanBranch, _) => "Found branch",
        (Kind::Skipped, _) => "Left session",
    }
}

pub fn report_text(outcomes: &[Outcome], dry_run: bool) {
    if outcomes.is_empty() {
        output::note("Nothing to prune");
        return;
    }
    for outcome in outcomes {
        let f = &outcome.finding;
        let what = match (f.kind, &f.branch, &f.path) {
            (Kind::OrphanBranch, Some(branch), _) => escape::quote(branch).into_owned(),
            (Kind::Expired | Kind::MissingWorktree | Kind::Skipped, _, _) => {
                format!("'{}'", escape::quote(&f.id))
            }
            (_, _, Some(path)) => escape::quote(path.as_str()).into_owned(),
            _ => escape::quote(&f.id).into_owned(),
        };
        output::note(&format!(
            "{} {what}: {}",
            verb(f.kind, dry_run),
            escape::line(&f.reason)
        ));
        if let Some(err) = &outcome.error {
            output::error(&format!("could not prune {what}: {}", escape::text(err)));
        }
        if let Some(removed) = &outcome.removed {
            for line in describe(&session_target(f), removed) {
                output::note(&format!("  {line}"));
            }
        }
    }
}

pub fn report_json(outcomes: &[Outcome], dry_run: bool) -> anyhow::Result<()> {
    let items: Vec<_> = outcomes
        .iter()
        .map(|o| {
            let f = &o.finding;
            let removed = o.removed.as_ref();
            json!({
                "kind": f.kind.as_str(),
                "id": f.id,
                "path": f.path,
                "branch": f.branch,
                "reason": f.reason,
                "acts": f.kind.acts(),
                "snapshot": removed.and_then(|r| r.snapshot.clone()),
                "branchDeleted": removed.is_some_and(|r| r.branch_deleted),
                "error": o.error,
            })
        })
        .collect();
    output::json(&json!({"schema": 1, "dryRun": dry_run, "items": items}))
}
