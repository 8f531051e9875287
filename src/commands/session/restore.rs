//! `git codex session restore <id>`: a removed or pruned session comes back from its branch
//! and `refs/codex/snapshots/<id>`, uncommitted and untracked files included.

use jiff::Timestamp;

use super::add::{Plan, check_policy, create, new_record};
use crate::cli::SessionRestoreArgs;
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::base_ref;
use crate::git::snapshot::snapshot_ref;
use crate::output;
use crate::state::id;

pub fn run(args: SessionRestoreArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    ctx.ensure_init()?;
    let _lock = ctx.state.lock()?;
    let (records, broken) = ctx.state.records()?;
    if records.iter().any(|r| r.id == id.as_str()) {
        return Err(UserError::refused(format!(
            "session '{id}' is live: there is nothing to restore"
        ))
        .hint(format!(
            "its worktree is shown by 'git codex session show {id}'"
        ))
        .into());
    }
    let branch = format!("{}{}", ctx.config.branch_prefix, id);
    let full_branch = format!("refs/heads/{branch}");
    let tip = ctx.reader.ref_target(&full_branch)?;
    let snapshot = ctx.reader.ref_target(&snapshot_ref(id.as_str()))?;
    let Some(start) = tip.or(snapshot.and_then(|s| ctx.reader.first_parent(s))) else {
        return Err(UserError::unknown_session(id.as_str())
            .hint(format!(
                "nothing is known of it: no branch {branch} and no snapshot {}",
                snapshot_ref(id.as_str())
            ))
            .into());
    };
    let now = Timestamp::now();
    check_policy(&ctx, &id, &records, &broken, now)?;
    // A snapshot belongs on the commit it was taken from; on another it would mislead.
    let snapshot = snapshot.filter(|s| {
        let fits = ctx.reader.first_parent(*s) == Some(start);
        if !fits {
            output::warning(&format!(
                "{} was taken on another commit than {branch}'s tip; not applied (see 'git show {}')",
                snapshot_ref(id.as_str()),
                snapshot_ref(id.as_str())
            ));
        }
        fits
    });
    let (base, mut base_commit) = ctx.reader.restore_base(start)?;
    if let Some(recorded) = ctx.reader.ref_target(&base_ref(id.as_str()))? {
        base_commit = recorded;
    }
    let record = new_record(
        &ctx,
        &id,
        branch,
        &base,
        base_commit,
        (&records, &broken),
        now,
    )?;
    let plan = Plan {
        start: start.to_string(),
        record,
        full_branch,
        new_branch: tip.is_none(),
        snapshot: snapshot.map(|s| s.to_string()),
    };
    create(&ctx, &plan)?;
    output::data(plan.record.worktree.as_str());
    let with = if plan.snapshot.is_some() {
        " with its uncommitted work"
    } else {
        ""
    };
    output::note(&format!(
        "Restored session '{id}'{with} on branch {}",
        plan.record.branch
    ));
    Ok(())
}
