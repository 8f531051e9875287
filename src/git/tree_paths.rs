//! Which paths two commits' trees differ in, read in-process: what `git diff-tree -r
//! --no-renames --raw` lists (a mode change, a type change, a gitlink moved), without starting
//! git. The gate asks it on every landing, where a process start is most of the cost.

use std::collections::BTreeMap;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::hunks::DiffOf;
use super::read::Reader;

/// One side of a tree entry: what it is and which object.
type Side = (EntryKind, ObjectId);

impl Reader {
    /// The paths each diff of `items` changes, as stored (bytes, `/`-joined), in order.
    pub fn paths_changed(&self, items: &[DiffOf]) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
        items
            .iter()
            .map(|item| {
                let (from, to) = match item {
                    DiffOf::Pair { from, to } => (Some(self.tree_of(*from)?), self.tree_of(*to)?),
                    DiffOf::Root(commit) => (None, self.tree_of(*commit)?),
                };
                let mut out = Vec::new();
                self.diff_trees(from, Some(to), &mut Vec::new(), &mut out)?;
                Ok(out)
            })
            .collect()
    }

    fn tree_of(&self, commit: ObjectId) -> anyhow::Result<ObjectId> {
        Ok(self.repo.find_commit(commit)?.tree_id()?.detach())
    }

    fn entries(&self, tree: Option<ObjectId>) -> anyhow::Result<BTreeMap<Vec<u8>, Side>> {
        let Some(tree) = tree else {
            return Ok(BTreeMap::new());
        };
        let tree = self.repo.find_tree(tree)?;
        let decoded = tree.decode()?;
        Ok(decoded
            .entries
            .iter()
            .map(|e| (e.filename.to_vec(), (e.mode.kind(), e.oid.to_owned())))
            .collect())
    }

    /// Adds to `out` every path under `prefix` that differs between trees `a` and `b`
    /// (`None`: no tree there).
    fn diff_trees(
        &self,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
        prefix: &mut Vec<u8>,
        out: &mut Vec<Vec<u8>>,
    ) -> anyhow::Result<()> {
        if a == b {
            return Ok(());
        }
        let (old, new) = (self.entries(a)?, self.entries(b)?);
        let mut names: Vec<&Vec<u8>> = old.keys().chain(new.keys()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let (before, after) = (old.get(name), new.get(name));
            if before == after {
                continue;
            }
            let at = prefix.len();
            prefix.extend_from_slice(name);
            let tree = |side: Option<&Side>| {
                side.filter(|(kind, _)| *kind == EntryKind::Tree)
                    .map(|(_, id)| *id)
            };
            let (tree_before, tree_after) = (tree(before), tree(after));
            if tree_before.is_some() || tree_after.is_some() {
                prefix.push(b'/');
                self.diff_trees(tree_before, tree_after, prefix, out)?;
                prefix.truncate(at + name.len());
            }
            // What is not a tree on either side (a file, a link, a gitlink) is a path.
            let not_tree = |side: Option<&Side>| side.is_some_and(|(k, _)| *k != EntryKind::Tree);
            if not_tree(before) || not_tree(after) {
                out.push(prefix.clone());
            }
            prefix.truncate(at);
        }
        Ok(())
    }
}
