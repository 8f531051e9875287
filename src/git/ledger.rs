//! The ledger: a durable, forward-only record of every commit a session ever had (SPEC §8).
//!
//! `refs/codex/ledger/<id>` points at a chain of ledger commits (empty tree, made by git-codex
//! alone): each one's first parent is the previous entry and its other parents are the session
//! tips recorded with it. So the session's commits are what the ledger reaches, less the
//! chain itself and less the session's base (named in every entry's message). Renaming,
//! resetting or deleting the branch, or changing the branch prefix, takes nothing out: the
//! ledger only ever gains parents. It is written here through gix, which fires no hooks, so
//! the reference-transaction hook can refuse every move of a ledger that does not come from
//! git-codex (a rewind or a deletion by `git update-ref`).

use std::collections::HashSet;

use anyhow::Context as _;
use camino::Utf8Path;
use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

/// Where ledgers live.
pub const LEDGER_PREFIX: &str = "refs/codex/ledger/";

/// The first line of every ledger commit's message.
const SUBJECT: &str = "git-codex ledger";

pub fn ledger_ref(id: &str) -> String {
    format!("{LEDGER_PREFIX}{id}")
}

/// A session's ledger as read from its ref.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// What the ref points at.
    pub head: ObjectId,
    /// The session's base: its commits are what the ledger reaches and the base does not.
    pub base: Option<ObjectId>,
    /// The ledger's own commits (never session commits themselves).
    pub chain: HashSet<ObjectId>,
    /// Every session tip recorded.
    pub tips: HashSet<ObjectId>,
}

/// Reads the ledger whose newest entry is `head`: the first-parent chain of ledger commits.
/// A chain entry is a commit with the empty tree and the ledger subject; the walk stops at
/// anything else (then that commit counts as a recorded tip: whatever the ref reaches is the
/// session's, however it got there).
pub fn read(repo: &gix::Repository, head: ObjectId) -> anyhow::Result<Ledger> {
    let empty_tree = ObjectId::empty_tree(repo.object_hash());
    let mut ledger = Ledger::new(head);
    let mut next = Some(head);
    while let Some(id) = next.take() {
        let commit = repo
            .find_commit(id)
            .with_context(|| format!("cannot read ledger entry {id}"))?;
        let entry = Entry {
            id,
            is_ledger: commit.tree_id()?.detach() == empty_tree,
            parents: commit.parent_ids().map(|p| p.detach()).collect(),
            message: commit.message_raw_sloppy().to_string(),
        };
        next = ledger.add(entry);
    }
    Ok(ledger)
}

/// As [`read`], through the git CLI (a server's quarantined push is visible only to git).
pub fn read_with_git(git: &super::Git, cwd: &Utf8Path, head: ObjectId) -> anyhow::Result<Ledger> {
    let out = git.run(
        cwd,
        &[
            "log",
            "--first-parent",
            "--format=%x01%H %T %P%n%B",
            &head.to_string(),
        ],
    )?;
    let empty_tree = ObjectId::empty_tree(head.kind()).to_string();
    let mut ledger = Ledger::new(head);
    let mut expected = Some(head);
    for record in out.split('\u{1}').filter(|r| !r.is_empty()) {
        let (ids, message) = record.split_once('\n').unwrap_or((record, ""));
        let mut ids = ids.split(' ');
        let (Some(id), Some(tree)) = (ids.next(), ids.next()) else {
            break;
        };
        let Ok(id) = ObjectId::from_hex(id.as_bytes()) else {
            break;
        };
        if Some(id) != expected {
            break;
        }
        let entry = Entry {
            id,
            is_ledger: tree == empty_tree,
            parents: ids
                .filter_map(|p| ObjectId::from_hex(p.as_bytes()).ok())
                .collect(),
            message: message.to_string(),
        };
        expected = ledger.add(entry);
        if expected.is_none() {
            break;
        }
    }
    Ok(ledger)
}

/// One commit met on a ledger's first-parent chain.
struct Entry {
    id: ObjectId,
    /// It has the empty tree.
    is_ledger: bool,
    parents: Vec<ObjectId>,
    message: String,
}

impl Ledger {
    fn new(head: ObjectId) -> Ledger {
        Ledger {
            head,
            base: None,
            chain: HashSet::new(),
            tips: HashSet::new(),
        }
    }

    /// Takes in the next entry of the chain; returns the one after it, if the chain goes on.
    fn add(&mut self, entry: Entry) -> Option<ObjectId> {
        if !entry.is_ledger || !entry.message.starts_with(SUBJECT) {
            self.tips.insert(entry.id);
            return None;
        }
        if self.base.is_none() {
            self.base = entry
                .message
                .lines()
                .find_map(|l| l.strip_prefix("base "))
                .and_then(|hex| ObjectId::from_hex(hex.trim().as_bytes()).ok());
        }
        if !self.chain.insert(entry.id) {
            return None;
        }
        let mut parents = entry.parents.into_iter();
        let next = parents.next();
        self.tips.extend(parents);
        next
    }
}

/// The ledger of session `id`, if it has one.
pub fn of(repo: &gix::Repository, id: &str) -> anyhow::Result<Option<Ledger>> {
    match super::steady_refs::find(repo, &ledger_ref(id))? {
        Some(reference) => match reference.target().try_id() {
            Some(head) => Ok(Some(read(repo, head.to_owned())?)),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// Every ledger: `(session id, head)`.
pub fn all(repo: &gix::Repository) -> anyhow::Result<Vec<(String, ObjectId)>> {
    let mut out = Vec::new();
    for reference in super::steady_refs::list(repo, LEDGER_PREFIX)? {
        let name = reference.name().as_bstr().to_string();
        if let (Some(id), Some(head)) = (
            name.strip_prefix(LEDGER_PREFIX),
            reference.target().try_id(),
        ) {
            out.push((id.to_string(), head.to_owned()));
        }
    }
    Ok(out)
}

/// Adds `tips` (commits that are, or were, the session's) to session `id`'s ledger, making it
/// with `base` when it has none. Commits already recorded, and ids that name no commit here,
/// are left out; nothing is written when nothing is new. Concurrent writers are serialised by
/// the ref's lock: a writer that finds it taken retries.
pub fn record(
    repo: &gix::Repository,
    id: &str,
    base: Option<ObjectId>,
    tips: &[ObjectId],
) -> anyhow::Result<()> {
    let name = ledger_ref(id);
    let mut last_error = None;
    for _ in 0..8 {
        match record_locked(repo, id, base, tips) {
            Ok(()) => return Ok(()),
            Err(err) => last_error = Some(err),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context(format!(
            "cannot record the commits of session '{id}' in {name}"
        )))
}

/// One attempt of [`record`]: the ref is locked before anything is written, so a writer that
/// cannot write the ref writes no entry either. (A hook fired inside a confined run, where
/// the refs are read-only, would otherwise leave an entry in the agent's store that the
/// run's end takes in as one of the agent's commits: a session commit that never lands.)
fn record_locked(
    repo: &gix::Repository,
    id: &str,
    base: Option<ObjectId>,
    tips: &[ObjectId],
) -> anyhow::Result<()> {
    let name = ledger_ref(id);
    let lock = super::loose_lock::LooseLock::take(repo, &name)?;
    let current = of(repo, id)?;
    let mut fresh: Vec<ObjectId> = Vec::new();
    for tip in tips {
        let known = current
            .as_ref()
            .is_some_and(|l| l.tips.contains(tip) || l.chain.contains(tip));
        if !known && !fresh.contains(tip) && repo.find_commit(*tip).is_ok() {
            fresh.push(*tip);
        }
    }
    if fresh.is_empty() && current.is_some() {
        return Ok(());
    }
    let base = current.as_ref().and_then(|l| l.base).or(base);
    let entry = write_entry(repo, id, base, current.as_ref().map(|l| l.head), &fresh)?;
    lock.commit(entry)
}

/// Deletes session `id`'s ledger if it still points at `head`.
pub fn delete(repo: &gix::Repository, id: &str, head: ObjectId) -> anyhow::Result<()> {
    set(
        repo,
        &ledger_ref(id),
        None,
        PreviousValue::MustExistAndMatch(Target::Object(head)),
    )
}

fn signature() -> gix::actor::Signature {
    let seconds = jiff::Timestamp::now().as_second();
    gix::actor::Signature {
        name: "git-codex".into(),
        email: "git-codex@localhost".into(),
        time: gix::date::Time { seconds, offset: 0 },
    }
}

fn write_entry(
    repo: &gix::Repository,
    id: &str,
    base: Option<ObjectId>,
    previous: Option<ObjectId>,
    tips: &[ObjectId],
) -> anyhow::Result<ObjectId> {
    let tree = repo.write_object(gix::objs::Tree::empty())?.detach();
    let mut message = format!("{SUBJECT} for session {id}\n\n");
    if let Some(base) = base {
        message.push_str(&format!("base {base}\n"));
    }
    let commit = gix::objs::Commit {
        tree,
        parents: previous.into_iter().chain(tips.iter().copied()).collect(),
        author: signature(),
        committer: signature(),
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo.write_object(&commit)?.detach())
}

fn set(
    repo: &gix::Repository,
    name: &str,
    new: Option<ObjectId>,
    expected: PreviousValue,
) -> anyhow::Result<()> {
    let change = match new {
        Some(id) => Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: "git-codex: record session commits".into(),
            },
            expected,
            new: Target::Object(id),
        },
        None => Change::Delete {
            expected,
            log: RefLog::AndReference,
        },
    };
    let edit = RefEdit {
        change,
        name: name.try_into()?,
        deref: false,
    };
    let signature = signature();
    let mut time = gix::date::parse::TimeBuf::default();
    repo.edit_references_as([edit], Some(signature.to_ref(&mut time)))?;
    Ok(())
}

/// The object ids a reflog (`<old> <new> <who>\t<message>` lines: every value the ref had
/// while the log was kept) or a detached `HEAD` file names, first two words of each line.
/// Read without following a link (a worktree's admin dir is the agent's to write); a
/// missing or unreadable file names nothing.
pub fn commit_ids_in(path: &Utf8Path) -> Vec<ObjectId> {
    use std::io::{Read as _, Seek as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    // A reflog a confined agent wrote may be any size (a sparse file of many GiB costs it
    // nothing): only its newest entries are read, and what it made is recorded from its
    // objects anyway.
    const TAIL: u64 = 16 * 1024 * 1024;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let Ok(mut file) = opened else {
        return Vec::new();
    };
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    let skip = meta.len().saturating_sub(TAIL);
    if skip > 0 && file.seek(std::io::SeekFrom::Start(skip)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.take(TAIL).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    // Cut into the middle of a line: that line is not read.
    let lines = if skip > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in lines.lines() {
        let mut parts = line.split(' ');
        for hex in [parts.next(), parts.next()].into_iter().flatten() {
            if let Ok(id) = ObjectId::from_hex(hex.as_bytes())
                && !id.is_null()
                && seen.insert(id)
            {
                out.push(id);
            }
        }
    }
    out
}

#[cfg(test)]
mod reflog_tests {
    use super::*;

    #[test]
    fn only_the_newest_part_of_a_huge_reflog_is_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = camino::Utf8PathBuf::from_path_buf(dir.path().join("HEAD")).expect("utf-8");
        let old = "1111111111111111111111111111111111111111";
        let new = "2222222222222222222222222222222222222222";
        let line = |id: &str| format!("{} {id} a <a@x> 1 +0000\tx\n", "0".repeat(40));
        let file = std::fs::File::create(&path).expect("create");
        use std::io::Write as _;
        (&file).write_all(line(old).as_bytes()).expect("old line");
        // A sparse GiB of nothing between the oldest and the newest entry.
        file.set_len(1 << 30).expect("sparse");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.write_all(format!("\n{}", line(new)).as_bytes())
            .expect("new line");
        let ids = commit_ids_in(&path);
        assert_eq!(ids, vec![ObjectId::from_hex(new.as_bytes()).expect("id")]);
    }
}
