//! Taking a confined agent's new objects into the shared store when its run settles: each
//! object of its own store, loose or packed, checked against its name. Only the store itself
//! is read, as plain files in plain dirs: never an alternate the agent named (its
//! `info/alternates` is its own git's view, see [`super::stores`]), never through a link. A commit is taken only once whole (see [`whole`]).

use std::collections::{HashMap, HashSet};

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;
use gix::objs::Write as _;

use crate::context::Ctx;

mod whole;

/// What importing the agent's store came to.
#[derive(Debug, Default)]
pub struct Imported {
    /// Objects (or pack files) not taken: not what their names say, not plain files, hollow.
    pub rejected: usize,
    /// Commits not taken because an object they need is in neither store (see [`whole`]).
    pub broken: usize,
    /// The commits taken.
    pub commits: Vec<ObjectId>,
}

/// Copies every object of the agent's store `objects` into the shared store, after checking
/// it hashes to its name, and every commit of it once it is whole. An object the shared
/// store already has is left as it is.
pub fn objects(ctx: &Ctx, objects: &Utf8Path) -> anyhow::Result<Imported> {
    let mut import = Import {
        repo: &ctx.reader.repo,
        imported: Imported {
            rejected: drop_hollow_packs(objects),
            ..Imported::default()
        },
        written: HashSet::new(),
        pending: HashMap::new(),
    };
    let hash = import.repo.object_hash();
    let mut buf = Vec::new();
    // Loose objects: the walk follows no link, and a link in place of an object is not read.
    let loose = gix::odb::loose::Store::at(objects.as_std_path(), hash);
    for id in loose.iter() {
        let Ok(id) = id else {
            import.imported.rejected += 1;
            continue;
        };
        let hex = id.to_string();
        let path = objects.join(&hex[..2]).join(&hex[2..]);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            import.imported.rejected += 1;
            continue;
        }
        match loose.try_find(&id, &mut buf) {
            Ok(Some(data)) => import.take(id, data.kind, data.data)?,
            _ => import.imported.rejected += 1,
        }
    }
    let mut inflate = gix::zlib::Inflate::default();
    for index in pack_indexes(objects) {
        let Ok(bundle) = gix::odb::pack::Bundle::at(index.as_std_path(), hash) else {
            import.imported.rejected += 1;
            continue;
        };
        for n in 0..bundle.index.num_objects() {
            let id = bundle.index.oid_at_index(n).to_owned();
            // Deltas resolve within the pack only: its bases are the agent's objects too.
            let found = bundle.get_object_by_index(
                n,
                &mut buf,
                &mut inflate,
                &mut gix::odb::pack::cache::Never,
            );
            match found {
                Ok((data, _)) => import.take(id, data.kind, data.data)?,
                Err(_) => import.imported.rejected += 1,
            }
        }
    }
    import.take_commits()?;
    Ok(import.imported)
}

struct Import<'a> {
    repo: &'a gix::Repository,
    imported: Imported,
    /// What this import wrote into the shared store (but commits).
    written: HashSet<ObjectId>,
    /// The agent's new commits, taken last (see [`Import::take_commits`]).
    pending: HashMap<ObjectId, Vec<u8>>,
}

impl Import<'_> {
    /// Writes the object `id` into the shared store when `data` hashes to it and the store
    /// lacks it; a commit waits for [`Import::take_commits`].
    fn take(&mut self, id: ObjectId, kind: gix::object::Kind, data: &[u8]) -> anyhow::Result<()> {
        let repo = self.repo;
        if gix::objs::compute_hash(repo.object_hash(), kind, data).ok() != Some(id) {
            self.imported.rejected += 1;
            return Ok(());
        }
        // An object the shared store already has is not the agent's making, even when it
        // wrote a copy (a commit of the person's it would claim as the session's).
        if repo.has_object(id) {
            return Ok(());
        }
        if kind == gix::object::Kind::Commit {
            self.pending.insert(id, data.to_vec());
        } else if repo.objects.write_buf(kind, data)? == id {
            self.written.insert(id);
        } else {
            self.imported.rejected += 1;
        }
        Ok(())
    }

    /// Writes each pending commit whose tree and parents are whole, parents first.
    fn take_commits(&mut self) -> anyhow::Result<()> {
        let hash = self.repo.object_hash();
        let mut trees = whole::Trees::new(self.repo, &self.written);
        let mut decided: HashMap<ObjectId, bool> = HashMap::new();
        let mut expanded: HashSet<ObjectId> = HashSet::new();
        let mut ids: Vec<ObjectId> = self.pending.keys().copied().collect();
        ids.sort();
        for start in ids {
            let mut stack = vec![start];
            while let Some(&id) = stack.last() {
                if decided.contains_key(&id) {
                    stack.pop();
                    continue;
                }
                let parsed = gix::objs::CommitRef::from_bytes(&self.pending[&id], hash).ok();
                let Some(commit) = parsed else {
                    self.imported.rejected += 1;
                    decided.insert(id, false);
                    continue;
                };
                let parents: Vec<ObjectId> = commit.parents().collect();
                if expanded.insert(id) {
                    // The agent's parents first; a cycle cannot be (ids are hashes).
                    stack.extend(
                        parents
                            .iter()
                            .filter(|p| self.pending.contains_key(*p) && !expanded.contains(*p)),
                    );
                    continue;
                }
                stack.pop();
                let ok = trees.is_whole(commit.tree())?
                    && parents.iter().all(|p| match decided.get(p) {
                        Some(whole) => *whole,
                        // The person's commits are whole.
                        None => !self.pending.contains_key(p) && self.repo.find_commit(*p).is_ok(),
                    });
                if ok
                    && self
                        .repo
                        .objects
                        .write_buf(gix::object::Kind::Commit, &self.pending[&id])?
                        == id
                {
                    self.imported.commits.push(id);
                } else {
                    self.imported.broken += 1;
                }
                decided.insert(id, ok);
            }
        }
        Ok(())
    }
}

/// The pack indexes of the store: plain files in its `pack` dir (when that is a plain dir),
/// each beside a plain `.pack`.
fn pack_indexes(objects: &Utf8Path) -> Vec<Utf8PathBuf> {
    let pack_dir = objects.join("pack");
    if !is_dir(&pack_dir) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(&pack_dir) else {
        return Vec::new();
    };
    let mut found: Vec<Utf8PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .filter(|p| p.extension() == Some("idx"))
        .filter(|p| std::fs::symlink_metadata(p.with_extension("pack")).is_ok_and(|m| m.is_file()))
        .collect();
    found.sort();
    found
}

fn is_dir(path: &Utf8Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Pack files in the agent's object dir that are not what they claim to hold: anything but a
/// plain file, or a sparse one (an index claiming millions of entries costs the agent no disk,
/// but reading them costs the person minutes). They are dropped with their pack, so settling
/// costs what the agent really wrote. Returns how many files were dropped. A `pack` that is
/// no plain dir (a link to a dir of the person's) is not read.
fn drop_hollow_packs(objects: &Utf8Path) -> usize {
    let pack_dir = objects.join("pack");
    if !is_dir(&pack_dir) {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(&pack_dir) else {
        return 0;
    };
    let mut hollow = Vec::new();
    for entry in entries.flatten() {
        // The entry itself: a link is hollow, whatever it points at.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() || super::admin::sparse(&meta) {
            hollow.push(entry.path());
        }
    }
    let mut dropped = 0;
    for path in hollow {
        // The pack and its index go together: an index without its pack is not read.
        for sibling in ["idx", "pack", "rev", "bitmap"] {
            if std::fs::remove_file(path.with_extension(sibling)).is_ok() {
                dropped += 1;
            }
        }
        if std::fs::remove_file(&path).is_ok() {
            dropped += 1;
        }
    }
    dropped
}
