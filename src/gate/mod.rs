//! The one rule of the review gate (SPEC §6): an update of a protected ref may not make a
//! session's commit reachable unless that session's approval contains it. Every hook and
//! `verify` ask this module; there is no second copy of the rule.

use std::collections::HashSet;

use gix::ObjectId;
use serde::Serialize;

use crate::context::Ctx;
use crate::git::read::Reader;
use crate::review::approval::{self, approval_ref};

/// `refs/codex/bases/<id>`: where a session started, kept as long as its branch, so the gate
/// knows a session's own commits even after its record is gone.
pub fn base_ref(id: &str) -> String {
    format!("refs/codex/bases/{id}")
}

/// A session as the gate sees it.
#[derive(Debug, Clone)]
struct SessionLine {
    id: String,
    tip: ObjectId,
    base: Option<ObjectId>,
    approved: Option<ObjectId>,
}

/// A commit that may not land, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub session: String,
    pub commit: String,
    /// The commit the session's approval is for, when there is one (then it is stale).
    pub approved: Option<String>,
}

impl Violation {
    pub fn reason(&self) -> String {
        match &self.approved {
            None => "the session has no approval".to_string(),
            Some(approved) => format!(
                "the approval is for another commit ({})",
                &approved[..approved.len().min(12)]
            ),
        }
    }
}

pub struct Gate<'a> {
    reader: &'a Reader,
    enabled: bool,
    protected: Vec<glob::Pattern>,
    sessions: Vec<SessionLine>,
}

impl<'a> Gate<'a> {
    /// Reads the protected patterns, every session (live records and leftover session
    /// branches) and their approvals.
    pub fn load(ctx: &'a Ctx) -> anyhow::Result<Gate<'a>> {
        let review = &ctx.config.review;
        let protected = review
            .protected
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
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
            let approved = approval::read(&ctx.reader, &approval_ref(&id))?
                .and_then(|v| ObjectId::from_hex(v.commit.as_bytes()).ok());
            sessions.push(SessionLine {
                id,
                tip,
                base,
                approved,
            });
        }
        Ok(Gate {
            reader: &ctx.reader,
            enabled: review.require_approval,
            protected,
            sessions,
        })
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
        let mut landing: Option<HashSet<ObjectId>> = None;
        let mut violations = Vec::new();
        for session in &self.sessions {
            let mut hidden: Vec<ObjectId> = old.into_iter().collect();
            match session.base {
                Some(base) => hidden.push(base),
                // Without a base and without an old value nothing tells its commits apart.
                None if old.is_none() => continue,
                None => {}
            }
            let own = self.reader.commits_between(session.tip, &hidden)?;
            if own.is_empty() {
                continue;
            }
            let landing = match &mut landing {
                Some(set) => set,
                None => landing.insert(
                    self.reader
                        .commits_between(new, &old.into_iter().collect::<Vec<_>>())?
                        .into_iter()
                        .collect(),
                ),
            };
            let approved: HashSet<ObjectId> = match session.approved {
                Some(approved) => self
                    .reader
                    .commits_between(approved, &hidden)?
                    .into_iter()
                    .collect(),
                None => HashSet::new(),
            };
            for commit in own {
                if landing.contains(&commit) && !approved.contains(&commit) {
                    violations.push(Violation {
                        session: session.id.clone(),
                        commit: commit.to_string(),
                        approved: session.approved.map(|a| a.to_string()),
                    });
                }
            }
        }
        Ok(violations)
    }
}
