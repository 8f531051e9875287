//! The one rule of the review gate (SPEC §6): an update of a protected ref may not make a
//! session's commit reachable unless that session's approval contains it — whether the
//! commit lands as itself or as a copy (cherry-pick, rebase, squash: same patch-id). Every
//! hook, `verify` and `session merge` ask this module; there is no second copy of the rule.
//! With `review.require_signed` an approval counts only when its signature verifies; that is
//! checked here too, and only for a session whose commits a landing actually carries.

mod patches;
pub mod server;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use camino::Utf8Path;
use gix::ObjectId;
use serde::Serialize;

use crate::config::ProtectedPatterns;
use crate::context::Ctx;
use crate::git::Git;
use crate::git::read::Reader;
use crate::review::approval::{self, Signers, approval_ref};

/// `refs/codex/bases/<id>`: where a session started, kept as long as its branch, so the gate
/// knows a session's own commits even after its record is gone (and on a server).
pub fn base_ref(id: &str) -> String {
    format!("refs/codex/bases/{id}")
}

/// How the gate walks history: gix in a repository, the git CLI where gix cannot see the
/// objects (a server's quarantined push).
pub trait History {
    /// The commits reachable from `tip` but from none of `hidden`.
    fn commits_between(&self, tip: ObjectId, hidden: &[ObjectId]) -> anyhow::Result<Vec<ObjectId>>;
    /// A tag object as stored (an approval, whose signature is checked).
    fn raw_tag(&self, id: ObjectId) -> anyhow::Result<Vec<u8>>;
}

impl History for Reader {
    fn commits_between(&self, tip: ObjectId, hidden: &[ObjectId]) -> anyhow::Result<Vec<ObjectId>> {
        Reader::commits_between(self, tip, hidden)
    }

    fn raw_tag(&self, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        self.raw_object(id)
    }
}

/// A session as the gate sees it.
#[derive(Debug, Clone)]
pub struct SessionLine {
    pub id: String,
    /// The session's tip as it is (on a server: after the push, or before it when the push
    /// deletes the branch).
    pub tip: ObjectId,
    /// More tips whose commits are the session's too (minus `base`): on a server the tip
    /// before the push; any earlier tip a durable record (ledger) knows.
    pub earlier_tips: Vec<ObjectId>,
    pub base: Option<ObjectId>,
    pub approval: Option<Approval>,
}

/// A session's approval: the tag at `refs/codex/approvals/<id>` and the commit it names.
#[derive(Debug, Clone, Copy)]
pub struct Approval {
    pub tag: ObjectId,
    pub commit: ObjectId,
}

/// A commit that may not land, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub session: String,
    pub commit: String,
    /// The commit the session's approval is for, when there is one (then it is stale, or
    /// does not count: see `unverified`).
    pub approved: Option<String>,
    /// Why the session's approval does not count (signatures are required, and its does not
    /// verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<String>,
    /// The session commit that `commit` is a copy of (same patch-id), if it is one.
    pub copy_of: Option<String>,
}

impl Violation {
    pub fn reason(&self) -> String {
        let why = match (&self.approved, &self.unverified) {
            (_, Some(why)) => format!("its approval does not count: {why}"),
            (None, None) => "the session has no approval".to_string(),
            (Some(approved), None) => {
                format!("the approval is for another commit ({})", short(approved))
            }
        };
        match &self.copy_of {
            Some(original) => format!(
                "it is a copy of session commit {}, and {why}",
                short(original)
            ),
            None => why,
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

pub struct Gate<'a> {
    history: &'a dyn History,
    /// Where patch-ids are computed (the git CLI, in this repository).
    git: &'a Git,
    cwd: &'a Utf8Path,
    enabled: bool,
    protected: ProtectedPatterns,
    sessions: Vec<SessionLine>,
    signers: Option<Signers>,
    /// Per session id: `None` when its approval counts, else why not.
    verdicts: RefCell<HashMap<String, Option<String>>>,
}

impl<'a> Gate<'a> {
    pub fn new(
        history: &'a dyn History,
        git: &'a Git,
        cwd: &'a Utf8Path,
        enabled: bool,
        protected: &ProtectedPatterns,
        sessions: Vec<SessionLine>,
        signers: Option<Signers>,
    ) -> Gate<'a> {
        Gate {
            history,
            git,
            cwd,
            enabled,
            protected: protected.clone(),
            sessions,
            signers,
            verdicts: RefCell::default(),
        }
    }

    /// The gate of a repository with a worktree: every session (live records and leftover
    /// session branches) and their approvals.
    pub fn load(ctx: &'a Ctx) -> anyhow::Result<Gate<'a>> {
        let (records, _) = ctx.state.records()?;
        let prefix = format!("refs/heads/{}", ctx.config.branch_prefix);
        let mut sessions = Vec::new();
        for (name, tip) in ctx.reader.branches_with_prefix(&prefix)? {
            let short = name.trim_start_matches("refs/heads/");
            let record = records.iter().find(|r| r.branch == short);
            let id = match record {
                Some(r) => r.id.clone(),
                None => short
                    .trim_start_matches(&ctx.config.branch_prefix)
                    .to_string(),
            };
            let base = match record {
                Some(r) => ObjectId::from_hex(r.base_commit.as_bytes()).ok(),
                None => ctx.reader.ref_target(&base_ref(&id))?,
            };
            let approval = approval::read(&ctx.reader, &approval_ref(&id))?.and_then(|v| {
                Some(Approval {
                    tag: ObjectId::from_hex(v.tag.as_bytes()).ok()?,
                    commit: v.commit_id()?,
                })
            });
            sessions.push(SessionLine {
                id,
                tip,
                earlier_tips: Vec::new(),
                base,
                approval,
            });
        }
        let review = &ctx.config.review;
        Ok(Gate::new(
            &ctx.reader,
            &ctx.git,
            &ctx.paths.main_root,
            review.require_approval,
            &review.protected,
            sessions,
            ctx.signers(),
        ))
    }

    /// Whether `refname` (a full ref name) is a protected branch.
    pub fn protects(&self, refname: &str) -> bool {
        let Some(branch) = refname.strip_prefix("refs/heads/") else {
            return false;
        };
        self.protected.matches(branch)
    }

    /// The commits that moving `refname` from `old` (`None`: it is created) to `new` would
    /// land without an approval containing them. Empty means the update may go ahead.
    pub fn check(
        &self,
        refname: &str,
        old: Option<ObjectId>,
        new: ObjectId,
    ) -> anyhow::Result<Vec<Violation>> {
        if !self.protects(refname) {
            return Ok(Vec::new());
        }
        self.check_landing(old, new)
    }

    /// As [`Gate::check`], for a range landing on a protected ref that is not named.
    pub fn check_landing(
        &self,
        old: Option<ObjectId>,
        new: ObjectId,
    ) -> anyhow::Result<Vec<Violation>> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let old_list: Vec<ObjectId> = old.into_iter().collect();
        let landing: HashSet<ObjectId> = self
            .history
            .commits_between(new, &old_list)?
            .into_iter()
            .collect();
        if landing.is_empty() {
            return Ok(Vec::new());
        }
        let mut violations = Vec::new();
        let mut session_commits = HashSet::new();
        // Session commits that do not land themselves, whose copies might.
        let mut elsewhere = Vec::new();
        for session in &self.sessions {
            let mut hidden = old_list.clone();
            match session.base {
                Some(base) => hidden.push(base),
                // Without a base and without an old value nothing tells its commits apart.
                None if old.is_none() => continue,
                None => {}
            }
            let own = self.own_commits(session, &hidden)?;
            session_commits.extend(own.iter().copied());
            let (landed, rest): (Vec<ObjectId>, Vec<ObjectId>) =
                own.into_iter().partition(|c| landing.contains(c));
            if !landed.is_empty() {
                let approved = self.approved(session, &hidden)?;
                for commit in landed.into_iter().filter(|c| !approved.contains(c)) {
                    violations.push(self.violation(session, commit, None));
                }
            }
            elsewhere.extend(rest.into_iter().map(|c| (session, c, hidden.clone())));
        }
        let foreign: Vec<ObjectId> = landing
            .into_iter()
            .filter(|c| !session_commits.contains(c))
            .collect();
        // A copy matters only when its original is not approved: approvals (and their
        // signatures) are looked at only for sessions a copy was found of.
        for (session, copy, original, hidden) in patches::copies(self, &foreign, &elsewhere)? {
            if !self.approved(session, hidden)?.contains(&original) {
                violations.push(self.violation(session, copy, Some(original)));
            }
        }
        Ok(violations)
    }

    /// The commits of `session` not in `hidden`: what any of its tips reaches.
    fn own_commits(
        &self,
        session: &SessionLine,
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<ObjectId>> {
        let mut own = self.history.commits_between(session.tip, hidden)?;
        for &tip in session.earlier_tips.iter().filter(|&&t| t != session.tip) {
            let known: HashSet<ObjectId> = own.iter().copied().collect();
            let more = self.history.commits_between(tip, hidden)?;
            own.extend(more.into_iter().filter(|c| !known.contains(c)));
        }
        Ok(own)
    }

    /// The commits of `session` (those not in `hidden`) that its approval contains: none when
    /// it has no approval, or one that does not count.
    fn approved(
        &self,
        session: &SessionLine,
        hidden: &[ObjectId],
    ) -> anyhow::Result<HashSet<ObjectId>> {
        match session.approval {
            Some(approval) if self.unverified(session)?.is_none() => Ok(self
                .history
                .commits_between(approval.commit, hidden)?
                .into_iter()
                .collect()),
            _ => Ok(HashSet::new()),
        }
    }

    /// Why the approval of `session` does not count, checked once per session: `None` when it
    /// counts (or there is none, or no signature is required).
    fn unverified(&self, session: &SessionLine) -> anyhow::Result<Option<String>> {
        let (Some(signers), Some(approval)) = (&self.signers, session.approval) else {
            return Ok(None);
        };
        if let Some(known) = self.verdicts.borrow().get(&session.id) {
            return Ok(known.clone());
        }
        let raw = self.history.raw_tag(approval.tag)?;
        let why = signers.verify(&raw).err();
        self.verdicts
            .borrow_mut()
            .insert(session.id.clone(), why.clone());
        Ok(why)
    }

    fn violation(
        &self,
        session: &SessionLine,
        commit: ObjectId,
        copy_of: Option<ObjectId>,
    ) -> Violation {
        Violation {
            session: session.id.clone(),
            commit: commit.to_string(),
            approved: session.approval.map(|a| a.commit.to_string()),
            unverified: self.verdicts.borrow().get(&session.id).cloned().flatten(),
            copy_of: copy_of.map(|c| c.to_string()),
        }
    }
}
