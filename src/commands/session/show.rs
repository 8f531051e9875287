//! `git codex session show <id> [--json]`.

use jiff::Timestamp;
use serde_json::json;

use super::status::{SessionView, describe_expiry};
use crate::cli::SessionShowArgs;
use crate::context::Ctx;
use crate::output::{self, escape};
use crate::state::id;

pub fn run(args: SessionShowArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    super::journal::finish_left(&ctx);
    let record = ctx.state.record(&id)?;
    let now = Timestamp::now();
    let view = SessionView::gather(&ctx, record, now);
    let paths = json!({
        "worktree": view.record.worktree,
        "record": ctx.state.record_path(id.as_str()),
        "tmp": ctx.state.tmp_dir(id.as_str()),
        "logs": ctx.state.logs_dir(id.as_str()),
        "runs": ctx.state.runs_dir(id.as_str()),
    });
    if args.json {
        let mut value = view.to_json(now);
        value["schema"] = json!(1);
        value["paths"] = paths;
        return output::json(&value);
    }
    let r = &view.record;
    let lines = [
        ("session", r.id.clone()),
        ("state", view.state.as_str().to_string()),
        ("branch", escape::quote(&r.branch).into_owned()),
        ("worktree", escape::quote(r.worktree.as_str()).into_owned()),
        (
            "base",
            format!("{} ({})", escape::quote(&r.base), short(&view.base)),
        ),
        ("tip", view.tip.as_deref().map_or("-".into(), short)),
        ("created", r.created.to_string()),
        ("last activity", r.last_activity.to_string()),
        ("expires", describe_expiry(view.expires_at, now)),
        (
            "ahead/behind",
            format!(
                "{}/{}",
                view.ahead.map_or("?".into(), |n| n.to_string()),
                view.behind.map_or("?".into(), |n| n.to_string())
            ),
        ),
        (
            "dirty",
            view.dirty
                .map_or("-".into(), |d| if d { "yes" } else { "no" }.to_string()),
        ),
        ("port", r.port.to_string()),
        ("sandbox", escape::quote(&r.sandbox).into_owned()),
        ("tmp", ctx.state.tmp_dir(id.as_str()).to_string()),
        ("logs", ctx.state.logs_dir(id.as_str()).to_string()),
        ("runs", ctx.state.runs_dir(id.as_str()).to_string()),
    ];
    for (name, value) in lines {
        output::data(&format!("{name:<14} {value}"));
    }
    for problem in &view.problems {
        output::warning(&escape::line(problem));
    }
    Ok(())
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}
