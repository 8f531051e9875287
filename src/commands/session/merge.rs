//! `git codex session merge <id>`: lands an approved session on a protected branch.

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;

use super::half_landing;
use super::remove::{Target, describe, remove_session};
use crate::cli::{MergeStrategy, SessionMergeArgs};
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::Gate;
use crate::git::land::{Landing, Strategy};
use crate::git::merge_leftovers::Unfinished;
use crate::output::{self, escape};
use crate::review::approval::{self, ApprovalState};
use crate::state::record::Landed;
use crate::state::{self, SessionRecord, id};

pub fn run(args: SessionMergeArgs) -> anyhow::Result<()> {
    crate::sandbox::context::refuse_in_session("merge a session")?;
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    ctx.warn_if_gate_off();
    let _lock = super::journal::lock(&ctx)?;
    let record = ctx.state.record(&id)?;
    // What killed gits left in the repository and the session would fail the merge.
    super::stale_locks::clear_main(&ctx.paths)?;
    super::stale_locks::clear_session(&ctx.paths, &(&record).into())?;
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
    let strategy = match args.strategy {
        MergeStrategy::Merge => Strategy::Merge,
        MergeStrategy::Squash => Strategy::Squash,
        MergeStrategy::Rebase => Strategy::Rebase,
        MergeStrategy::Ff => Strategy::Ff,
    };
    half_landing::refuse_elsewhere(&ctx, &record, &target_ref)?;
    match already_landed(&ctx, &record, &target_ref, old, tip, strategy)? {
        Some(why) => {
            output::note(&why);
            if let Some(wt) = ctx
                .git
                .worktree_with_branch(&ctx.paths.main_root, &target_ref)?
            {
                // Killed after git moved the branch, before it dropped MERGE_HEAD or
                // SQUASH_MSG, or before it wrote back the person's changes it kept aside.
                drop_own_stopped(&ctx, &wt, &record, &target_ref, tip)?;
                if record
                    .landing
                    .as_ref()
                    .is_some_and(|l| l.target == target_ref)
                {
                    half_landing::bring_back_kept(&ctx, &wt, &record)?;
                }
            }
            forget_landing(&ctx, &record.id, &target_ref, None)?;
        }
        None => land(&ctx, &record, &target_ref, old, tip, strategy)?,
    }
    if args.remove {
        let target = Target::from(&record);
        let mut doomed = Vec::new();
        let removed = remove_session(&ctx, &target, false, &mut doomed)?;
        ctx.git.delete_refs(&ctx.paths.main_root, &doomed)?;
        ctx.state.drop_intent(&target.id)?;
        output::note(&format!("Removed session '{id}'"));
        for line in describe(&target, &removed) {
            output::note(&line);
        }
    }
    Ok(())
}

/// Why the target already has the session, if it does: its tip is in the target's history,
/// this tip landed there before (the record says as what, and that commit is still there),
/// or a squash or rebase of it would change nothing (it landed and git-codex died before
/// recording it, or the same change came another way). Then nothing lands a second time.
fn already_landed(
    ctx: &Ctx,
    record: &SessionRecord,
    target_ref: &str,
    old: ObjectId,
    tip: ObjectId,
    strategy: Strategy,
) -> anyhow::Result<Option<String>> {
    let id = &record.id;
    let target = escape::quote(target_ref.trim_start_matches("refs/heads/"));
    if ctx.reader.count_exclusive(tip, &[old])? == 0 {
        return Ok(Some(format!("{target} already contains session '{id}'")));
    }
    let recorded = record
        .landed
        .as_ref()
        .filter(|l| {
            l.target == target_ref && ObjectId::from_hex(l.tip.as_bytes()).ok() == Some(tip)
        })
        .and_then(|l| ObjectId::from_hex(l.commit.as_bytes()).ok());
    // A commit that is gone (history rewritten, collected) is not evidence.
    if let Some(commit) = recorded
        && ctx
            .reader
            .count_exclusive(commit, &[old])
            .is_ok_and(|n| n == 0)
    {
        return Ok(Some(format!(
            "session '{id}' already landed on {target} as {}: nothing to land",
            &commit.to_string()[..12]
        )));
    }
    // A landing of this tip begun here, killed after it moved the branch and re-run with
    // another strategy, has landed as much as a squash or rebase would.
    let (old_hex, tip_hex) = (old.to_string(), tip.to_string());
    let begun_here = record
        .landing
        .as_ref()
        .is_some_and(|l| l.target == target_ref && l.tip == tip_hex && l.old != old_hex);
    if (begun_here || matches!(strategy, Strategy::Squash | Strategy::Rebase))
        && ctx
            .git
            .lands_nothing(&ctx.paths.main_root, &old.to_string(), &tip.to_string())?
    {
        return Ok(Some(format!(
            "{target} already has every change of session '{id}': nothing to land"
        )));
    }
    Ok(None)
}

/// Lands the session, then records where (see [`already_landed`]). A landing in a checkout
/// is recorded as begun first (see [`half_landing`]).
fn land(
    ctx: &Ctx,
    record: &SessionRecord,
    target_ref: &str,
    old: ObjectId,
    tip: ObjectId,
    strategy: Strategy,
) -> anyhow::Result<()> {
    let message = merge_message(ctx, record, tip, old)?;
    let (old_hex, tip_hex) = (old.to_string(), tip.to_string());
    let scratch = ctx.state.scratch_dir(&record.id);
    let landing = Landing {
        main_root: &ctx.paths.main_root,
        target_ref,
        old: &old_hex,
        tip: &tip_hex,
        message: &message,
        scratch: &scratch,
    };
    let checkout = ctx
        .git
        .worktree_with_branch(&ctx.paths.main_root, target_ref)?;
    if let Some(wt) = &checkout {
        drop_own_stopped(ctx, wt, record, target_ref, tip)?;
    }
    if let Some(wt) = &checkout
        && let Some(found) = ctx.git.unfinished_merge(wt)?
    {
        let tip = tip.to_string();
        let (what, hint) =
            describe_unfinished(wt, &found, |head| (head == tip).then(|| record.id.clone()));
        return Err(UserError::refused(what).hint(hint).into());
    }
    // A landing that cannot merge cleanly fails before it touches anything: what an earlier
    // one, killed, left stays as it is for the person to see.
    if checkout.is_some() && matches!(strategy, Strategy::Merge | Strategy::Squash) {
        ctx.git.merged_tree(&landing)?;
    }
    let mut kept = None;
    if let Some(wt) = &checkout {
        kept = half_landing::prepare(ctx, wt, record, target_ref)?;
        let mut begun = ctx.state.record(&id::parse(&record.id)?)?;
        begun.landing = Some(state::record::Landing {
            target: target_ref.to_string(),
            old: old_hex.clone(),
            tip: tip_hex.clone(),
            strategy: strategy.as_str().to_string(),
            started: Some(jiff::Timestamp::now()),
            kept: kept.clone(),
        });
        ctx.state.write_record(&begun)?;
    }
    let landed_at = ctx.git.land(&landing, checkout.as_deref(), strategy);
    if let (Some(wt), Some(kept)) = (&checkout, &kept) {
        // Landed or not (git left the checkout as it was), the person's changes go back.
        half_landing::write_back(ctx, wt, kept)?;
    }
    let new = match landed_at {
        Ok(new) => new,
        Err(err) => {
            forget_landing(ctx, &record.id, target_ref, kept.as_ref())?;
            return Err(err);
        }
    };
    output::note(&format!(
        "Landed session '{}' on {} ({}..{})",
        record.id,
        escape::quote(target_ref.trim_start_matches("refs/heads/")),
        &old_hex[..12],
        &new[..new.len().min(12)]
    ));
    // Read again: observing the session may have written its record.
    let mut landed = ctx.state.record(&id::parse(&record.id)?)?;
    landed.landed = Some(Landed {
        tip: tip_hex,
        target: target_ref.to_string(),
        commit: new,
    });
    ctx.state.write_record(&landed)?;
    forget_landing(ctx, &record.id, target_ref, kept.as_ref())
}

/// Drops the record's note of a landing begun on `target_ref` (one on another branch stays
/// until that one is finished), and the kept ref when it holds only what was written back.
fn forget_landing(
    ctx: &Ctx,
    id: &str,
    target_ref: &str,
    written_back: Option<&state::record::Kept>,
) -> anyhow::Result<()> {
    let mut record = ctx.state.record(&id::parse(id)?)?;
    if record
        .landing
        .as_ref()
        .is_some_and(|l| l.target == target_ref)
    {
        record.landing = None;
        ctx.state.write_record(&record)?;
    }
    if let Some(kept) = written_back {
        half_landing::drop_kept_ref(ctx, id, &kept.commit)?;
    }
    Ok(())
}

/// Drops this session's own merge or squash stopped in `wt` with nothing of anyone else's
/// staged or unstaged there (a merge killed in its commit, before it or after it moved the
/// branch): `merge --abort` / `reset --merge` to HEAD, which leaves the files as they are.
fn drop_own_stopped(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
    target_ref: &str,
    tip: ObjectId,
) -> anyhow::Result<()> {
    let Some(found) = ctx.git.unfinished_merge(wt)? else {
        return Ok(());
    };
    let tip = tip.to_string();
    let begun = record
        .landing
        .as_ref()
        .is_some_and(|l| l.target == target_ref && l.tip == tip);
    let undo: Option<&[&str]> = match &found {
        Unfinished::Merge {
            head,
            conflicts,
            only_the_merge: true,
        } if *head == tip && conflicts.is_empty() => Some(&["merge", "--abort"][..]),
        Unfinished::Squash {
            head,
            only_the_squash: true,
            ..
        } if *head == tip => Some(&["reset", "-q", "--merge"][..]),
        // Killed while git wrote SQUASH_MSG: it names no commit, but the record says this
        // squash began here and the index is exactly it.
        Unfinished::Squash {
            head, conflicts, ..
        } if head.is_empty()
            && conflicts.is_empty()
            && begun
            && ctx.git.index_is_merge_of(wt, &tip)? =>
        {
            Some(&["reset", "-q", "--merge"][..])
        }
        _ => None,
    }
    // With changes of the person's unstaged there (which `--merge` and `--abort` refuse to
    // touch), only the index goes back: every file stays as it is, and the landing's files
    // among them are then a half landing like any other.
    .and_then(|undo| {
        if ctx.git.run(wt, &["diff", "--quiet"]).is_ok() {
            Some(undo)
        } else {
            // Only for a landing git-codex began (the record says so): a merge made by hand
            // is the person's, and the refusal names it.
            begun.then_some(&["reset", "-q"][..])
        }
    });
    if let Some(undo) = undo {
        ctx.git.run(wt, undo)?;
        output::note(&format!(
            "{wt} held this session's {} stopped before its commit ended (an earlier merge killed halfway): dropped with 'git {}'",
            if matches!(found, Unfinished::Merge { .. }) {
                "merge"
            } else {
                "squash"
            },
            undo.join(" ")
        ));
    }
    Ok(())
}

/// Removes the replay worktrees of killed `merge --strategy rebase` runs; the caller holds
/// the state lock (so no merge is running). Returns them.
pub fn clear_replays(ctx: &Ctx) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let scratch = ctx.state.root.join("scratch");
    let cleared = ctx
        .git
        .clear_replays(&ctx.paths.main_root, &ctx.paths.common_dir, &scratch)?;
    for path in &cleared {
        output::note(&format!(
            "Removed the replay worktree {path} that a killed merge left"
        ));
    }
    Ok(cleared)
}

/// What a merge stopped in `wt` is, and the one command that clears it without losing
/// anything of the person's. `session_of` names the session whose tip a commit is.
/// For a session's own stopped merge: the git-codex command that clears it and lands.
fn ours_too(session: Option<String>) -> String {
    session.map_or_else(String::new, |id| {
        format!(
            "; or run 'git codex session merge {id}', which does both when nothing else is changed there"
        )
    })
}

pub fn describe_unfinished(
    wt: &Utf8Path,
    found: &Unfinished,
    session_of: impl Fn(&str) -> Option<String>,
) -> (String, String) {
    let short = |head: &str| head.chars().take(12).collect::<String>();
    let whose = |head: &str| match session_of(head) {
        Some(id) => format!(
            "session '{id}' ({}), left by an interrupted 'git codex session merge'",
            short(head)
        ),
        None if head.is_empty() => "a commit it does not name".to_string(),
        None => format!("commit {}", short(head)),
    };
    let again = "then run the merge again";
    match found {
        Unfinished::Merge {
            head, conflicts, ..
        } if !conflicts.is_empty() => (
            format!(
                "{wt} is in the middle of a merge of {} with conflicts in {}",
                whose(head),
                conflicts.join(", ")
            ),
            format!(
                "run 'git merge --abort' in {wt} to drop the merge (your unstaged changes stay; anything you staged since goes with it), {again}"
            ),
        ),
        Unfinished::Merge {
            head,
            only_the_merge: true,
            ..
        } => (
            format!(
                "{wt} is in the middle of a merge of {}: MERGE_HEAD is set and only the merge's changes are staged",
                whose(head)
            ),
            format!(
                "run 'git merge --abort' in {wt} (it drops only the merge), {again}{}",
                ours_too(session_of(head))
            ),
        ),
        Unfinished::Merge { head, .. } => (
            format!(
                "{wt} is in the middle of a merge of {}, and changes that are not the merge's are staged",
                whose(head)
            ),
            format!(
                "save what you staged ('git diff --cached > mine.patch' in {wt}), then run 'git merge --abort' there, {again}"
            ),
        ),
        Unfinished::Squash {
            head, conflicts, ..
        } if !conflicts.is_empty() => (
            format!(
                "{wt} holds a squash of {} with conflicts in {}",
                whose(head),
                conflicts.join(", ")
            ),
            format!(
                "run 'git reset --merge' in {wt} to drop the squash (your unstaged changes stay; anything you staged since goes with it), {again}"
            ),
        ),
        Unfinished::Squash {
            head,
            only_the_squash: true,
            ..
        } => (
            format!(
                "{wt} holds the staged, uncommitted squash of {} (SQUASH_MSG)",
                whose(head)
            ),
            format!(
                "run 'git reset --merge' in {wt} (it unstages only the squash; your unstaged changes stay), {again}{}",
                ours_too(session_of(head))
            ),
        ),
        Unfinished::Squash { head, .. } => (
            format!(
                "{wt} holds a staged, uncommitted squash of {} (SQUASH_MSG) mixed with other staged changes",
                whose(head)
            ),
            format!(
                "save what you staged ('git diff --cached > mine.patch' in {wt}), then run 'git reset --merge' there, {again}"
            ),
        ),
    }
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
            "session '{id}' is not approved at {}: its approval is for {}, another commit",
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
