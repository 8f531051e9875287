//! The gate where a push is received: no records and no worktree, and the pushed objects
//! sit in a quarantine that only git itself (through its environment) can read.

use std::collections::HashMap;

use camino::Utf8Path;
use gix::ObjectId;

use super::{Approval, History, SessionLine, base_ref};
use crate::git::Git;
use crate::review::approval::approval_ref;

/// History through the git CLI, which sees the quarantined objects.
pub struct CliHistory<'a> {
    pub git: &'a Git,
    pub cwd: &'a Utf8Path,
}

impl History for CliHistory<'_> {
    fn commits_between(&self, tip: ObjectId, hidden: &[ObjectId]) -> anyhow::Result<Vec<ObjectId>> {
        let tip = tip.to_string();
        let hidden: Vec<String> = hidden.iter().map(|h| format!("^{h}")).collect();
        let mut args = vec!["rev-list", tip.as_str()];
        args.extend(hidden.iter().map(String::as_str));
        let out = self.git.run(self.cwd, &args)?;
        Ok(out
            .lines()
            .filter_map(|l| ObjectId::from_hex(l.as_bytes()).ok())
            .collect())
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
    let tags: Vec<ObjectId> = branches
        .iter()
        .filter_map(|(id, _)| refs.get(&approval_ref(id)).copied())
        .collect();
    let approved = tags
        .iter()
        .copied()
        .zip(git.peel_to_commits(cwd, &tags)?)
        .collect::<HashMap<_, _>>();
    Ok(branches
        .into_iter()
        .map(|(id, tip)| SessionLine {
            id: id.to_string(),
            tip,
            base: refs.get(&base_ref(id)).copied(),
            approval: refs.get(&approval_ref(id)).and_then(|&tag| {
                Some(Approval {
                    tag,
                    commit: approved.get(&tag).copied().flatten()?,
                })
            }),
        })
        .collect())
}
