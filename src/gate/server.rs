//! The gate where a push is received: no records and no worktree, and the pushed objects
//! sit in a quarantine that only git itself (through its environment) can read.

use std::collections::HashMap;

use camino::Utf8Path;
use gix::ObjectId;

use super::{Approval, History, SessionLine, base_ref};
use crate::git::Git;
use crate::git::ledger::{self, LEDGER_PREFIX, Ledger};
use crate::review::approval::approval_ref;

/// History through the git CLI, which sees the quarantined objects.
pub struct CliHistory<'a> {
    pub git: &'a Git,
    pub cwd: &'a Utf8Path,
}

impl History for CliHistory<'_> {
    fn commits_between(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<ObjectId>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<String> = vec!["rev-list".to_string()];
        args.extend(tips.iter().map(ObjectId::to_string));
        args.extend(hidden.iter().map(|h| format!("^{h}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.git.run(self.cwd, &args)?;
        Ok(out
            .lines()
            .filter_map(|l| ObjectId::from_hex(l.as_bytes()).ok())
            .collect())
    }

    fn parents(&self, id: ObjectId) -> anyhow::Result<Vec<ObjectId>> {
        let out = self.git.run(
            self.cwd,
            &["rev-list", "--parents", "-n", "1", &id.to_string()],
        )?;
        Ok(out
            .split_whitespace()
            .skip(1)
            .filter_map(|p| ObjectId::from_hex(p.as_bytes()).ok())
            .collect())
    }

    fn ledger(&self, head: ObjectId) -> anyhow::Result<Ledger> {
        ledger::read_with_git(self.git, self.cwd, head)
    }

    fn raw_tag(&self, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        // `run` drops the final newline; the tag ends with one.
        Ok((self
            .git
            .run(self.cwd, &["cat-file", "tag", &id.to_string()])?
            + "\n")
            .into_bytes())
    }
}

/// The sessions as they will be once the push is in: the server's session branches, bases
/// and approvals, changed by `updates` (`(new, ref)`; `None` deletes).
pub fn sessions_after_push(
    git: &Git,
    cwd: &Utf8Path,
    branch_prefix: &str,
    updates: &[(Option<ObjectId>, String)],
) -> anyhow::Result<Vec<SessionLine>> {
    let prefix = format!("refs/heads/{branch_prefix}");
    let listing = git.run(
        cwd,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            &prefix,
            "refs/codex/",
        ],
    )?;
    let mut refs: HashMap<String, ObjectId> = listing
        .lines()
        .filter_map(|line| {
            let (id, name) = line.split_once(' ')?;
            Some((name.to_string(), ObjectId::from_hex(id.as_bytes()).ok()?))
        })
        .collect();
    for (new, name) in updates {
        match new {
            Some(id) => refs.insert(name.clone(), *id),
            None => refs.remove(name),
        };
    }
    let branches: Vec<(&str, ObjectId)> = refs
        .iter()
        .filter_map(|(name, tip)| Some((name.strip_prefix(&prefix)?, *tip)))
        .collect();
    let tags: Vec<ObjectId> = refs
        .iter()
        .filter(|(name, _)| name.starts_with("refs/codex/approvals/"))
        .map(|(_, tag)| *tag)
        .collect();
    let approved = tags
        .iter()
        .copied()
        .zip(git.peel_to_commits(cwd, &tags)?)
        .collect::<HashMap<_, _>>();
    let mut sessions: HashMap<String, SessionLine> = HashMap::new();
    for (id, tip) in branches {
        let line = sessions
            .entry(id.to_string())
            .or_insert_with(|| SessionLine::new(id));
        line.add_tip(tip);
        line.branch_tip = Some(tip);
    }
    let history = CliHistory { git, cwd };
    for (name, head) in &refs {
        if let Some(id) = name.strip_prefix(LEDGER_PREFIX) {
            let ledger = history.ledger(*head)?;
            sessions
                .entry(id.to_string())
                .or_insert_with(|| SessionLine::new(id))
                .add_ledger(ledger);
        }
    }
    for line in sessions.values_mut() {
        if line.base.is_none() {
            line.base = refs.get(&base_ref(&line.id)).copied();
        }
        line.approval = refs.get(&approval_ref(&line.id)).and_then(|&tag| {
            Some(Approval {
                tag,
                commit: approved.get(&tag).copied().flatten()?,
            })
        });
    }
    Ok(sessions.into_values().collect())
}
