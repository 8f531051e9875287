//! `git codex session list [--json]`.

use jiff::Timestamp;
use serde_json::json;

use super::status::{SessionView, describe_expiry, seconds_between};
use crate::cli::SessionListArgs;
use crate::config::duration::format_seconds;
use crate::context::Ctx;
use crate::output::{self, escape};

pub fn run(args: SessionListArgs) -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    super::journal::finish_left(&ctx);
    let (records, broken) = ctx.state.records()?;
    let now = Timestamp::now();
    let views: Vec<SessionView> = SessionView::gather_all(&ctx, records, now)
        .into_iter()
        .filter(|view| !args.pending || view.state.is_pending())
        .collect();
    for b in &broken {
        output::warning(&format!(
            "session record {} is corrupt: {}",
            escape::quote(b.path.as_str()),
            escape::line(&b.problem)
        ));
    }
    if args.json {
        let sessions: Vec<_> = views.iter().map(|v| v.to_json(now)).collect();
        let broken: Vec<_> = broken
            .iter()
            .map(|b| json!({"id": b.id, "path": b.path, "problem": b.problem}))
            .collect();
        return output::json(&json!({"schema": 1, "sessions": sessions, "broken": broken}));
    }
    if views.is_empty() && broken.is_empty() {
        output::note("no sessions (create one with 'git codex session add <id>')");
        return Ok(());
    }
    let mut rows = vec![
        [
            "ID", "BRANCH", "STATE", "AGE", "EXPIRES", "AHEAD", "BEHIND", "DIRTY",
        ]
        .map(String::from),
    ];
    for v in &views {
        let r = &v.record;
        let count = |n: Option<usize>| n.map_or("?".to_string(), |n| n.to_string());
        rows.push([
            escape::quote(&r.id).into_owned(),
            escape::quote(&r.branch).into_owned(),
            v.state.as_str().to_string(),
            format_seconds(seconds_between(r.created, now).unsigned_abs()),
            describe_expiry(v.expires_at, now),
            count(v.ahead),
            count(v.behind),
            match v.dirty {
                Some(true) => "yes".to_string(),
                Some(false) => "no".to_string(),
                None => "-".to_string(),
            },
        ]);
    }
    for b in &broken {
        let mut row = [const { String::new() }; 8];
        row[0] = escape::quote(&b.id).into_owned();
        row[2] = "corrupt".to_string();
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
            .collect();
        output::data(line.join("  ").trim_end());
    }
}
