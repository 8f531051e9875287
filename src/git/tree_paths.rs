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
    /// The paths each diff of `items` changes, as stored (bytes, `/`-joined), in order; `None`
    /// for a diff with a tree that is not as git writes trees (a name twice, names out of
    /// git's order, an empty name or one with a `/`): git's own reading of such a tree is
    /// not a comparison by name, and none is guessed at.
    pub fn paths_changed(&self, items: &[DiffOf]) -> anyhow::Result<Vec<Option<Vec<Vec<u8>>>>> {
        items
            .iter()
            .map(|item| {
                let (from, to) = match item {
                    DiffOf::Pair { from, to } => (Some(self.tree_of(*from)?), self.tree_of(*to)?),
                    DiffOf::Root(commit) => (None, self.tree_of(*commit)?),
                };
                let mut out = Vec::new();
                let read = self.diff_trees(from, Some(to), &mut Vec::new(), &mut out)?;
                Ok(read.then_some(out))
            })
            .collect()
    }

    fn tree_of(&self, commit: ObjectId) -> anyhow::Result<ObjectId> {
        Ok(self.repo.find_commit(commit)?.tree_id()?.detach())
    }

    /// A tree's entries by name; `None` when it is not as git writes trees.
    fn entries(&self, tree: Option<ObjectId>) -> anyhow::Result<Option<BTreeMap<Vec<u8>, Side>>> {
        let Some(tree) = tree else {
            return Ok(Some(BTreeMap::new()));
        };
        let tree = self.repo.find_tree(tree)?;
        // A tree gix cannot decode is one git may read otherwise: not guessed at either.
        let Ok(decoded) = tree.decode() else {
            return Ok(None);
        };
        let mut by_name = BTreeMap::new();
        let mut last: Option<Vec<u8>> = None;
        for entry in &decoded.entries {
            let name: &[u8] = entry.filename.as_ref();
            let kind = entry.mode.kind();
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                return Ok(None);
            }
            // git's order: a tree's name sorts as if it ended in '/'.
            let mut order = name.to_vec();
            if kind == EntryKind::Tree {
                order.push(b'/');
            }
            if last.as_ref().is_some_and(|last| *last >= order) {
                return Ok(None);
            }
            last = Some(order);
            if by_name
                .insert(name.to_vec(), (kind, entry.oid.to_owned()))
                .is_some()
            {
                return Ok(None);
            }
        }
        Ok(Some(by_name))
    }

    /// Adds to `out` every path under `prefix` that differs between trees `a` and `b`
    /// (`None`: no tree there). Returns false when a tree is not as git writes trees.
    fn diff_trees(
        &self,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
        prefix: &mut Vec<u8>,
        out: &mut Vec<Vec<u8>>,
    ) -> anyhow::Result<bool> {
        if a == b {
            return Ok(true);
        }
        let (Some(old), Some(new)) = (self.entries(a)?, self.entries(b)?) else {
            return Ok(false);
        };
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
                if !self.diff_trees(tree_before, tree_after, prefix, out)? {
                    return Ok(false);
                }
                prefix.truncate(at + name.len());
            }
            // What is not a tree on either side (a file, a link, a gitlink) is a path.
            let not_tree = |side: Option<&Side>| side.is_some_and(|(k, _)| *k != EntryKind::Tree);
            if not_tree(before) || not_tree(after) {
                out.push(prefix.clone());
            }
            prefix.truncate(at);
        }
        Ok(true)
    }
}
