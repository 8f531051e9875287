//! Keeping the ledgers the gate reads (`git::ledger`): whenever git-codex sees a session's
//! branch — a ref update its hook is shown, `session add`, a run's end, review, merge, remove,
//! prune — what the branch holds, and every value its reflogs remember, is recorded for good.

use camino::Utf8Path;
use gix::ObjectId;

use super::base_ref;
use crate::context::Ctx;
use crate::git::hunks::{DiffOf, Hunk};
use crate::git::ledger;
use crate::git::worktrees::admin_dir_of;
use crate::state::{SessionBrief, SessionRecord};

/// Records what session `record` holds now: its branch's tip, every value the branch's reflog
/// and its worktree's HEAD reflog remember (a commit reset away, a detached commit), and a
/// detached HEAD.
pub fn observe(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<()> {
    let mut tips = Vec::new();
    let branch_ref = format!("refs/heads/{}", record.branch);
    if let Some(tip) = ctx.reader.ref_target(&branch_ref)? {
        tips.push(tip);
    }
    tips.extend(ledger::commit_ids_in(
        &ctx.paths.common_dir.join("logs").join(&branch_ref),
    ));
    if let Some(admin) = admin_dir_of(&record.worktree, &ctx.paths.common_dir) {
        let mut claimed = ledger::commit_ids_in(&admin.join("logs/HEAD"));
        claimed.extend(detached_head(&admin));
        tips.extend(unowned(ctx, &branch_ref, claimed)?);
    }
    let base = ObjectId::from_hex(record.base_commit.as_bytes()).ok();
    let tips = not_upstream(ctx, tips)?;
    ledger::record(&ctx.reader.repo, &record.id, base, &tips)
}

/// Commits named in the worktree's admin dir (its HEAD and HEAD reflog), which a confined
/// agent writes: only those no other ref holds can be the session's own (a commit it made
/// and reset away). A commit of the person's that the agent merely names there (or checked
/// out) stays the person's, so the agent cannot put the person's merges behind the gate.
fn unowned(
    ctx: &Ctx,
    branch_ref: &str,
    mut claimed: Vec<ObjectId>,
) -> anyhow::Result<Vec<ObjectId>> {
    if claimed.is_empty() {
        return Ok(claimed);
    }
    claimed.sort();
    claimed.dedup();
    // Any ref of the person's: a local or remote-tracking branch, a tag, the stash.
    let others = ctx.reader.ref_tips_except(&[branch_ref.to_string()])?;
    let mut out = Vec::new();
    for commit in claimed {
        if ctx.reader.repo.find_commit(commit).is_ok()
            && !ctx.reader.commits_between(commit, &others)?.is_empty()
        {
            out.push(commit);
        }
    }
    Ok(out)
}

/// `tips` less those a protected branch already holds: a session rebased onto main, or
/// fast-forwarded to it, passes through main's commits, which it did not make.
fn not_upstream(ctx: &Ctx, mut tips: Vec<ObjectId>) -> anyhow::Result<Vec<ObjectId>> {
    let protected = super::protected_tips(ctx)?;
    if protected.is_empty() {
        return Ok(tips);
    }
    tips.sort();
    tips.dedup();
    let mut out = Vec::new();
    for tip in tips {
        if !ctx.reader.commits_between(tip, &protected)?.is_empty() {
            out.push(tip);
        }
    }
    Ok(out)
}

/// Records `tips` as session `id`'s (a branch it is about to leave), less what a protected
/// branch holds.
pub fn record_tips(ctx: &Ctx, id: &str, tips: &[ObjectId]) -> anyhow::Result<()> {
    let tips = not_upstream(ctx, tips.to_vec())?;
    if tips.is_empty() {
        return Ok(());
    }
    let base = ctx.reader.ref_target(&base_ref(id))?;
    ledger::record(&ctx.reader.repo, id, base, &tips)
}

/// [`observe`] for session `id` when it has a readable record; else its branch by the naming
/// convention, with the base its base ref names.
pub fn observe_id(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    if let Ok(parsed) = crate::state::id::parse(id)
        && let Ok(record) = ctx.state.record(&parsed)
    {
        return observe(ctx, &record);
    }
    let branch_ref = format!("refs/heads/{}{id}", ctx.config.branch_prefix);
    let mut tips: Vec<ObjectId> = ctx.reader.ref_target(&branch_ref)?.into_iter().collect();
    tips.extend(ledger::commit_ids_in(
        &ctx.paths.common_dir.join("logs").join(&branch_ref),
    ));
    if tips.is_empty() {
        return Ok(());
    }
    let base = ctx.reader.ref_target(&base_ref(id))?;
    let tips = not_upstream(ctx, tips)?;
    ledger::record(&ctx.reader.repo, id, base, &tips)
}

/// The commit a worktree's HEAD names when it is detached.
fn detached_head(admin: &Utf8Path) -> Option<ObjectId> {
    ledger::commit_ids_in(&admin.join("HEAD")).first().copied()
}

/// One line of a reference transaction: `(old, new, ref)`, `None` for a missing side.
pub type Update = (Option<ObjectId>, Option<ObjectId>, String);

/// Records the commits that ref `updates` (a transaction the hook was shown) give or take
/// from sessions: updates of a session's branch (by its record, or under the branch prefix),
/// and of HEAD, the stash or any branch in a session's worktree. Both sides count: a deleted or reset
/// branch's old tip stays the session's.
/// Returns whether it wrote a ledger (or tried to).
pub fn record_updates(
    ctx: &Ctx,
    records: &[SessionBrief],
    updates: &[Update],
) -> anyhow::Result<bool> {
    let here = ctx.reader.current_git_dir();
    let here = here.canonicalize_utf8().unwrap_or(here);
    // Only a linked worktree's git dir is a session's admin dir: from the main worktree no
    // record is looked at (each would cost a path resolution, on every commit on main).
    let in_worktree = if here.starts_with(ctx.paths.common_dir.join("worktrees")) {
        let is_here = |r: &&SessionBrief| {
            admin_dir_of(&r.worktree, &ctx.paths.common_dir).is_some_and(|admin| admin == here)
        };
        // The record whose worktree the admin dir names back is asked first (one file read,
        // not one per record); any other is found as before.
        let named = std::fs::read_to_string(here.join("gitdir"))
            .ok()
            .and_then(|text| Some(Utf8Path::new(text.trim()).parent()?.to_owned()));
        named
            .and_then(|worktree| {
                records
                    .iter()
                    .filter(|r| r.worktree == worktree)
                    .find(is_here)
            })
            .or_else(|| records.iter().find(is_here))
    } else {
        None
    };
    let prefix = format!("refs/heads/{}", ctx.config.branch_prefix);
    let mut found: Vec<(String, Option<ObjectId>, Vec<ObjectId>)> = Vec::new();
    for (old, new, name) in updates {
        let by_branch = records
            .iter()
            .find(|r| name.strip_prefix("refs/heads/") == Some(r.branch.as_str()));
        let mut tips: Vec<ObjectId> = [*old, *new].into_iter().flatten().collect();
        let (id, base) = if let Some(record) = by_branch {
            (record.id.clone(), record_base(record))
        } else if let Some(id) = name.strip_prefix(&prefix) {
            (id.to_string(), ctx.reader.ref_target(&base_ref(id))?)
        } else if let Some(record) = in_worktree
            && (matches!(name.as_str(), "HEAD" | "refs/stash") || name.starts_with("refs/heads/"))
        {
            // HEAD passes through what a rebase or checkout starts from (a fetched upstream
            // tip): only what no other ref holds is the session's, as in its admin dir.
            tips = unowned(ctx, &format!("refs/heads/{}", record.branch), tips)?;
            (record.id.clone(), record_base(record))
        } else {
            continue;
        };
        match found.iter_mut().find(|(known, _, _)| *known == id) {
            Some((_, _, all)) => all.extend(tips),
            None => found.push((id, base, tips)),
        }
    }
    let mut wrote = false;
    for (id, base, tips) in found {
        let tips = not_upstream(ctx, tips)?;
        // Nothing of the session's (the deletion of a landed branch): no ledger is started
        // again for it after it was forgotten.
        if !tips.is_empty() {
            wrote = true;
            ledger::record(&ctx.reader.repo, &id, base, &tips)?;
        }
    }
    Ok(wrote)
}

fn record_base(record: &SessionBrief) -> Option<ObjectId> {
    ObjectId::from_hex(record.base_commit.as_bytes()).ok()
}

/// The commits of session `id`'s ledger that no protected branch holds yet, with the ledger;
/// `None` when it has no ledger.
pub fn unlanded(ctx: &Ctx, id: &str) -> anyhow::Result<Option<(ledger::Ledger, usize)>> {
    let Some(ledger) = ledger::of(&ctx.reader.repo, id)? else {
        return Ok(None);
    };
    let protected = super::protected_tips(ctx)?;
    let mut hidden = protected.clone();
    hidden.extend(ledger.base);
    let mut commits = ctx.reader.commits_from(&[ledger.head], &hidden)?;
    commits.retain(|c| !ledger.chain.contains(c));
    if let Some(base) = ledger.base {
        commits = not_landed_as_changes(ctx, base, &protected, commits)?;
    }
    Ok(Some((ledger, commits.len())))
}

/// The most protected-branch commits compared with a session's left-behind commits; past it,
/// they count as not landed (the ledger stays).
const MAX_COMPARED: usize = 2000;

/// `commits` less those whose change is on a protected branch, landed by another commit: a
/// session's commits that a rebase left behind, once the rebased ones (or a squash or rebase
/// of them) landed. A commit counts as landed when it changes something and every hunk of
/// its change stands whole in the change of a protected-branch commit made since `base`
/// (against its first parent). A merge, an empty commit or anything past the bound stays.
fn not_landed_as_changes(
    ctx: &Ctx,
    base: ObjectId,
    protected: &[ObjectId],
    commits: Vec<ObjectId>,
) -> anyhow::Result<Vec<ObjectId>> {
    if commits.is_empty() || protected.is_empty() {
        return Ok(commits);
    }
    let landed = ctx.reader.commits_from(protected, &[base])?;
    if landed.len() > MAX_COMPARED {
        return Ok(commits);
    }
    // Each landed commit against its first parent, then each session commit with one parent
    // against it (`Some(index)` into `commits`).
    let mut items = Vec::new();
    let mut owners = Vec::new();
    for commit in &landed {
        if let Some(parent) = ctx.reader.first_parent(*commit) {
            items.push(DiffOf::Pair {
                from: parent,
                to: *commit,
            });
            owners.push(None);
        }
    }
    for (index, commit) in commits.iter().enumerate() {
        let parents = super::History::parents(&ctx.reader, *commit)?;
        if let [parent] = parents[..] {
            items.push(DiffOf::Pair {
                from: parent,
                to: *commit,
            });
            owners.push(Some(index));
        }
    }
    let diffs = ctx.git.hunks(&ctx.paths.main_root, &items)?;
    let mut landed_hunks: Vec<&Hunk> = Vec::new();
    let mut own: Vec<Option<&Vec<Hunk>>> = vec![None; commits.len()];
    for (owner, hunks) in owners.iter().zip(&diffs) {
        match owner {
            None => landed_hunks.extend(hunks),
            Some(index) => own[*index] = Some(hunks),
        }
    }
    let mut out = Vec::new();
    for (commit, hunks) in commits.into_iter().zip(own) {
        let carried = hunks.is_some_and(|hunks| {
            !hunks.is_empty()
                && hunks
                    .iter()
                    .all(|h| landed_hunks.iter().any(|l| h.within(l)))
        });
        if !carried {
            out.push(commit);
        }
    }
    Ok(out)
}

/// Where a session's ledger stands, for forgetting it.
enum Standing {
    /// There is none.
    None,
    /// This many of its commits are on no protected branch.
    Unlanded(usize),
    /// Every commit landed, but this many (or copies of their change) without an approval
    /// that contains them: past the gate.
    PastGate(usize),
    /// Every commit landed through the gate: the ledger whose head this is may go.
    Landed(ObjectId),
}

fn standing(ctx: &Ctx, id: &str) -> anyhow::Result<Standing> {
    let Some((ledger, count)) = unlanded(ctx, id)? else {
        return Ok(Standing::None);
    };
    if count > 0 {
        return Ok(Standing::Unlanded(count));
    }
    match past_gate(ctx, id)? {
        0 => Ok(Standing::Landed(ledger.head)),
        count => Ok(Standing::PastGate(count)),
    }
}

/// How many commits the protected branches hold of session `id`, as themselves or as copies
/// of its change, that its approval does not contain: what `verify` reports for it. Asked
/// with the gate on unless the config files turn it off: forgetting outlives the command, so
/// a one-command override in the environment (`GIT_CODEX_REVIEW_REQUIRE_APPROVAL=false`, a
/// documented bypass) does not launder what it let through.
fn past_gate(ctx: &Ctx, id: &str) -> anyhow::Result<usize> {
    let files = crate::config::Settings::load_files(&ctx.state.config_file())?.config();
    if !files.review.require_approval {
        return Ok(0);
    }
    let Some(line) = super::sessions(ctx, &ctx.state.briefs()?)?
        .into_iter()
        .find(|l| l.id == id)
    else {
        return Ok(0);
    };
    let line = super::complete(&ctx.reader, &line)?;
    // Only what is past the session's base can be its: the landing is counted from there.
    let old = line.base;
    let protected = super::protected_tips(ctx)?;
    let gate = super::Gate::new(
        &ctx.reader,
        &ctx.git,
        &ctx.paths.main_root,
        true,
        &ctx.config.review.protected,
        vec![line],
        ctx.signers(),
    )
    .with_landed(protected.clone());
    let mut commits = std::collections::HashSet::new();
    for tip in protected {
        commits.extend(gate.check_landing(old, tip)?.into_iter().map(|v| v.commit));
    }
    Ok(commits.len())
}

/// A session's ledger stays after the session, so its commits stay session commits, until
/// every one of them is on a protected branch through the gate (an approval contains it);
/// then it goes. A commit landed past the gate (a branch copy, a bypass) keeps it: `verify`
/// and `pre-push` go on refusing it.
pub fn forget_if_landed(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    if let Standing::Landed(head) = standing(ctx, id)? {
        ledger::delete(&ctx.reader.repo, id, head)?;
    }
    Ok(())
}

/// Refuses (exit 3) a new session under an id whose earlier session left commits that have
/// not landed, or landed past the gate: the new one's review and approval would cover them
/// unseen. A ledger whose commits all landed through the gate is forgotten, and the id is
/// free again.
pub fn refuse_reused_id(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    for (known, _) in ledger::all(&ctx.reader.repo)? {
        if !known.eq_ignore_ascii_case(id) {
            continue;
        }
        let why = match standing(ctx, &known)? {
            Standing::Landed(head) => {
                ledger::delete(&ctx.reader.repo, &known, head)?;
                continue;
            }
            Standing::None => continue,
            Standing::Unlanded(count) => format!("{count} commit(s) have not landed"),
            Standing::PastGate(count) => format!(
                "{count} commit(s) are on a protected branch without an approval ('git codex verify' lists them)"
            ),
        };
        return Err(crate::error::UserError::refused(format!(
            "session id '{id}' was used by an earlier session '{known}' whose {why}"
        ))
        .hint(format!(
            "bring it back with 'git codex session restore {known}' (and review it), or pick another id"
        ))
        .into());
    }
    Ok(())
}
