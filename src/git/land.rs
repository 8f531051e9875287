//! Landing commits on a branch the way git users expect: in the worktree that has the branch
//! checked out (so its files follow), or without a checkout through `merge-tree` and a
//! compare-and-swap ref update. Every path fires git's own hooks; a conflict leaves the
//! branch and every worktree as they were.

use camino::{Utf8Path, Utf8PathBuf};

use super::{Git, GitFailed};
use crate::error::UserError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Merge,
    Squash,
    Rebase,
    Ff,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Squash => "squash",
            Strategy::Rebase => "rebase",
            Strategy::Ff => "ff",
        }
    }

    pub fn parse(name: &str) -> Option<Strategy> {
        [
            Strategy::Merge,
            Strategy::Squash,
            Strategy::Rebase,
            Strategy::Ff,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// What to land where.
pub struct Landing<'a> {
    pub main_root: &'a Utf8Path,
    pub target_ref: &'a str,
    pub old: &'a str,
    pub tip: &'a str,
    pub message: &'a str,
    /// A scratch dir for the temporary worktree a rebase needs.
    pub scratch: &'a Utf8Path,
}

/// A landing that does not merge cleanly, naming `files` (one a line).
fn conflict(files: &str) -> anyhow::Error {
    let files: Vec<&str> = files.lines().filter(|l| !l.is_empty()).collect();
    UserError::runtime(format!(
        "the session does not merge cleanly: conflicts in {}",
        if files.is_empty() {
            "(unknown files)".to_string()
        } else {
            files.join(", ")
        }
    ))
    .hint("nothing was changed; merge the target into the session, review and approve again")
    .into()
}

impl Git {
    /// The worktree that has `branch_ref` checked out, if any.
    pub fn worktree_with_branch(
        &self,
        main_root: &Utf8Path,
        branch_ref: &str,
    ) -> anyhow::Result<Option<Utf8PathBuf>> {
        let list = self.run(main_root, &["worktree", "list", "--porcelain"])?;
        let mut current = None;
        for line in list.lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                // A session's worktree (its agent may have checked the branch out there) is
                // never where a person's branch lands.
                current = Some(Utf8PathBuf::from(path)).filter(|p| !self.is_agents(p));
            } else if line.strip_prefix("branch ") == Some(branch_ref) && current.is_some() {
                return Ok(current);
            }
        }
        Ok(None)
    }

    /// The tree merging the landing's tip into its target makes, or the conflict that stops
    /// it, naming the files (nothing is written but objects).
    pub fn merged_tree(&self, landing: &Landing<'_>) -> anyhow::Result<String> {
        let Some(tree) = self.landing_tree(landing.main_root, landing.old, landing.tip, false)?
        else {
            return Err(UserError::runtime(format!(
                "git merge-tree could not merge {} into {}",
                landing.tip, landing.old
            ))
            .into());
        };
        if tree.conflicted.is_empty() {
            return Ok(tree.tree);
        }
        let mut files: Vec<String> = tree
            .conflicted
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        files.sort();
        Err(conflict(&files.join("\n")))
    }

    /// Refuses a landing in `wt` that would overwrite untracked files of the person's: git
    /// refuses for most, but takes ignored ones for expendable and replaces them without a
    /// word.
    fn spare_untracked(
        &self,
        wt: &Utf8Path,
        landing: &Landing<'_>,
        strategy: Strategy,
    ) -> anyhow::Result<()> {
        let ff = strategy == Strategy::Ff;
        let Some(tree) = self.landing_tree(wt, landing.old, landing.tip, ff)? else {
            return Ok(());
        };
        let blocked = self.ignored_in_the_way(wt, landing.old, &tree.tree)?;
        if blocked.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = blocked
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        Err(UserError::refused(format!(
            "the landing would overwrite untracked file(s) of yours in {wt} (git takes ignored ones for expendable): {}",
            names.join(", ")
        ))
        .hint("move them out of the way (or commit them), then run the merge again")
        .into())
    }

    /// Lands `tip` on the target in `worktree` (which has it checked out), or without a
    /// checkout when `worktree` is `None`. Returns the target's new commit.
    pub fn land(
        &self,
        landing: &Landing<'_>,
        worktree: Option<&Utf8Path>,
        strategy: Strategy,
    ) -> anyhow::Result<String> {
        if let Some(wt) = worktree {
            let dirty = self.run(
                wt,
                // "dirty" compares a nested repository's HEAD without running git in it.
                &[
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--ignore-submodules=dirty",
                ],
            )?;
            if !dirty.is_empty() {
                return Err(UserError::refused(format!(
                    "{wt} has uncommitted changes to tracked files"
                ))
                .hint("commit or stash them first; the merge would mix them with the session's")
                .into());
            }
            self.spare_untracked(wt, landing, strategy)?;
        }
        if strategy == Strategy::Ff {
            self.require_fast_forward(landing)?;
        }
        let tip = if strategy == Strategy::Rebase {
            self.replay(landing)?
        } else {
            landing.tip.to_string()
        };
        match (worktree, strategy) {
            (Some(wt), Strategy::Ff | Strategy::Rebase) => {
                if let Err(err) = self.run(wt, &["merge", "--ff-only", "-q", &tip]) {
                    // A hook refused the branch's move after git wrote the files: they go
                    // again (the checkout was clean of tracked changes, and no untracked file
                    // stood in the landing's way).
                    let _ = self.run(wt, &["reset", "-q", "--merge"]);
                    return Err(err);
                }
            }
            (Some(wt), Strategy::Merge) => self.merge_in(
                wt,
                &[
                    "merge",
                    "--no-ff",
                    "--no-edit",
                    "-q",
                    "-m",
                    landing.message,
                    &tip,
                ],
                false,
            )?,
            (Some(wt), Strategy::Squash) => {
                self.merge_in(wt, &["merge", "--squash", "-q", &tip], true)?;
                if let Err(err) = self.run(wt, &["commit", "-q", "-m", landing.message]) {
                    // A hook refused it: the squash is unstaged again (no SQUASH_MSG stays),
                    // the person's unstaged changes kept (there were none to tracked files).
                    let _ = self.run(wt, &["reset", "-q", "--merge"]);
                    return Err(err);
                }
            }
            (None, Strategy::Ff | Strategy::Rebase) => self.fast_forward(landing, &tip)?,
            (None, Strategy::Merge | Strategy::Squash) => {
                self.merge_without_checkout(landing, strategy)?
            }
        }
        self.run(landing.main_root, &["rev-parse", landing.target_ref])
    }

    /// Whether merging `tip` into `old` would leave `old`'s tree as it is: every change of
    /// the session is there already. A conflict is a change.
    pub fn lands_nothing(&self, root: &Utf8Path, old: &str, tip: &str) -> anyhow::Result<bool> {
        let merged = match self.run(root, &["merge-tree", "--write-tree", old, tip]) {
            Ok(out) => out.lines().next().unwrap_or_default().to_string(),
            Err(err) if err.downcast_ref::<GitFailed>().is_some() => return Ok(false),
            Err(err) => return Err(err),
        };
        let tree = self.run(root, &["rev-parse", &format!("{old}^{{tree}}")])?;
        Ok(!merged.is_empty() && merged == tree)
    }

    /// Runs a merge in a worktree; on failure names the conflicts and undoes it.
    fn merge_in(&self, wt: &Utf8Path, args: &[&str], squash: bool) -> anyhow::Result<()> {
        if let Err(err) = self.run(wt, args) {
            let files = self
                .run(
                    wt,
                    &[
                        "diff",
                        "--name-only",
                        "--diff-filter=U",
                        "--ignore-submodules=dirty",
                    ],
                )
                .unwrap_or_default();
            let undo: &[&str] = if squash {
                &["reset", "-q", "--merge"]
            } else {
                &["merge", "--abort"]
            };
            let _ = self.run(wt, undo);
            if files.is_empty() {
                return Err(err);
            }
            return Err(conflict(&files));
        }
        Ok(())
    }

    /// Refuses (exit 3) when the target is not an ancestor of the session tip.
    fn require_fast_forward(&self, landing: &Landing<'_>) -> anyhow::Result<()> {
        let is_ancestor = self
            .run(
                landing.main_root,
                &["merge-base", "--is-ancestor", landing.old, landing.tip],
            )
            .is_ok();
        if !is_ancestor {
            return Err(UserError::refused(format!(
                "{} cannot be fast-forwarded to the session: it has moved on",
                landing.target_ref
            ))
            .hint("use --strategy merge, squash or rebase")
            .into());
        }
        Ok(())
    }

    /// Moves the target to `tip` (a descendant of it) with compare-and-swap.
    fn fast_forward(&self, landing: &Landing<'_>, tip: &str) -> anyhow::Result<()> {
        let update = [
            "update-ref",
            "-m",
            landing.message,
            landing.target_ref,
            tip,
            landing.old,
        ];
        self.run(landing.main_root, &update).map(|_| ())
    }

    /// A merge or squash commit made from `merge-tree`'s result, then a compare-and-swap of
    /// the target: nothing is checked out.
    fn merge_without_checkout(
        &self,
        landing: &Landing<'_>,
        strategy: Strategy,
    ) -> anyhow::Result<()> {
        let root = landing.main_root;
        let tree = self.merged_tree(landing)?;
        let mut args = vec!["commit-tree", tree.as_str(), "-p", landing.old];
        if strategy == Strategy::Merge {
            args.extend(["-p", landing.tip]);
        }
        args.extend(["-m", landing.message]);
        let commit = self.run(root, &args)?;
        let update = [
            "update-ref",
            "-m",
            landing.message,
            landing.target_ref,
            &commit,
            landing.old,
        ];
        self.run(root, &update).map(|_| ())
    }

    /// Replays the session's commits onto the target in a temporary detached worktree and
    /// returns the replayed tip; no branch moves.
    fn replay(&self, landing: &Landing<'_>) -> anyhow::Result<String> {
        let tmp = landing
            .scratch
            .join(format!("replay-{}", std::process::id()));
        let root = landing.main_root;
        self.run(
            root,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                tmp.as_str(),
                landing.old,
            ],
        )?;
        let result = (|| {
            if let Err(err) = self.run(
                &tmp,
                &[
                    "rebase",
                    "-q",
                    "--onto",
                    landing.old,
                    landing.old,
                    landing.tip,
                ],
            ) {
                let files = self
                    .run(
                        &tmp,
                        &[
                            "diff",
                            "--name-only",
                            "--diff-filter=U",
                            "--ignore-submodules=dirty",
                        ],
                    )
                    .unwrap_or_default();
                let _ = self.run(&tmp, &["rebase", "--abort"]);
                return Err(if files.is_empty() {
                    err
                } else {
                    conflict(&files)
                });
            }
            self.run(&tmp, &["rev-parse", "HEAD"])
        })();
        let _ = self.run(root, &["worktree", "remove", "--force", tmp.as_str()]);
        result
    }
}
