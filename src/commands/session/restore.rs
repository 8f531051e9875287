//! `git codex session restore <id>`: a removed or pruned session comes back from its branch
//! and `refs/codex/snapshots/<id>`, uncommitted and untracked files included.

use gix::ObjectId;
use jiff::Timestamp;

use super::add::{Plan, check_policy, create, new_record};
use super::trash;
use crate::cli::SessionRestoreArgs;
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::base_ref;
use crate::git::snapshot::snapshot_ref;
use crate::output;
use crate::state::{SessionId, id};

pub fn run(args: SessionRestoreArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    // An id that names nothing to restore sets nothing up (no state dir, no hooks).
    if !ctx.state.record_path(id.as_str()).exists() {
        known_start(&ctx, &id)?;
    }
    ctx.ensure_init()?;
    let _lock = super::journal::lock(&ctx)?;
    let (mut records, mut broken) = ctx.state.records()?;
    // Its worktree removed by hand (`git worktree remove`) and no agent at work in it: the
    // session is pruned first, as `session prune` would, then comes back below.
    if let Some(record) = records.iter().find(|r| {
        r.id == id.as_str()
            && !r.worktree.exists()
            && !r.worktree.is_symlink()
            && !r.agent.as_ref().is_some_and(|a| a.is_alive())
    }) {
        super::prune::prune_missing(&ctx, record)?;
        (records, broken) = ctx.state.records()?;
    }
    if records.iter().any(|r| r.id == id.as_str()) {
        return Err(UserError::refused(format!(
            "session '{id}' is live: there is nothing to restore"
        ))
        .hint(format!(
            "its worktree is shown by 'git codex session show {id}'"
        ))
        .into());
    }
    let Known {
        branch,
        full_branch,
        tip,
        snapshot,
        trashed,
        trashed_head,
        start,
    } = known_start(&ctx, &id)?;
    let now = Timestamp::now();
    check_policy(&ctx, &id, &records, &broken, now)?;
    // The trash copy is the whole worktree, but only on the commit it was on: over another,
    // its files would show the branch's newer commits as undone.
    let trashed = trashed.filter(|entry| {
        let fits = trashed_head == Some(start);
        if !fits {
            output::warning(&format!(
                "the worktree of '{id}' in the trash ({}) was on another commit than {branch}'s tip; left there, a checkout is restored instead",
                entry.worktree()
            ));
        }
        fits
    });
    // A snapshot belongs on the commit it was taken from; on another it would mislead. The
    // trash copy, when there, already holds what it saved.
    let snapshot = snapshot.filter(|_| trashed.is_none()).filter(|s| {
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
        trash: trashed,
    };
    create(&ctx, &plan)?;
    output::data(plan.record.worktree.as_str());
    let with = if plan.trash.is_some() {
        " whole from the trash (uncommitted, untracked and ignored files)"
    } else if plan.snapshot.is_some() {
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

/// What there is of a removed session: its branch, snapshot and newest trash entry, and the
/// commit it comes back on.
struct Known {
    branch: String,
    full_branch: String,
    tip: Option<ObjectId>,
    snapshot: Option<ObjectId>,
    trashed: Option<trash::Entry>,
    trashed_head: Option<ObjectId>,
    start: ObjectId,
}

/// [`Known`] of `id`, or "no session" (exit 4) when nothing is known of it.
fn known_start(ctx: &Ctx, id: &SessionId) -> anyhow::Result<Known> {
    let branch = format!("{}{}", ctx.config.branch_prefix, id);
    let full_branch = format!("refs/heads/{branch}");
    let tip = ctx.reader.ref_target(&full_branch)?;
    let snapshot = ctx.reader.ref_target(&snapshot_ref(id.as_str()))?;
    let trashed = trash::newest_of(&ctx.paths.common_dir, id.as_str())?;
    let trashed_head = trashed
        .as_ref()
        .and_then(|e| e.meta.as_ref()?.head.as_deref())
        .and_then(|h| ctx.reader.resolve_commit(h).ok());
    let Some(start) = tip
        .or(snapshot.and_then(|s| ctx.reader.first_parent(s)))
        .or(trashed_head)
    else {
        return Err(UserError::unknown_session(id.as_str())
            .hint(format!(
                "nothing is known of it: no branch {branch} and no snapshot {}",
                snapshot_ref(id.as_str())
            ))
            .into());
    };
    Ok(Known {
        branch,
        full_branch,
        tip,
        snapshot,
        trashed,
        trashed_head,
        start,
    })
}
