//! git's `patch-id --stable`: the identity of a change, whatever commit carries it.

use std::collections::{HashMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::process::Stdio;

use anyhow::Context as _;
use camino::Utf8Path;
use gix::ObjectId;

use super::Git;

/// What a patch-id is asked of: one commit (against its first parent), or the change
/// between two commits.
#[derive(Debug, Clone, Copy)]
pub enum PatchOf {
    Commit(ObjectId),
    Range(ObjectId, ObjectId),
}

impl PatchOf {
    /// The id `diff-tree --stdin` prints above this item's diff.
    fn header(self) -> ObjectId {
        match self {
            PatchOf::Commit(id) | PatchOf::Range(id, _) => id,
        }
    }
}

impl Git {
    /// The patch-ids of `items`, all in one `diff-tree --stdin | patch-id --stable` pair of
    /// processes, as `(patch-id, index into items)`. Items without a change have none.
    pub fn patch_ids(
        &self,
        cwd: &Utf8Path,
        items: &[PatchOf],
    ) -> anyhow::Result<Vec<(String, usize)>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = items
            .iter()
            .map(|item| match item {
                PatchOf::Commit(id) => format!("{id}\n"),
                PatchOf::Range(from, to) => format!("{from} {to}\n"),
            })
            .collect();
        let out = self.diff_into_patch_id(
            cwd,
            &["diff-tree", "--stdin", "-p", "--no-color"],
            Some(input),
        )?;
        // patch-id names each diff by the id diff-tree printed above it, in input order.
        let mut waiting: HashMap<ObjectId, VecDeque<usize>> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            waiting.entry(item.header()).or_default().push_back(index);
        }
        Ok(out
            .lines()
            .filter_map(|line| {
                let (patch, id) = line.split_once(' ')?;
                let id = ObjectId::from_hex(id.as_bytes()).ok()?;
                let index = waiting.get_mut(&id)?.pop_front()?;
                Some((patch.to_string(), index))
            })
            .collect())
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
