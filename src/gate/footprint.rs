//! What each session could bring to any landing, worked out once per session tip and kept in
//! the state dir (`gate-cache`), so that a landing's cost does not grow with the number of
//! sessions (issue 18). It is a cache and nothing more: every verdict is the rule's in
//! `super` run over the sessions a landing could concern, and which those are is decided from
//! footprints that are made again whenever the stored ones are missing, unreadable, fail their
//! checksum, or were made for other tips or another base. A session is left out of a landing
//! only when it provably has nothing to say about it:
//!
//! - `reach` (what its tips reach past its base, ledger entries left out) holds every commit
//!   the rule could count as the session's own, whatever the protected branches hold, so a
//!   landing with none of them lands none of the session's commits;
//! - `paths` (what each of those commits changes against each parent, and its base to its
//!   branch tip) holds the file of every hunk the rule could look for a copy of: a commit's
//!   own hunks, and its whole change from its fork point — its base, or a nearer meeting point
//!   with a protected branch, which is then one of its own commits (a meeting point that is
//!   an ancestor of the base is never nearer), and whatever differs between that point and the
//!   tip differs across one of the commits between them. A landing that changes none of those
//!   files copies nothing of the session.
//!
//! A session nothing bounds (no base, a ledger entry in its branch's history: an empty tree,
//! every file deleted) or whose trees git-codex cannot read as git does (a name twice, out of
//! git's order) is asked about every landing, as without a cache; so is every session for a
//! landing with such a tree.

use std::collections::{BTreeMap, HashMap, HashSet};

use camino::Utf8Path;
use gix::ObjectId;
use serde::{Deserialize, Serialize};

use super::{History, SessionLine};
use crate::git::hunks::DiffOf;

/// The cache file's first line; a file without it (or another version) is not read.
const HEADER: &str = "git-codex gate cache 1";

/// Past this many commits from its base a session is not kept (it is asked about every
/// landing, as it would be without a cache).
const MAX_REACH: usize = 20_000;

/// What one session could bring to a landing.
#[derive(Debug, Clone)]
pub struct Footprint {
    reach: HashSet<ObjectId>,
    /// Into [`Store::paths`].
    paths: Vec<u32>,
    /// Nothing tells what the session could bring (no base to count from, too many commits,
    /// a ledger entry in its branch, a tree git-codex cannot read as git does): it is asked
    /// about every landing.
    always: bool,
}

/// The footprints a cache file holds, with the file names they touch (each once: sessions
/// touch the same files).
#[derive(Debug, Default)]
pub struct Store {
    /// What the repository's `shallow` file held when the footprints were made: history
    /// deepened (or made shallower) reaches other commits from the same tips.
    shallow: String,
    /// Per session id: its key (the tips and base it was made for) and footprint.
    entries: HashMap<String, (String, Footprint)>,
    paths: Vec<Vec<u8>>,
    numbers: HashMap<Vec<u8>, u32>,
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    shallow: String,
    /// Hex of each path's bytes (a path need not be UTF-8).
    paths: Vec<String>,
    sessions: BTreeMap<String, StoredEntry>,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    key: String,
    #[serde(default)]
    always: bool,
    reach: Vec<String>,
    /// Into `StoredFile::paths`.
    paths: Vec<u32>,
}

/// What a session's footprint is made for: which commit its branch is at, every tip it has
/// (branches and ledgers), which of them are ledgers, and the base it was given (a ledger's
/// own base, when it has one, is the ledger's content).
pub fn key(line: &SessionLine) -> String {
    let hexes = |ids: &[ObjectId]| -> String {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.iter()
            .map(ObjectId::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let one = |id: Option<ObjectId>| id.map_or_else(|| "-".to_string(), |id| id.to_string());
    format!(
        "branch={};tips={};ledgers={};base={}",
        one(line.branch_tip),
        hexes(&line.tips),
        hexes(&line.ledgers),
        one(line.base)
    )
}

impl Store {
    /// The cache at `path`; empty when it is missing, unreadable or not whole.
    pub fn load(path: &Utf8Path) -> Store {
        let Ok(Some(bytes)) = crate::state::read_regular_file(path) else {
            return Store::default();
        };
        Store::parse(&bytes).unwrap_or_default()
    }

    fn parse(bytes: &[u8]) -> Option<Store> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (head, body) = text.split_once('\n')?;
        let (header, sum) = head.rsplit_once(' ')?;
        if header != HEADER || sum != checksum(body.as_bytes())? {
            return None;
        }
        let file: StoredFile = serde_json::from_str(body).ok()?;
        let mut store = Store {
            shallow: file.shallow,
            ..Store::default()
        };
        for hex in &file.paths {
            store.number(from_hex(hex)?);
        }
        if store.paths.len() != file.paths.len() {
            return None;
        }
        for (id, entry) in file.sessions {
            if entry.paths.iter().any(|&n| n as usize >= store.paths.len()) {
                return None;
            }
            let reach = entry
                .reach
                .iter()
                .map(|h| ObjectId::from_hex(h.as_bytes()).ok())
                .collect::<Option<HashSet<_>>>()?;
            let footprint = Footprint {
                reach,
                paths: entry.paths,
                always: entry.always,
            };
            store.entries.insert(id, (entry.key, footprint));
        }
        Some(store)
    }

    /// The number of `path` in [`Store::paths`], given it when new.
    fn number(&mut self, path: Vec<u8>) -> u32 {
        if let Some(known) = self.numbers.get(&path) {
            return *known;
        }
        let next = u32::try_from(self.paths.len()).unwrap_or(u32::MAX);
        self.paths.push(path.clone());
        self.numbers.insert(path, next);
        next
    }

    /// Writes the cache (best effort: a place that cannot be written, such as the state dir
    /// inside a confined run, only means the next landing works it out again).
    pub fn save(&self, path: &Utf8Path) {
        // Only the paths some footprint still names, numbered afresh.
        let mut renumbered: HashMap<u32, u32> = HashMap::new();
        let mut paths = Vec::new();
        let mut sessions = BTreeMap::new();
        for (id, (key, f)) in &self.entries {
            let mut reach: Vec<String> = f.reach.iter().map(ObjectId::to_string).collect();
            reach.sort_unstable();
            let mut numbers: Vec<u32> = f
                .paths
                .iter()
                .map(|&n| {
                    *renumbered.entry(n).or_insert_with(|| {
                        paths.push(to_hex(&self.paths[n as usize]));
                        u32::try_from(paths.len() - 1).unwrap_or(u32::MAX)
                    })
                })
                .collect();
            numbers.sort_unstable();
            let entry = StoredEntry {
                key: key.clone(),
                always: f.always,
                reach,
                paths: numbers,
            };
            sessions.insert(id.clone(), entry);
        }
        let file = StoredFile {
            shallow: self.shallow.clone(),
            paths,
            sessions,
        };
        let Ok(body) = serde_json::to_string(&file) else {
            return;
        };
        let Some(sum) = checksum(body.as_bytes()) else {
            return;
        };
        let _ = crate::state::replace_file(path, format!("{HEADER} {sum}\n{body}").as_bytes());
    }
}

/// The sessions of `lines` (light: see `SessionLine::ledgers`) that a landing of `landing`
/// (each commit with its parents) and, when it is one update, its whole change `net`, could
/// concern. `store` is brought up to today's footprints.
pub struct Concerned {
    /// Indexes into `lines`.
    pub lines: Vec<usize>,
    /// Lines that were read whole along the way (a footprint had to be made), by index.
    pub completed: HashMap<usize, SessionLine>,
    /// Whether `store` changed.
    pub changed: bool,
}

pub fn concerned(
    history: &dyn History,
    store: &mut Store,
    lines: &[SessionLine],
    landing: &[(ObjectId, Vec<ObjectId>)],
    net: Option<(ObjectId, ObjectId)>,
) -> anyhow::Result<Concerned> {
    let mut changed = false;
    let shallow = history.shallow()?;
    if store.shallow != shallow {
        *store = Store {
            shallow,
            ..Store::default()
        };
        changed = true;
    }
    let mut completed = HashMap::new();
    let mut fresh: Vec<(usize, String, Footprint, Vec<DiffOf>)> = Vec::new();
    let mut keys = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let key = key(line);
        if !matches!(store.entries.get(&line.id), Some((stored, _)) if *stored == key) {
            // Made for other tips (or none can be made): never used again.
            changed |= store.entries.remove(&line.id).is_some();
            let full = super::complete(history, line)?;
            let (footprint, items) = make(history, &full)?;
            fresh.push((index, key.clone(), footprint, items));
            completed.insert(index, full);
        }
        keys.push(key);
    }
    // Sessions that are gone take their footprints with them.
    let ids: HashSet<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    let before = store.entries.len();
    store.entries.retain(|id, _| ids.contains(id.as_str()));
    changed |= store.entries.len() != before;
    // One pass for what the new footprints change and what the landing changes.
    let mut items: Vec<DiffOf> = Vec::new();
    for (_, _, _, asked) in &fresh {
        items.extend(asked.iter().copied());
    }
    for (commit, parents) in landing {
        items.extend(DiffOf::of_commit(*commit, parents));
    }
    if let Some((old, new)) = net {
        items.push(DiffOf::Pair { from: old, to: new });
    }
    let mut answers = history.paths_changed(&items)?.into_iter();
    for (index, key, mut footprint, asked) in fresh {
        for paths in answers.by_ref().take(asked.len()) {
            match paths {
                Some(paths) => {
                    for path in paths {
                        footprint.paths.push(store.number(path));
                    }
                }
                None => footprint.always = true,
            }
        }
        footprint.paths.sort_unstable();
        footprint.paths.dedup();
        store
            .entries
            .insert(lines[index].id.clone(), (key, footprint));
        changed = true;
    }
    // The landing's files, as numbers of the footprints' (a file no footprint names is none);
    // a landing whose trees cannot be read as git reads them concerns every session.
    let landing_paths: Option<Vec<Vec<Vec<u8>>>> = answers.collect();
    let Some(landing_paths) = landing_paths else {
        return Ok(Concerned {
            lines: (0..lines.len()).collect(),
            completed,
            changed,
        });
    };
    let touched: HashSet<u32> = landing_paths
        .into_iter()
        .flatten()
        .filter_map(|p| store.numbers.get(&p).copied())
        .collect();
    let landing_ids: HashSet<ObjectId> = landing.iter().map(|(c, _)| *c).collect();
    let concerned = lines
        .iter()
        .enumerate()
        .filter(|(index, line)| match store.entries.get(&line.id) {
            Some((stored, f)) if *stored == keys[*index] => {
                f.always
                    || f.reach.iter().any(|c| landing_ids.contains(c))
                    || f.paths.iter().any(|p| touched.contains(p))
            }
            _ => true,
        })
        .map(|(index, _)| index)
        .collect();
    Ok(Concerned {
        lines: concerned,
        completed,
        changed,
    })
}

/// A session's footprint (its paths still to be filled from the diffs returned), one that
/// is always asked when nothing bounds what it could bring: no base to count from, too many
/// commits past it, or a ledger entry in its branch's history.
fn make(history: &dyn History, line: &SessionLine) -> anyhow::Result<(Footprint, Vec<DiffOf>)> {
    let always = Footprint {
        reach: HashSet::new(),
        paths: Vec::new(),
        always: true,
    };
    let Some(base) = line.base else {
        return Ok((always, Vec::new()));
    };
    let commits = history.commits_with_parents(&line.tips, &[base])?;
    if commits.len() > MAX_REACH {
        return Ok((always, Vec::new()));
    }
    if let Some(tip) = line.branch_tip
        && branch_holds_ledger_entry(&commits, tip, &line.chain)
    {
        return Ok((always, Vec::new()));
    }
    let mut items = Vec::new();
    let mut reach = HashSet::new();
    for (commit, parents) in commits {
        if line.chain.contains(&commit) {
            continue;
        }
        reach.insert(commit);
        items.extend(DiffOf::of_commit(commit, &parents));
    }
    if let Some(tip) = line.branch_tip {
        items.push(DiffOf::Pair {
            from: base,
            to: tip,
        });
    }
    let footprint = Footprint {
        reach,
        paths: Vec::new(),
        always: false,
    };
    Ok((footprint, items))
}

/// Whether `tip`'s history among `commits` (each with its parents) holds one of `chain`.
fn branch_holds_ledger_entry(
    commits: &[(ObjectId, Vec<ObjectId>)],
    tip: ObjectId,
    chain: &HashSet<ObjectId>,
) -> bool {
    let parents: HashMap<ObjectId, &Vec<ObjectId>> = commits.iter().map(|(c, p)| (*c, p)).collect();
    let mut seen = HashSet::new();
    let mut next = vec![tip];
    while let Some(commit) = next.pop() {
        if !seen.insert(commit) {
            continue;
        }
        if chain.contains(&commit) {
            return true;
        }
        if let Some(ps) = parents.get(&commit) {
            next.extend(ps.iter().copied());
        }
    }
    false
}

fn checksum(body: &[u8]) -> Option<String> {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, body)
        .ok()
        .map(|id| id.to_string())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let nibble = |b: u8| -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_file_that_is_not_whole_is_not_read() {
        let mut store = Store::default();
        let id = ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
        let number = store.number(b"a\xffb".to_vec());
        store.entries.insert(
            "s1".to_string(),
            (
                "k".to_string(),
                Footprint {
                    reach: [id].into_iter().collect(),
                    paths: vec![number],
                    always: false,
                },
            ),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8Path::from_path(dir.path()).unwrap().join("gate-cache");
        store.save(&path);
        let back = Store::load(&path);
        let (key, footprint) = &back.entries["s1"];
        assert!(footprint.reach.contains(&id));
        assert_eq!(key, "k");
        assert_eq!(back.paths[footprint.paths[0] as usize], b"a\xffb".to_vec());
        let bytes = std::fs::read(&path).unwrap();
        for cut in [bytes.len() - 1, bytes.len() / 2, 10] {
            assert!(Store::parse(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        assert!(Store::parse(&flipped).is_none());
    }
}
