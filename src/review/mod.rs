//! The review pipeline: what a session changed (exact per-file numbers), the review hook's
//! verdict, approvals bound to one commit, and the reports people read.

pub mod approval;
pub mod diff;
pub mod hook;
pub mod render;

use gix::ObjectId;
use serde::Serialize;

use crate::git::read::Reader;
use approval::ApprovalState;
use diff::FileStat;
use hook::HookResult;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitLine {
    pub sha: String,
    pub subject: String,
    pub author: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub files: usize,
    pub insertions: u64,
    pub deletions: u64,
}

/// Everything a reviewer is shown.
#[derive(Debug, Clone)]
pub struct Summary {
    pub session: String,
    pub branch: String,
    pub base: ObjectId,
    pub tip: ObjectId,
    /// The commit `review` made of the agent's uncommitted changes, if any.
    pub staged: Option<String>,
    pub commits: Vec<CommitLine>,
    pub files: Vec<FileStat>,
    pub totals: Totals,
    pub hook: Option<HookResult>,
    pub approval: ApprovalState,
    /// Nested repositories in the worktree (`dir/`): git run there uses the agent's config.
    pub nested: Vec<String>,
}

impl Summary {
    /// Reads the range `base..tip`; the hook result and approval state are filled in later.
    pub fn build(
        reader: &Reader,
        session: &str,
        branch: &str,
        base: ObjectId,
        tip: ObjectId,
    ) -> anyhow::Result<Summary> {
        let files = diff::file_stats(&reader.repo, base, tip)?;
        let totals = Totals {
            files: files.len(),
            insertions: files.iter().map(|f| f.insertions).sum(),
            deletions: files.iter().map(|f| f.deletions).sum(),
        };
        Ok(Summary {
            session: session.to_string(),
            branch: branch.to_string(),
            base,
            tip,
            staged: None,
            commits: reader.commit_lines(tip, base)?,
            files,
            totals,
            hook: None,
            approval: ApprovalState::Pending,
            nested: Vec::new(),
        })
    }

    /// The warning for each nested repository, for people and reports alike.
    pub fn nested_warnings(&self) -> Vec<String> {
        self.nested
            .iter()
            .map(|path| {
                format!(
                    "session '{}' contains a nested repository at {path} (its own .git); git commands run there use its config, which the agent wrote: do not run git in it unconfined",
                    self.session
                )
            })
            .collect()
    }
}
