//! The one rule of the review gate (SPEC §6): an update of a protected ref may not make a
//! session's commit reachable unless that session's approval contains it — whether the
//! commit lands as itself or as a copy (cherry-pick, rebase, squash: same patch-id). Every
//! hook, `verify` and `session merge` ask this module; there is no second copy of the rule.

mod patches;
pub mod server;

use std::collections::HashSet;

use camino::Utf8Path;
use gix::ObjectId;
use serde::Serialize;

use crate::context::Ctx;
use crate::git::Git;
use crate::git::read::Reader;
use crate::review::approval;

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
}

impl History for Reader {
    fn commits_between(&self, tip: ObjectId, hidden: &[ObjectId]) -> anyhow::Result<Vec<ObjectId>> {
        Reader::commits_between(self, tip, hidden)
    }
}

/// A session as the gate sees it.
#[derive(Debug, Clone)]
pub struct SessionLine {
    pub id: String,
    pub tip: ObjectId,
    pub base: Option<ObjectId>,
    pub approved: Option<ObjectId>,
}

/// A commit that may not land, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub session: String,
    pub commit: String,
    /// The commit the session's approval is for, when there is one (then it is stale).
    pub approved: Option<String>,
    /// The session commit that `commit` is a copy of (same patch-id), if it is one.
    pub copy_of: Option<String>,
}

impl Violation {
    pub fn reason(&self) -> String {
        let why = match &self.approved {
            None => "the session has no approval".to_string(),
            Some(approved) => format!("the approval is for another commit ({})", short(approved)),
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
    protected: Vec<glob::Pattern>,
    sessions: Vec<SessionLine>,
}

impl<'a> Gate<'a> {
    pub fn new(
        history: &'a dyn History,
        git: &'a Git,
        cwd: &'a Utf8Path,
        enabled: bool,
        protected: &[String],
        sessions: Vec<SessionLine>,
    ) -> Gate<'a> {
        Gate {
            history,
            git,
            cwd,
            enabled,
            protected: protected
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
            sessions,
        }
    }

    /// The gate of a repository with a worktree: every session (live records and leftover
    /// session branches) and their approvals.
    pub fn load(ctx: &'a Ctx) -> anyhow::Result<Gate<'a>> {
        let (records, _) = ctx.state.records()?;
        let prefix = format!("refs/heads/{}", ctx.config.branch_prefix);
        let signers = ctx.signers();
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
            let approved = approval::accepted(&ctx.reader, &id, signers.as_ref())?;
            sessions.push(SessionLine {
                id,
                tip,
                base,
                approved,
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
        ))
    }

    /// Whether `refname` (a full ref name) is a protected branch.
    pub fn protects(&self, refname: &str) -> bool {
        let Some(branch) = refname.strip_prefix("refs/heads/") else {
            return false;
        };
        self.protected.iter().any(|p| p.matches(branch))
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
        let mut unapproved = Vec::new();
        for session in &self.sessions {
            let mut hidden = old_list.clone();
            match session.base {
                Some(base) => hidden.push(base),
                // Without a base and without an old value nothing tells its commits apart.
                None if old.is_none() => continue,
                None => {}
            }
            let own = self.history.commits_between(session.tip, &hidden)?;
            let approved: HashSet<ObjectId> = match session.approved {
                Some(approved) => self
                    .history
                    .commits_between(approved, &hidden)?
                    .into_iter()
                    .collect(),
                None => HashSet::new(),
            };
            for commit in &own {
                session_commits.insert(*commit);
                if approved.contains(commit) {
                    continue;
                }
                if landing.contains(commit) {
                    violations.push(self.violation(session, *commit, None));
                } else {
                    unapproved.push((session, *commit, hidden.clone()));
                }
            }
        }
        let foreign: Vec<ObjectId> = landing
            .into_iter()
            .filter(|c| !session_commits.contains(c))
            .collect();
        violations.extend(patches::copies(self, &foreign, &unapproved)?);
        Ok(violations)
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
            approved: session.approved.map(|a| a.to_string()),
            copy_of: copy_of.map(|c| c.to_string()),
        }
    }
}
