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

    /// A tree's entries by name; `None` when it is not as git writes trees, or is no tree.
    /// The raw object is read, not gix's decoding of it: gix reads modes git reads otherwise
    /// (`140000` as a tree, where git's canonical mode makes it a gitlink).
    fn entries(&self, tree: Option<ObjectId>) -> anyhow::Result<Option<BTreeMap<Vec<u8>, Side>>> {
        let Some(tree) = tree else {
            return Ok(Some(BTreeMap::new()));
        };
        let Ok(tree) = self.repo.find_tree(tree) else {
            return Ok(None);
        };
        Ok(parse_tree(&tree.data))
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

/// The entries of a raw tree object by name, when every entry is as git writes it: one of
/// git's five modes exactly (`100644`, `100755`, `120000`, `160000`, `40000`), a name that is
/// not empty, `.`, `..` or holding a `/`, each name once, in git's order (a tree's name sorts
/// as if it ended in `/`). `None` otherwise.
fn parse_tree(mut data: &[u8]) -> Option<BTreeMap<Vec<u8>, Side>> {
    let mut by_name = BTreeMap::new();
    let mut last: Option<Vec<u8>> = None;
    while !data.is_empty() {
        let space = data.iter().position(|b| *b == b' ')?;
        let kind = match &data[..space] {
            b"100644" => EntryKind::Blob,
            b"100755" => EntryKind::BlobExecutable,
            b"120000" => EntryKind::Link,
            b"160000" => EntryKind::Commit,
            b"40000" => EntryKind::Tree,
            _ => return None,
        };
        let rest = &data[space + 1..];
        let nul = rest.iter().position(|b| *b == 0)?;
        let name = &rest[..nul];
        let id = rest.get(nul + 1..nul + 21)?;
        data = &rest[nul + 21..];
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return None;
        }
        let mut order = name.to_vec();
        if kind == EntryKind::Tree {
            order.push(b'/');
        }
        if last.as_ref().is_some_and(|last| *last >= order) {
            return None;
        }
        last = Some(order);
        let id = ObjectId::try_from(id).ok()?;
        if by_name.insert(name.to_vec(), (kind, id)).is_some() {
            return None;
        }
    }
    Some(by_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: &str, name: &str) -> Vec<u8> {
        [mode.as_bytes(), b" ", name.as_bytes(), b"\0", &[7u8; 20]].concat()
    }

    #[test]
    fn only_trees_as_git_writes_them_are_read() {
        let good = [
            entry("100644", "a"),
            entry("40000", "b"),
            entry("160000", "c"),
        ]
        .concat();
        let parsed = parse_tree(&good).expect("as git writes it");
        assert_eq!(parsed[b"b".as_slice()].0, EntryKind::Tree);
        assert_eq!(parsed[b"c".as_slice()].0, EntryKind::Commit);
        for odd in [
            // git reads 140000 as a gitlink, gix as a tree; 040000 is zero-padded.
            entry("140000", "a"),
            entry("040000", "a"),
            entry("100664", "a"),
            [entry("100644", "a"), entry("100644", "a")].concat(),
            [entry("100644", "b"), entry("100644", "a")].concat(),
            // "a" the tree sorts as "a/", after "a-b".
            [entry("40000", "a"), entry("100644", "a-b")].concat(),
            entry("100644", "x/y"),
            entry("100644", ".."),
            good[..good.len() - 1].to_vec(),
        ] {
            assert!(
                parse_tree(&odd).is_none(),
                "{}",
                String::from_utf8_lossy(&odd)
            );
        }
        assert!(parse_tree(&[entry("100644", "a-b"), entry("40000", "a")].concat()).is_some());
    }
}
