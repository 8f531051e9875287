//! A session as `list` and `show` report it: its record plus what git says now.

use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::git::read::{KnownHead, worktree_state_knowing};
use crate::parallel;
use crate::review::approval::{self, ApprovalState};
use crate::state::SessionRecord;
use crate::state::session_file_excluded;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Live, with nothing committed to review yet.
    Active,
    /// Its agent (`session run`) is alive.
    Running,
    Expired,
    /// The worktree dir is gone.
    Missing,
    /// The worktree is there, its branch is not (deleted by hand).
    BranchMissing,
    /// Commits await a reviewer.
    ReviewPending,
    /// The approval contains the branch tip.
    Approved,
    /// Approved once; the branch is at another commit since.
    StaleApproval,
    Rejected,
    /// Every commit of the session is on its base branch.
    Merged,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Running => "running",
            State::Expired => "expired",
            State::Missing => "missing",
            State::BranchMissing => "branch-missing",
            State::ReviewPending => "review-pending",
            State::Approved => "approved",
            State::StaleApproval => "stale-approval",
            State::Rejected => "rejected",
            State::Merged => "merged",
        }
    }

    /// Whether a person needs to look at it: the review queue of `list --pending`.
    pub fn is_pending(self) -> bool {
        matches!(self, State::ReviewPending | State::StaleApproval)
    }
}

#[derive(Debug, Clone)]
pub struct SessionView {
    pub record: SessionRecord,
    pub state: State,
    pub tip: Option<String>,
    /// Where the session's own commits start now (its base moves forward when the branch is
    /// rebased onto, or merges, a newer protected tip): `gate::base::current`.
    pub base: String,
    pub expires_at: Option<Timestamp>,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    pub dirty: Option<bool>,
    pub approval: Option<ApprovalState>,
    /// What could not be read (a deleted branch, an unreadable worktree).
    pub problems: Vec<String>,
}

impl SessionView {
    pub fn gather(ctx: &Ctx, record: SessionRecord, now: Timestamp) -> SessionView {
        let dirty = dirty_of(
            &record.worktree,
            known_head(
                ctx,
                &record.branch,
                session_file_excluded(&ctx.paths.common_dir),
            )
            .as_ref(),
            false,
        );
        SessionView::gather_with(ctx, record, now, dirty)
    }

    /// Many sessions at once: the worktrees' status (file-system work) is read in parallel;
    /// `session list`'s look, which writes a refreshed index back as `git status` does (see
    /// [`worktree_state_knowing`]).
    pub fn gather_all(ctx: &Ctx, records: Vec<SessionRecord>, now: Timestamp) -> Vec<SessionView> {
        // Each branch tip's tree is read here, once, through the shared object cache.
        let excluded = session_file_excluded(&ctx.paths.common_dir);
        let jobs: Vec<(Utf8PathBuf, Option<KnownHead>, bool)> = records
            .iter()
            .map(|r| {
                let known = known_head(ctx, &r.branch, excluded);
                (r.worktree.clone(), known, may_refresh(r))
            })
            .collect();
        let dirty = parallel::map(&jobs, |(path, known, refresh)| {
            dirty_of(path, known.as_ref(), *refresh)
        });
        records
            .into_iter()
            .zip(dirty)
            .map(|(record, dirty)| SessionView::gather_with(ctx, record, now, dirty))
            .collect()
    }

    /// `dirty`: the worktree's status, `None` when it is gone.
    fn gather_with(
        ctx: &Ctx,
        record: SessionRecord,
        now: Timestamp,
        dirty: Option<Result<bool, String>>,
    ) -> SessionView {
        let mut problems = Vec::new();
        let branch_ref = format!("refs/heads/{}", record.branch);
        let tip = match ctx.reader.ref_target(&branch_ref) {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                problems.push(format!(
                    "branch {} does not exist; 'git codex doctor' tells how to put it back at its last commit",
                    record.branch
                ));
                None
            }
            Err(err) => {
                problems.push(format!("cannot read branch {}: {err}", record.branch));
                None
            }
        };
        let expires_at = expiry(ctx, &record, tip);
        let (ahead, behind) = match tip.map(|tip| ahead_behind(ctx, &record, tip)) {
            Some(Ok((a, b))) => (Some(a), Some(b)),
            Some(Err(err)) => {
                problems.push(format!("cannot count commits against the base: {err}"));
                (None, None)
            }
            None => (None, None),
        };
        let exists = dirty.is_some();
        let dirty = match dirty {
            Some(Ok(dirty)) => Some(dirty),
            Some(Err(err)) => {
                problems.push(format!("cannot read the worktree's status: {err}"));
                None
            }
            None => None,
        };
        let signers = ctx.signers();
        let approval = tip.and_then(|tip| {
            match approval::state(&ctx.reader, &record.id, tip, signers.as_ref()) {
                Ok(state) => Some(state),
                Err(err) => {
                    problems.push(format!("cannot read the approval: {err}"));
                    None
                }
            }
        });
        let base = match tip.map(|tip| (tip, crate::gate::base::current(ctx, &record, tip))) {
            Some((tip, Ok(base))) => Some((tip, base)),
            Some((_, Err(err))) => {
                problems.push(format!(
                    "cannot tell where the session's commits start: {err}"
                ));
                None
            }
            None => None,
        };
        // Commits since it started, landed ones too: a session whose commits are all on its
        // base branch is merged, not idle.
        let own_commits = tip.and_then(|tip| {
            let started = gix::ObjectId::from_hex(record.base_commit.as_bytes()).ok()?;
            ctx.reader.count_exclusive(tip, &[started]).ok()
        });
        let state = if !exists {
            State::Missing
        } else if record.agent.as_ref().is_some_and(|a| a.is_alive()) {
            State::Running
        } else if tip.is_none() {
            State::BranchMissing
        } else if expires_at.is_some_and(|at| at <= now) {
            State::Expired
        } else {
            review_state(
                approval.as_ref(),
                own_commits.unwrap_or(0),
                ahead.unwrap_or(0),
            )
        };
        SessionView {
            state,
            tip: tip.map(|t| t.to_string()),
            base: base.map_or_else(|| record.base_commit.clone(), |(_, b)| b.to_string()),
            expires_at,
            ahead,
            behind,
            dirty,
            approval,
            problems,
            record,
        }
    }

    pub fn to_json(&self, now: Timestamp) -> Value {
        let r = &self.record;
        json!({
            "id": r.id,
            "branch": r.branch,
            "state": self.state.as_str(),
            "worktree": r.worktree,
            "base": r.base,
            "baseCommit": self.base,
            "baseRef": r.base_ref,
            "tip": self.tip,
            "created": r.created,
            "lastActivity": r.last_activity,
            "ageSeconds": seconds_between(r.created, now),
            "ttlSeconds": r.ttl_seconds,
            "expiresAt": self.expires_at,
            "expiresInSeconds": self.expires_at.map(|at| seconds_between(now, at)),
            "ahead": self.ahead,
            "behind": self.behind,
            "dirty": self.dirty,
            "approval": self.approval.as_ref().map(ApprovalState::to_json),
            "agent": r.agent,
            "lastRun": r.last_run,
            "port": r.port,
            "sandbox": r.sandbox,
            "problems": self.problems,
        })
    }
}

/// Whether a look at the session's worktree may write its refreshed index back (as `git
/// status` does): never while its agent runs, whose index it is.
fn may_refresh(record: &SessionRecord) -> bool {
    record.agent.as_ref().is_none_or(|agent| !agent.is_alive())
}

/// A worktree's dirty flag; `None` when the worktree is gone. With `refresh`, see
/// [`worktree_state_knowing`].
fn dirty_of(
    worktree: &Utf8Path,
    known: Option<&KnownHead>,
    refresh: bool,
) -> Option<Result<bool, String>> {
    if !worktree.is_dir() {
        return None;
    }
    Some(
        worktree_state_knowing(worktree, known, refresh)
            .and_then(|state| state.dirty)
            .map_err(|err| format!("{err:#}")),
    )
}

/// A branch's tip and its tree.
pub(super) fn known_head(
    ctx: &Ctx,
    branch: &str,
    session_file_excluded: bool,
) -> Option<KnownHead> {
    let branch_ref = format!("refs/heads/{branch}");
    let tip = ctx.reader.ref_target(&branch_ref).ok()??;
    let tree = ctx
        .reader
        .repo
        .find_commit(tip)
        .ok()?
        .tree_id()
        .ok()?
        .detach();
    Some(KnownHead {
        branch_ref,
        tip,
        tree,
        hash: ctx.reader.repo.object_hash(),
        session_file_excluded,
    })
}

/// Where a live session stands in review.
fn review_state(approval: Option<&ApprovalState>, own_commits: usize, ahead: usize) -> State {
    match approval {
        Some(ApprovalState::Approved(_)) if own_commits > 0 && ahead == 0 => State::Merged,
        Some(ApprovalState::Approved(_)) => State::Approved,
        Some(ApprovalState::Stale(_)) => State::StaleApproval,
        Some(ApprovalState::Rejected(_)) => State::Rejected,
        _ if own_commits == 0 => State::Active,
        _ if ahead == 0 => State::Merged,
        _ => State::ReviewPending,
    }
}

/// When a session expires: `ttl` after its last activity, a commit on its branch included.
pub fn expiry(ctx: &Ctx, record: &SessionRecord, tip: Option<gix::ObjectId>) -> Option<Timestamp> {
    let tip_time = tip.and_then(|id| ctx.reader.commit_time(id).ok());
    record.expires_at(tip_time)
}

/// Whether a session has expired by `now` (reads its branch tip).
pub fn is_expired(ctx: &Ctx, record: &SessionRecord, now: Timestamp) -> bool {
    let tip = ctx
        .reader
        .ref_target(&format!("refs/heads/{}", record.branch))
        .ok()
        .flatten();
    expiry(ctx, record, tip).is_some_and(|at| at <= now)
}

/// Commits on the session branch not on its base, and on the base not on the branch.
/// The base is the base branch's current tip when the session was made from a branch.
fn ahead_behind(
    ctx: &Ctx,
    record: &SessionRecord,
    tip: gix::ObjectId,
) -> anyhow::Result<(usize, usize)> {
    let base = match &record.base_ref {
        Some(name) => ctx.reader.ref_target(name)?,
        None => None,
    };
    let base = match base {
        Some(id) => id,
        None => gix::ObjectId::from_hex(record.base_commit.as_bytes())?,
    };
    Ok((
        ctx.reader.count_exclusive(tip, &[base])?,
        ctx.reader.count_exclusive(base, &[tip])?,
    ))
}

pub fn seconds_between(from: Timestamp, to: Timestamp) -> i64 {
    to.as_second() - from.as_second()
}

/// `in 45m`, `45m ago`, `never`.
pub fn describe_expiry(expires_at: Option<Timestamp>, now: Timestamp) -> String {
    use crate::config::duration::format_seconds;
    match expires_at {
        None => "never".to_string(),
        Some(at) => {
            let secs = seconds_between(now, at);
            if secs > 0 {
                format!("in {}", format_seconds(secs.unsigned_abs()))
            } else {
                format!("{} ago", format_seconds(secs.unsigned_abs()))
            }
        }
    }
}
