//! `git codex session merge <id>`: lands an approved session on a protected branch.

use gix::ObjectId;

use super::remove::{Target, describe, remove_session};
use crate::cli::{MergeStrategy, SessionMergeArgs};
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::Gate;
use crate::git::land::{Landing, Strategy};
use crate::output::{self, escape};
use crate::review::approval::{self, ApprovalState};
use crate::state::{SessionRecord, id};

pub fn run(args: SessionMergeArgs) -> anyhow::Result<()> {
    crate::sandbox::context::refuse_in_session("merge a session")?;
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    ctx.warn_if_gate_off();
    let _lock = super::journal::lock(&ctx)?;
    let record = ctx.state.record(&id)?;
    let target = target_branch(&ctx, args.into.as_deref())?;
    let target_ref = format!("refs/heads/{target}");
    let old = ctx.reader.ref_target(&target_ref)?.ok_or_else(|| {
        UserError::bad_input(format!("branch {} does not exist", escape::quote(&target)))
            .hint("pass an existing branch with --into")
    })?;
    let tip = ctx
        .reader
        .ref_target(&format!("refs/heads/{}", record.branch))?
        .ok_or_else(|| {
            UserError::runtime(format!(
                "the branch {} is gone",
                escape::quote(&record.branch)
            ))
        })?;
    crate::gate::record::observe(&ctx, &record)?;
    require_approval(&ctx, &record, old, tip)?;
    if ctx.reader.count_exclusive(tip, &[old])? == 0 {
        output::note(&format!(
            "{} already contains session '{id}'",
            escape::quote(&target)
        ));
    } else {
        let strategy = match args.strategy {
            MergeStrategy::Merge => Strategy::Merge,
            MergeStrategy::Squash => Strategy::Squash,
            MergeStrategy::Rebase => Strategy::Rebase,
            MergeStrategy::Ff => Strategy::Ff,
        };
        let message = merge_message(&ctx, &record, tip, old)?;
        let (old_hex, tip_hex) = (old.to_string(), tip.to_string());
        let scratch = ctx.state.scratch_dir(&record.id);
        let landing = Landing {
            main_root: &ctx.paths.main_root,
            target_ref: &target_ref,
            old: &old_hex,
            tip: &tip_hex,
            message: &message,
            scratch: &scratch,
        };
        let checkout = ctx
            .git
            .worktree_with_branch(&ctx.paths.main_root, &target_ref)?;
        let new = ctx.git.land(&landing, checkout.as_deref(), strategy)?;
        output::note(&format!(
            "Landed session '{id}' on {} ({}..{})",
            escape::quote(&target),
            &old_hex[..12],
            &new[..new.len().min(12)]
        ));
    }
    if args.remove {
        let target = Target::from(&record);
        let mut doomed = Vec::new();
        let removed = remove_session(&ctx, &target, false, &mut doomed)?;
        ctx.git.delete_refs(&ctx.paths.main_root, &doomed)?;
        output::note(&format!("Removed session '{id}'"));
        for line in describe(&target, &removed) {
            output::note(&line);
        }
    }
    Ok(())
}

/// `--into`, or the first protected branch that is a plain name.
fn target_branch(ctx: &Ctx, into: Option<&str>) -> anyhow::Result<String> {
    if let Some(into) = into {
        return Ok(into.trim_start_matches("refs/heads/").to_string());
    }
    ctx.config
        .review
        .protected
        .texts()
        .find(|p| !p.contains(['*', '?', '[']))
        .map(str::to_string)
        .ok_or_else(|| {
            UserError::bad_input("no target branch: review.protected names no plain branch")
                .hint("pass --into BRANCH")
                .into()
        })
}

/// Refuses (exit 3), before anything is touched, when the gate would not let the session's
/// tip land; the approval state says why in words.
fn require_approval(
    ctx: &Ctx,
    record: &SessionRecord,
    old: ObjectId,
    tip: ObjectId,
) -> anyhow::Result<()> {
    if Gate::load(ctx)?.check_landing(Some(old), tip)?.is_empty() {
        return Ok(());
    }
    let id = &record.id;
    let refused = |message: String| -> anyhow::Error {
        UserError::refused(message)
            .hint(format!(
                "review it with 'git codex session review {id}' and approve with --approve"
            ))
            .into()
    };
    match approval::state(&ctx.reader, id, tip, ctx.signers().as_ref())? {
        ApprovalState::Approved(v) => Err(refused(format!(
            "session '{id}' is approved at {}, yet the gate refuses it: another session's unapproved commits are in its history",
            &v.commit[..12]
        ))),
        ApprovalState::Stale(v) => Err(refused(format!(
            "session '{id}' is not approved at {}: its approval is for {}, and the branch has moved on",
            &tip.to_string()[..12],
            &v.commit[..12]
        ))),
        ApprovalState::Rejected(v) => Err(refused(format!(
            "session '{id}' was rejected by {}",
            escape::line(&v.by)
        ))),
        ApprovalState::Unverified(v, why) => Err(refused(format!(
            "the approval of session '{id}' by {} does not count: {}",
            escape::line(&v.by),
            escape::line(&why)
        ))),
        ApprovalState::Pending => Err(refused(format!("session '{id}' has no approval"))),
    }
}

fn merge_message(
    ctx: &Ctx,
    record: &SessionRecord,
    tip: ObjectId,
    old: ObjectId,
) -> anyhow::Result<String> {
    let mut message = format!("Merge session '{}' ({})\n\n", record.id, record.branch);
    for line in ctx.reader.commit_lines(tip, old)?.iter().rev() {
        message.push_str(&format!("* {} {}\n", &line.sha[..12], line.subject));
    }
    Ok(message)
}
