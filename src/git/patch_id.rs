//! git's `patch-id --stable`: the identity of a change, whatever commit carries it.

use std::io::{Read as _, Write as _};
use std::process::Stdio;

use anyhow::Context as _;
use camino::Utf8Path;
use gix::ObjectId;

use super::Git;

impl Git {
    /// `(patch-id, commit)` for each commit with a diff against its first parent (merges and
    /// empty commits have none).
    pub fn patch_ids(
        &self,
        cwd: &Utf8Path,
        commits: &[ObjectId],
    ) -> anyhow::Result<Vec<(String, ObjectId)>> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = commits.iter().map(|c| format!("{c}\n")).collect();
        let out = self.diff_into_patch_id(
            cwd,
            &["diff-tree", "--stdin", "-p", "--no-color"],
            Some(input),
        )?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let (patch, commit) = line.split_once(' ')?;
                Some((
                    patch.to_string(),
                    ObjectId::from_hex(commit.as_bytes()).ok()?,
                ))
            })
            .collect())
    }

    /// The patch-id of the whole change from `from` to `to` (what a squash of it carries).
    pub fn range_patch_id(
        &self,
        cwd: &Utf8Path,
        from: ObjectId,
        to: ObjectId,
    ) -> anyhow::Result<Option<String>> {
        let (from, to) = (from.to_string(), to.to_string());
        let out =
            self.diff_into_patch_id(cwd, &["diff-tree", "-p", "--no-color", &from, &to], None)?;
        Ok(out.split_whitespace().next().map(str::to_string))
    }

    /// Runs `git <diff_args>` piped into `git patch-id --stable`, argv only.
    fn diff_into_patch_id(
        &self,
        cwd: &Utf8Path,
        diff_args: &[&str],
        input: Option<String>,
    ) -> anyhow::Result<String> {
        let mut diff = self.command(cwd);
        diff.args(diff_args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut diff = diff.spawn().context("cannot run git diff-tree")?;
        let diff_out = diff.stdout.take().context("no output from git diff-tree")?;
        let mut patch = self.command(cwd);
        patch
            .args(["patch-id", "--stable"])
            .stdin(Stdio::from(diff_out))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut patch = patch.spawn().context("cannot run git patch-id")?;
        // Feed the commit list from a thread: both pipes drain while it is written.
        let writer = match (input, diff.stdin.take()) {
            (Some(text), Some(mut stdin)) => Some(std::thread::spawn(move || {
                let _ = stdin.write_all(text.as_bytes());
            })),
            _ => None,
        };
        let mut text = String::new();
        if let Some(mut stdout) = patch.stdout.take() {
            stdout.read_to_string(&mut text)?;
        }
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let diff_status = diff.wait()?;
        let patch_status = patch.wait()?;
        if !diff_status.success() || !patch_status.success() {
            anyhow::bail!("git diff-tree | git patch-id failed");
        }
        Ok(text)
    }
}
