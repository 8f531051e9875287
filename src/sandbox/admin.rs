//! A confined agent's own view of its worktree's admin dir (`.git/worktrees/<name>/`).
//!
//! Why: the agent's new objects live in its own object dir until the run settles. Were its
//! HEAD, index and reflog written into the shared admin dir, they would name objects only
//! that dir holds, and every history-wide command of the person's (`git log --all`, `gc`,
//! `maintenance run`, `fsck`) would fail ("bad object worktrees/<name>/HEAD") for as long as
//! the agent runs. So the agent gets a copy, made when the run starts and mounted over the
//! admin dir in its sandbox, and the shared one stays as the person left it: HEAD on the
//! session's branch, an index of objects the shared store has. When the run settles (its
//! objects imported first), the copy is mirrored back and removed.
//!
//! The copy is the agent's to write: nothing in it is followed or trusted. Only regular files
//! and dirs come back; links, fifos, sockets and devices are left out and named, a sparse file
//! (costing the agent no disk, but the person's git minutes to read) leaves the person's
//! version in place, and a lock file (its git is gone) is not copied. Mirroring is idempotent:
//! a settle cut short does it again.
//!
//! Nor does an operation the agent left in progress come back ([`is_operation_state`]): a
//! rebase stopped at `break` with an `exec` line queued, a cherry-pick sequence, an `am`, a
//! merge. The person's git would go on with it (`git rebase --continue`, `git commit`), and
//! run what the agent wrote there (an `exec` line, a merge strategy's program) unconfined,
//! as the person. The agent can end an operation the person had started (what it removed
//! goes), never start or change one; its commits and files are kept either way.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};

use anyhow::Context as _;
use camino::Utf8Path;

/// Files of the shared admin dir the agent's copy never replaces: what ties the worktree to
/// the repository (pinned read-only in the sandbox anyway), the lock that keeps git from
/// pruning it, HEAD, which settling decides (see `confine::reattach`), and [`MODULES`].
const KEPT: [&str; 6] = [
    "HEAD",
    "commondir",
    "gitdir",
    "config.worktree",
    "locked",
    MODULES,
];

/// The git dirs of the worktree's submodules: whole repositories, too big to copy for every
/// run. The agent gets the shared dir itself, mounted into its copy, as before it had a copy.
pub const MODULES: &str = "modules";

/// The dirs where git keeps an operation in progress that a later command goes on with:
/// `rebase --continue` runs the `exec` lines of `rebase-merge/git-rebase-todo`, a sequencer's
/// `opts` names a merge strategy (a program), `am --continue` applies `rebase-apply/`.
pub const OPERATION_DIRS: [&str; 4] = [
    "rebase-merge",
    "rebase-apply",
    "sequencer",
    "NOTES_MERGE_WORKTREE",
];

/// The files that mark an operation in progress, or hold its message or state (`git commit`
/// concludes a merge or cherry-pick from them). Inside a run git cannot delete a pseudo-ref
/// (a ref deletion needs `packed-refs.lock` in the read-only common dir), so a finished
/// rebase leaves `CHERRY_PICK_HEAD` and `AUTO_MERGE` behind too.
const OPERATION_FILES: [&str; 10] = [
    "MERGE_HEAD",
    "MERGE_MSG",
    "MERGE_MODE",
    "MERGE_RR",
    "MERGE_AUTOSTASH",
    "SQUASH_MSG",
    "AUTO_MERGE",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "REBASE_HEAD",
];

/// Whether a top-level name of an admin dir is state of an operation in progress (see the
/// module's comment): never copied back from the agent's view.
pub fn is_operation_state(name: &str) -> bool {
    OPERATION_DIRS.contains(&name)
        || OPERATION_FILES.contains(&name)
        || name.starts_with("BISECT_")
        || name.starts_with("NOTES_MERGE_")
}

/// What mirroring the agent's view back left out.
#[derive(Debug, Default)]
pub struct Mirrored {
    /// Entries that are not git's kind of file (links, fifos, unreadable dirs).
    pub left_out: Vec<String>,
    /// Operation state the agent left that the person's admin dir does not hold as is.
    pub operations: Vec<String>,
}

/// How deep a copy goes: git's own files in an admin dir lie a few levels down (`refs/bisect/`,
/// `logs/refs/worktree/…`); a deeper tree is the agent's, and would make paths too long to use.
const DEPTH: usize = 24;

/// Makes `view` a fresh copy of the shared admin dir `shared`, HEAD as `head`.
pub fn make_view(shared: &Utf8Path, view: &Utf8Path, head: &str) -> anyhow::Result<()> {
    // Only ever git-codex's: made here, removed when the run settles.
    if std::fs::symlink_metadata(view).is_ok() {
        fs_err::remove_dir_all(view)?;
    }
    fs_err::create_dir_all(view)?;
    mirror(shared, view, &[MODULES])?;
    if has_modules(shared) {
        // Where the shared one is mounted.
        fs_err::create_dir(view.join(MODULES))?;
    }
    crate::state::atomic_write(&view.join("HEAD"), head.as_bytes())
}

/// Whether the shared admin dir has submodules' git dirs to mount into the agent's copy.
pub fn has_modules(shared: &Utf8Path) -> bool {
    kind_of(&shared.join(MODULES)) == Some(Kind::Dir)
}

/// Mirrors the agent's `view` back over the shared admin dir `shared`, but for [`KEPT`] and
/// operation state, which only goes when the agent's view no longer has it. Returns what it
/// left out, for a warning.
pub fn mirror_back(view: &Utf8Path, shared: &Utf8Path) -> anyhow::Result<Mirrored> {
    let mut operations = Vec::new();
    for name in names_in(view)? {
        if is_operation_state(&name) && !same_tree(&view.join(&name), &shared.join(&name), 0) {
            let dir = kind_of(&view.join(&name)) == Some(Kind::Dir);
            operations.push(if dir { format!("{name}/") } else { name });
        }
    }
    // What the view still has stays in the person's admin dir as the person has it (or
    // absent); what the view no longer has goes (the agent ended it).
    let in_view: Vec<String> = names_in(view)?
        .into_iter()
        .filter(|name| is_operation_state(name))
        .collect();
    let mut keep: Vec<&str> = KEPT.to_vec();
    keep.extend(in_view.iter().map(String::as_str));
    Ok(Mirrored {
        left_out: mirror(view, shared, &keep)?,
        operations,
    })
}

/// Whether `a` and `b` hold the same: both regular files with the same bytes, or both dirs
/// with the same names holding the same (down to [`DEPTH`]).
fn same_tree(a: &Utf8Path, b: &Utf8Path, depth: usize) -> bool {
    match (kind_of(a), kind_of(b)) {
        (Some(Kind::File), Some(Kind::File)) => {
            let read = |p: &Utf8Path| crate::state::read_regular_file(p).ok().flatten();
            matches!((read(a), read(b)), (Some(x), Some(y)) if x == y)
        }
        (Some(Kind::Dir), Some(Kind::Dir)) if depth < DEPTH => match (names_in(a), names_in(b)) {
            (Ok(x), Ok(y)) if x == y => x
                .iter()
                .all(|name| same_tree(&a.join(name), &b.join(name), depth + 1)),
            _ => false,
        },
        _ => false,
    }
}

/// What an entry is, judged without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    /// A regular file with far less disk under it than its length claims.
    Sparse,
    /// A link, fifo, socket or device.
    Other,
}

fn kind_of(path: &Utf8Path) -> Option<Kind> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let kind = meta.file_type();
    Some(if kind.is_dir() {
        Kind::Dir
    } else if kind.is_file() && sparse(&meta) {
        Kind::Sparse
    } else if kind.is_file() {
        Kind::File
    } else {
        Kind::Other
    })
}

/// Whether a file claims more than a little beyond the disk it holds.
pub fn sparse(meta: &std::fs::Metadata) -> bool {
    let allocated = meta.blocks().saturating_mul(512);
    allocated.saturating_add(1 << 20) < meta.len()
}

/// A lock file of git's: meaningful only while the git that made it runs.
fn is_lock(name: &str) -> bool {
    name.ends_with(".lock")
}

/// Makes `to` hold what `from` holds, but for the top-level names in `keep` (left alone in
/// `to`) and lock files. Returns the entries of `from` it left out as not git's kind of file.
fn mirror(from: &Utf8Path, to: &Utf8Path, keep: &[&str]) -> anyhow::Result<Vec<String>> {
    remove_absent(from, to, keep, Utf8Path::new(""))?;
    let mut left_out = Vec::new();
    copy_present(from, to, keep, Utf8Path::new(""), &mut left_out)?;
    Ok(left_out)
}

/// Removes from `to` each entry under `rel` that `from` lacks, or has as another kind.
fn remove_absent(
    from: &Utf8Path,
    to: &Utf8Path,
    keep: &[&str],
    rel: &Utf8Path,
) -> anyhow::Result<()> {
    for name in names_in(&to.join(rel))? {
        if (rel.as_str().is_empty() && keep.contains(&name.as_str())) || is_lock(&name) {
            continue;
        }
        let here = rel.join(&name);
        let (source, target) = (kind_of(&from.join(&here)), kind_of(&to.join(&here)));
        match (source, target) {
            (Some(Kind::Dir), Some(Kind::Dir)) if here.components().count() < DEPTH => {
                remove_absent(from, to, keep, &here)?
            }
            (Some(Kind::Dir), Some(Kind::Dir)) => {}
            // A sparse file in the copy: the version here stays (see the module's comment).
            (Some(Kind::File | Kind::Sparse), Some(Kind::File | Kind::Sparse)) => {}
            (_, Some(Kind::Dir)) => fs_err::remove_dir_all(to.join(&here))?,
            (_, Some(_)) => fs_err::remove_file(to.join(&here))?,
            (_, None) => {}
        }
    }
    Ok(())
}

/// Copies into `to` each dir and regular file under `rel` in `from`.
fn copy_present(
    from: &Utf8Path,
    to: &Utf8Path,
    keep: &[&str],
    rel: &Utf8Path,
    left_out: &mut Vec<String>,
) -> anyhow::Result<()> {
    let Ok(names) = names_in(&from.join(rel)) else {
        // Unreadable (the agent's view, say, made so): nothing of it comes back.
        left_out.push(rel.to_string());
        return Ok(());
    };
    for name in names {
        if (rel.as_str().is_empty() && keep.contains(&name.as_str())) || is_lock(&name) {
            continue;
        }
        let here = rel.join(&name);
        match kind_of(&from.join(&here)) {
            Some(Kind::Dir) if here.components().count() < DEPTH => {
                if kind_of(&to.join(&here)) != Some(Kind::Dir) {
                    fs_err::create_dir(to.join(&here))?;
                }
                copy_present(from, to, keep, &here, left_out)?;
            }
            Some(Kind::File) if copy_file(&from.join(&here), &to.join(&here))? => {}
            Some(_) => left_out.push(here.to_string()),
            None => {}
        }
    }
    Ok(())
}

/// The names in `dir`, a real dir; none when it is missing.
fn names_in(dir: &Utf8Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(anyhow::Error::new(err).context(format!("cannot read {dir}"))),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {dir}"))?;
        // A name that is not UTF-8 is no file of git's.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Copies the regular file `from` to `to` unless `to` already holds the same bytes: through a
/// new temporary file renamed over `to`, so nothing is ever written through a link. Returns
/// false, copying nothing, when `from` cannot be opened as a regular file.
fn copy_file(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<bool> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from);
    let Ok(mut source) = opened else {
        return Ok(false);
    };
    if !source.metadata()?.is_file() {
        return Ok(false);
    }
    if same_bytes(&mut source, to)? {
        return Ok(true);
    }
    let dir = to.parent().context("a file with no parent dir")?;
    let tmp = dir.join(format!(
        ".{}.git-codex{}",
        to.file_name().unwrap_or("file"),
        std::process::id()
    ));
    let mut out = crate::state::create_fresh(&tmp)?;
    let copied = std::io::copy(&mut source, &mut out)
        .and_then(|_| out.flush())
        .and_then(|()| out.sync_all());
    if let Err(err) = copied.map_err(anyhow::Error::from).and_then(|()| {
        fs_err::rename(&tmp, to)?;
        Ok(())
    }) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.context(format!("cannot copy {from} to {to}")));
    }
    Ok(true)
}

/// Whether the regular file at `path` holds what `source` holds from its start; leaves
/// `source` at its start either way.
fn same_bytes(source: &mut std::fs::File, path: &Utf8Path) -> anyhow::Result<bool> {
    use std::io::Seek as _;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(false);
    };
    let same = meta.is_file()
        && meta.len() == source.metadata()?.len()
        && match crate::state::read_regular_file(path)? {
            Some(there) => {
                let mut here = Vec::with_capacity(there.len());
                source.read_to_end(&mut here)?;
                here == there
            }
            None => false,
        };
    source.seek(std::io::SeekFrom::Start(0))?;
    Ok(same)
}
