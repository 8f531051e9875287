//! Whether a tree the agent wrote is whole: every object it names, its subtrees' too, is in
//! the shared store. A commit of the agent's that is not whole is never taken: once a ref
//! names it (the session's branch, its ledger, which only ever grows), the person's `gc` and
//! `fsck` would fail on it for good. The agent makes one with plumbing (`mktree --missing`),
//! or by naming another repository as an alternate of its store, which settling never reads.

use std::collections::{HashMap, HashSet};

use gix::ObjectId;
use gix::object::Kind;

/// What is known of trees so far.
pub struct Trees<'a> {
    repo: &'a gix::Repository,
    /// What this import wrote: any other tree the store has is the person's, whole.
    written: &'a HashSet<ObjectId>,
    whole: HashMap<ObjectId, bool>,
}

impl<'a> Trees<'a> {
    pub fn new(repo: &'a gix::Repository, written: &'a HashSet<ObjectId>) -> Self {
        Trees {
            repo,
            written,
            whole: HashMap::new(),
        }
    }

    /// Whether the tree `root` is whole. Walks only what this import wrote, subtrees first,
    /// without recursion (the agent decides how deep its trees go).
    pub fn is_whole(&mut self, root: ObjectId) -> anyhow::Result<bool> {
        let mut stack = vec![root];
        let mut expanded = HashSet::new();
        while let Some(&id) = stack.last() {
            if self.whole.contains_key(&id) {
                stack.pop();
                continue;
            }
            if !self.written.contains(&id) {
                let ok = self
                    .repo
                    .find_header(id)
                    .is_ok_and(|h| h.kind() == Kind::Tree);
                self.whole.insert(id, ok);
                stack.pop();
                continue;
            }
            let object = self.repo.find_object(id)?;
            let Some(entries) = entries(&object.data, object.kind, self.repo.object_hash()) else {
                self.whole.insert(id, false);
                stack.pop();
                continue;
            };
            if expanded.insert(id) {
                stack.extend(
                    entries
                        .iter()
                        .filter(|(tree, sub)| *tree && !self.whole.contains_key(sub))
                        .map(|(_, sub)| *sub),
                );
                continue;
            }
            stack.pop();
            let ok = entries.iter().all(|(tree, entry)| match tree {
                true => self.whole.get(entry) == Some(&true),
                false => self.repo.has_object(*entry),
            });
            self.whole.insert(id, ok);
        }
        Ok(self.whole.get(&root) == Some(&true))
    }
}

/// A tree's entries as (is a tree, id), submodules' commits left out; `None` when `data` is
/// no tree.
fn entries(data: &[u8], kind: Kind, hash: gix::hash::Kind) -> Option<Vec<(bool, ObjectId)>> {
    if kind != Kind::Tree {
        return None;
    }
    let mut out = Vec::new();
    for entry in gix::objs::TreeRefIter::from_bytes(data, hash) {
        let entry = entry.ok()?;
        if entry.mode.is_commit() {
            continue;
        }
        out.push((entry.mode.is_tree(), entry.oid.to_owned()));
    }
    Some(out)
}
