//! The review pipeline: what a session changed (exact per-file numbers), the review hook's
//! verdict, approvals bound to one commit, and the reports people read.

pub mod approval;
pub mod diff;
pub mod feedback;
pub mod hook;
pub mod html;
pub mod patch;
pub mod render;

use gix::ObjectId;
use serde::Serialize;

use crate::git::read::Reader;
use approval::ApprovalState;
use diff::FileStat;
use hook::HookResult;
use patch::FilePatch;

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
    /// The patch (`git diff base tip`), file by file in git's order; empty until read.
    pub patches: Vec<FilePatch>,
    /// How many lines of each file's patch the reports show (`review.max_patch_lines`).
    pub max_patch_lines: usize,
    /// Whether the JSON report carries each file's hunks (`--patch`).
    pub json_hunks: bool,
}

impl Summary {
    /// Reads the range `base..tip` (`patch` is `git diff base tip`, read back by
    /// [`patch::parse`]); the hook result and approval state are filled in later.
    pub fn build(
        reader: &Reader,
        session: &str,
        branch: &str,
        (base, tip): (ObjectId, ObjectId),
        patches: Vec<FilePatch>,
    ) -> anyhow::Result<Summary> {
        let files = diff::file_stats(&patches);
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
            patches,
            max_patch_lines: usize::MAX,
            json_hunks: false,
        })
    }

    /// The command that approves exactly this tip, and nothing the agent adds after it.
    pub fn approve_command(&self) -> String {
        format!(
            "git codex session review {} --approve --tip {}",
            self.session, self.tip
        )
    }

    /// Whether the tip is approved already (then there is nothing left to approve).
    pub fn approved_here(&self) -> bool {
        matches!(&self.approval, ApprovalState::Approved(v) if v.commit_id() == Some(self.tip))
    }

    /// The parts of the patch of `file` (two for a type change).
    pub fn patches_of<'a>(
        &'a self,
        file: &'a FileStat,
    ) -> impl Iterator<Item = &'a FilePatch> + 'a {
        self.patches
            .iter()
            .filter(move |p| p.raw_path == file.raw_path)
    }

    /// The warning for each nested repository, for people and reports alike.
    /// The session's changes to files a hook manager reads from the worktree git runs in:
    /// the person's own `git commit` in the session worktree runs them as the agent wrote them.
    pub fn hook_config_warnings(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|file| {
                let tool = hook_config_tool(&file.path)?;
                Some(format!(
                    "session '{}' changes {}, which {tool} runs when git commits or pushes: your git in its worktree runs it as the agent wrote it; read it before you commit there",
                    self.session, file.path
                ))
            })
            .collect()
    }

    /// What the patch cannot show as it will be: a Git LFS pointer stands for content the
    /// patch does not hold; a control or invisible character (shown escaped) may make a line
    /// run otherwise than it reads (a carriage return, say).
    pub fn content_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in &self.files {
            let added = || {
                self.patches_of(file)
                    .flat_map(|p| &p.hunks)
                    .flat_map(new_lines)
            };
            if added().any(|(_, l)| l.starts_with("+version https://git-lfs.github.com/spec/")) {
                out.push(format!(
                    "session '{}' adds {} as a Git LFS pointer: the review shows the pointer, not the content it stands for, which lands with it; read that content ('git lfs' brings it) before you approve",
                    self.session, file.path
                ));
            }
            let marked: Vec<u64> = added()
                .filter(|(_, l)| {
                    !matches!(
                        crate::output::escape::text(l),
                        std::borrow::Cow::Borrowed(_)
                    )
                })
                .map(|(n, _)| n)
                .collect();
            if let Some(first) = marked.first() {
                out.push(format!(
                    "{}: {} added line(s) hold control or invisible characters, shown escaped (\\r, \\033, ...), first at line {first}: a line may run otherwise than it reads",
                    file.path,
                    marked.len()
                ));
            }
        }
        out
    }

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

/// The hook manager that reads `path` (relative to the worktree) when git runs a hook.
fn hook_config_tool(path: &str) -> Option<&'static str> {
    // husky is not among them: git-codex points a session's hooks at the main worktree's
    // hooks dir, and husky's stubs find their scripts beside it.
    if path.starts_with(".lefthook/") {
        return Some("lefthook");
    }
    match path {
        ".pre-commit-config.yaml" | ".pre-commit-config.yml" => Some("pre-commit"),
        p if !p.contains('/') && p.trim_start_matches('.').starts_with("lefthook") => {
            Some("lefthook")
        }
        _ => None,
    }
}

/// The added lines of `hunk` with their line numbers in the new file.
fn new_lines(hunk: &patch::Hunk) -> impl Iterator<Item = (u64, &str)> {
    let mut number = hunk.new_start;
    hunk.lines.iter().filter_map(move |line| {
        let at = number;
        match line.as_bytes().first() {
            Some(b'+') => {
                number += 1;
                Some((at, line.as_str()))
            }
            Some(b' ') => {
                number += 1;
                None
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod hook_config_tests {
    use super::hook_config_tool;

    #[test]
    fn names_the_files_hook_managers_read_from_the_worktree() {
        assert_eq!(
            hook_config_tool(".pre-commit-config.yaml"),
            Some("pre-commit")
        );
        assert_eq!(hook_config_tool("lefthook.yml"), Some("lefthook"));
        assert_eq!(hook_config_tool(".lefthook-local.yml"), Some("lefthook"));
        assert_eq!(
            hook_config_tool(".lefthook/pre-commit/lint.sh"),
            Some("lefthook")
        );
        assert_eq!(hook_config_tool("docs/lefthook.yml"), None);
        assert_eq!(hook_config_tool(".husky/pre-commit"), None);
        assert_eq!(hook_config_tool("src/main.rs"), None);
    }
}
