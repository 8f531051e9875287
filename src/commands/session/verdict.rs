//! A verdict on a session's tip (`session review --approve | --reject`): bound to the tip the
//! person saw (`--tip`), never while the agent still writes, recorded under the lock with
//! compare-and-swap, and said back (what was approved).

use gix::ObjectId;

use crate::context::Ctx;
use crate::error::UserError;
use crate::git::refs::RefUpdate;
use crate::output::escape;
use crate::review::Summary;
use crate::review::approval::{self, ApprovalState, approval_ref, rejection_ref};
use crate::state::SessionRecord;

use super::review::{branch_tip, short};

/// `--approve` approves what a person saw: never a tip an agent is still writing.
pub(super) fn refuse_while_agent_runs(
    ctx: &Ctx,
    id: &crate::state::SessionId,
) -> anyhow::Result<()> {
    let record = ctx.state.record(id)?;
    match &record.agent {
        Some(agent) if agent.is_alive() => Err(UserError::refused(format!(
            "not approved: an agent is still running in session '{id}' (pid {}): what it writes next would be approved unseen",
            agent.pid
        ))
        .hint(format!(
            "wait for it to end (or stop it), then review '{id}' again and approve the tip you read with --approve --tip SHA"
        ))
        .into()),
        _ => Ok(()),
    }
}

/// The commit `--tip` names: a full id or a unique prefix of one.
pub(super) fn seen_tip(ctx: &Ctx, given: &str) -> anyhow::Result<ObjectId> {
    let bad = |why: String| -> anyhow::Error {
        UserError::bad_input(format!("--tip {}: {why}", escape::quote(given)))
            .hint("give the tip the review showed (its full id, or at least 4 hex digits of it)")
            .into()
    };
    if given.len() < 4 || given.len() > 40 || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("not a commit id (4 to 40 hex digits)".into()));
    }
    match ctx.reader.commit_by_prefix(given) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(bad("no commit in this repository has that id".into())),
        Err(err) => Err(bad(format!("{err:#}"))),
    }
}

/// Refuses unless the session's branch is at `seen`.
pub(super) fn refuse_unless_tip(
    ctx: &Ctx,
    id: &crate::state::SessionId,
    seen: ObjectId,
) -> anyhow::Result<()> {
    let record = ctx.state.record(id)?;
    let tip = branch_tip(ctx, &record)?;
    if tip == seen {
        return Ok(());
    }
    Err(moved_since(ctx, id, seen, tip)?)
}

/// The refusal of a verdict on `seen` when the tip is `tip`: the commits added since, named.
pub(super) fn moved_since(
    ctx: &Ctx,
    id: &crate::state::SessionId,
    seen: ObjectId,
    tip: ObjectId,
) -> anyhow::Result<anyhow::Error> {
    let added = ctx.reader.commit_lines(tip, seen)?;
    let contained = ctx.reader.commit_lines(seen, tip)?.is_empty();
    let mut message = if contained {
        format!(
            "nothing recorded: session '{id}' is at {} now, not at {}; {} commit(s) were added since:",
            short(&tip),
            short(&seen),
            added.len()
        )
    } else {
        format!(
            "nothing recorded: session '{id}' is at {} now, and {} is not in its history (the branch was rewritten); its commits not in {}:",
            short(&tip),
            short(&seen),
            short(&seen)
        )
    };
    for commit in &added {
        message.push_str(&format!(
            "\n  {} {}",
            &commit.sha[..12.min(commit.sha.len())],
            escape::line(&commit.subject)
        ));
    }
    Ok(UserError::refused(message)
        .hint(format!(
            "review '{id}' again to see what they change; its approve command then names the new tip"
        ))
        .into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Approve,
    Reject,
}

/// Under the lock, with compare-and-swap: the approval (or rejection) of exactly `tip`.
pub(super) fn record_verdict(
    ctx: &Ctx,
    record: &SessionRecord,
    tip: ObjectId,
    verdict: Verdict,
    message: Option<&str>,
    summary: &Summary,
) -> anyhow::Result<String> {
    let _lock = super::journal::lock(ctx)?;
    if verdict == Verdict::Approve {
        // A run may have begun since the review started.
        refuse_while_agent_runs(ctx, &crate::state::id::parse(&record.id)?)?;
    }
    if branch_tip(ctx, record)? != tip {
        return Err(
            UserError::refused(format!("session '{}' moved during the review", record.id))
                .hint("review it again")
                .into(),
        );
    }
    let id = &record.id;
    let mut approval = ctx.reader.ref_id(&approval_ref(id))?;
    let rejection = ctx.reader.ref_id(&rejection_ref(id))?;
    if verdict == Verdict::Reject
        && approval::landed_before(&ctx.reader, id, tip, &crate::gate::protected_tips(ctx)?)?
    {
        // It stays: what it approved is on a protected branch, where the gate let it land.
        approval = None;
    }
    if verdict == Verdict::Approve
        && let ApprovalState::Approved(existing) =
            approval::state(&ctx.reader, id, tip, ctx.signers().as_ref())?
        && existing.commit_id() == Some(tip)
    {
        return Err(UserError::refused(format!(
            "session '{id}' is already approved at {} by {}",
            short(&tip),
            existing.by
        ))
        .into());
    }
    let (word, name, old, other, other_old) = match verdict {
        Verdict::Approve => (
            "approve",
            approval_ref(id),
            approval,
            rejection_ref(id),
            rejection,
        ),
        Verdict::Reject => (
            "reject",
            rejection_ref(id),
            rejection,
            approval_ref(id),
            approval,
        ),
    };
    let mut text = format!("{word} {} at {tip}\n", record.branch);
    if let Some(message) = message {
        text.push_str(&format!("\n{}\n", message.trim_end()));
    }
    let t = &summary.totals;
    text.push_str(&format!(
        "\nFiles: {}, +{} -{}\nReport: reviews/{id}/{tip}.md\n",
        t.files, t.insertions, t.deletions
    ));
    let tag_name = format!("codex-{word}-{id}");
    let signers = ctx.signers();
    let tag = match &signers {
        None => ctx
            .git
            .make_tag(&ctx.paths.main_root, &tip.to_string(), &tag_name, &text)?,
        Some(signers) => {
            let tag = ctx.git.make_signed_tag(
                &ctx.paths.main_root,
                &ctx.paths.common_dir,
                &ctx.state.root,
                &tip.to_string(),
                &tag_name,
                &text,
            )?;
            // An approval the gate would not accept is refused now, before any ref moves.
            let raw = ctx.reader.raw_object(ObjectId::from_hex(tag.as_bytes())?)?;
            if verdict == Verdict::Approve
                && let Err(why) = signers.verify(&raw)
            {
                return Err(UserError::refused(format!(
                    "not approved: the signed approval of session '{id}' would not count: {why}"
                ))
                .hint("sign with a key that review.allowed_signers lists for your user.email")
                .into());
            }
            tag
        }
    };
    let mut updates = vec![RefUpdate::Set {
        name: name.clone(),
        new: tag,
        old: old.map(|o| o.to_string()),
    }];
    if let Some(other_old) = other_old {
        // A verdict replaces the opposite one.
        updates.push(RefUpdate::Delete {
            name: other,
            old: other_old.to_string(),
        });
    }
    ctx.git
        .update_refs(&ctx.paths.main_root, &updates)
        .map_err(|err| {
            UserError::refused(format!(
                "another verdict on session '{id}' was recorded meanwhile: {err:#}"
            ))
            .hint("review again to see it")
        })?;
    let done = if verdict == Verdict::Approve {
        "Approved"
    } else {
        "Rejected"
    };
    let mut said = format!("{done} session '{id}' at {tip} ({name}):");
    for file in &summary.files {
        let counts = if file.binary {
            "binary".to_string()
        } else {
            format!("+{} -{}", file.insertions, file.deletions)
        };
        let name = match &file.old_path {
            Some(old) => format!("{} -> {}", escape::quote(old), escape::quote(&file.path)),
            None => escape::quote(&file.path).into_owned(),
        };
        said.push_str(&format!("\n  {} {name} ({counts})", status_letter(file)));
    }
    said.push_str(&format!(
        "\n  {} file(s), +{} -{}",
        t.files, t.insertions, t.deletions
    ));
    Ok(said)
}

/// git's one-letter status (`--name-status`).
fn status_letter(file: &crate::review::diff::FileStat) -> char {
    use crate::review::diff::FileStatus;
    match file.status {
        FileStatus::Added => 'A',
        FileStatus::Modified => 'M',
        FileStatus::Deleted => 'D',
        FileStatus::Renamed => 'R',
        FileStatus::Copied => 'C',
    }
}
