//! Git lock files a killed git left behind (issue 16, point 2): an agent killed with its
//! git-codex leaves `index.lock` or `HEAD.lock` in its worktree's admin dir, a killed merge
//! leaves one in the repository's, and every git there then fails ("Unable to create
//! '…/index.lock': File exists") until a person deletes it.
//!
//! git-codex moves such a lock aside only when it is provably stale: no live process of the
//! session (its recorded agent, any process whose cwd is in its worktree, any git whose
//! cwd or `GIT_DIR` is in the repository) and no process holding the file open. A lock
//! held by a live process is never touched. What is moved goes to the trash
//! (`<state>/trash/git-locks@<seconds>/…`), not deleted: a `HEAD.lock` may name the only
//! copy of a commit id.

use std::os::unix::fs::MetadataExt as _;

use camino::{Utf8Path, Utf8PathBuf};

use crate::git::read::RepoPaths;
use crate::output;
use crate::state::record::AgentRun;
use crate::state::{SessionRecord, StateDir};

/// A lock file found, and what holds it (`None`: provably stale).
#[derive(Debug)]
pub struct Found {
    pub path: Utf8PathBuf,
    pub holder: Option<String>,
    /// Which file it was when found, before its holders were looked for: another lock at
    /// the same path by then is a newer git's, and is left alone.
    file: Option<FileId>,
}

/// A file's device, inode and change time: a new file may get a deleted one's inode.
type FileId = (u64, u64, i64, i64);

/// The [`FileId`] of the file at `path`, not following a link.
fn file_id(path: &Utf8Path) -> Option<FileId> {
    fs_err::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// The lock files of a git dir (an admin dir, or the repository's common dir): `*.lock` at
/// its top and under `refs/`. Symlinks are not followed.
fn lock_files(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out, false);
    // `refs` as a real dir only: a link there (an open agent's doing) is not followed.
    let refs = dir.join("refs");
    if fs_err::symlink_metadata(&refs).is_ok_and(|m| m.is_dir()) {
        collect(&refs, &mut out, true);
    }
    out
}

fn collect(dir: &Utf8Path, out: &mut Vec<Utf8PathBuf>, deep: bool) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() && path.extension() == Some("lock") {
            out.push(path);
        } else if deep && kind.is_dir() {
            collect(&path, out, true);
        }
    }
}

/// One live process, as much of it as `/proc` shows.
struct Process {
    pid: u32,
    name: String,
    cwd: Option<Utf8PathBuf>,
    open: Vec<Utf8PathBuf>,
    git_dir: Option<Utf8PathBuf>,
    /// A git's arguments (`--git-dir=…`, `-C …` name where it works from elsewhere).
    args: Vec<String>,
}

/// This process's ancestors (the person's shell, say, whose cwd may well be the worktree).
fn ancestors() -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::process::id();
    while let Some(up) = crate::procfs::parent_of(pid).filter(|p| *p > 1 && !out.contains(p)) {
        out.push(up);
        pid = up;
    }
    out
}

/// Every live process but this one and its ancestors that are no git (a git up the chain,
/// one whose hook runs git-codex, may hold a lock). Processes of other users show too
/// little to matter: they cannot write the person's repository.
fn processes() -> Vec<Process> {
    let me = std::process::id();
    let up = ancestors();
    let mut out = Vec::new();
    for pid in crate::procfs::pids() {
        // A git killed a moment ago is still listed while it exits: it holds nothing.
        if pid == me || crate::procfs::is_exiting(pid) {
            continue;
        }
        let utf8 = |p: std::path::PathBuf| Utf8PathBuf::from_path_buf(p).ok();
        let mut process = Process {
            pid,
            name: crate::procfs::name(pid),
            cwd: crate::procfs::cwd(pid).and_then(utf8),
            open: crate::procfs::open_files(pid)
                .into_iter()
                .filter_map(utf8)
                .collect(),
            git_dir: crate::procfs::env_var(pid, "GIT_DIR")
                .or_else(|| crate::procfs::env_var(pid, "GIT_COMMON_DIR"))
                .map(Utf8PathBuf::from),
            args: Vec::new(),
        };
        if process.is_git() {
            process.args = crate::procfs::args(pid);
            // The git that ran `git codex …` holds nothing: it waits for this process.
            if up.contains(&pid) && process.dispatches_codex() {
                continue;
            }
        } else if up.contains(&pid) {
            continue;
        }
        out.push(process);
    }
    out
}

impl Process {
    fn describe(&self) -> String {
        format!("pid {} ({})", self.pid, self.name)
    }

    /// Whether this git is `git [options] codex …`: its first word that is no option (nor an
    /// option's value) is `codex`.
    fn dispatches_codex(&self) -> bool {
        let mut words = self.args.iter().skip(1);
        while let Some(word) = words.next() {
            match word.as_str() {
                "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace" | "--exec-path"
                | "--config-env" => {
                    words.next();
                }
                w if w.starts_with('-') => {}
                w => return w == "codex",
            }
        }
        false
    }

    fn is_git(&self) -> bool {
        self.name == "git" || self.name.starts_with("git-")
    }

    fn works_in(&self, dir: &Utf8Path) -> bool {
        self.cwd.as_ref().is_some_and(|c| c.starts_with(dir))
            || self.git_dir.as_ref().is_some_and(|g| g.starts_with(dir))
            || self.args.iter().any(|a| a.contains(dir.as_str()))
    }
}

/// Whatever holds a lock of a session's worktree: its agent, a process at work in the
/// worktree, a git in the repository, a process holding the file open.
fn session_holder(
    paths: &RepoPaths,
    session: &Session<'_>,
    lock: &Utf8Path,
    all: &[Process],
) -> Option<String> {
    if let Some(agent) = session.agent.filter(|a| a.is_alive()) {
        return Some(format!("the session's agent, pid {}", agent.pid));
    }
    let worktree = canonical(session.worktree);
    all.iter()
        .find(|p| {
            p.open.iter().any(|o| o == lock)
                || p.works_in(&worktree)
                || (p.is_git() && p.works_in(&paths.common_dir))
        })
        .map(Process::describe)
}

/// Whatever holds a lock of the repository's own git dir: a process holding it open, a git
/// at work anywhere in the repository, a live agent of any session.
fn main_holder(
    paths: &RepoPaths,
    records: &[SessionRecord],
    lock: &Utf8Path,
    all: &[Process],
) -> Option<String> {
    // A confined agent cannot write the repository's git dir; an open one can.
    let agents = records.iter().filter_map(|r| r.agent.as_ref());
    if let Some(agent) = agents
        .filter(|a| !a.filesystem_confined)
        .find(|a| a.is_alive())
    {
        return Some(format!("a session's agent, pid {}", agent.pid));
    }
    let mut places = vec![paths.main_root.clone(), paths.common_dir.clone()];
    places.extend(records.iter().map(|r| canonical(&r.worktree)));
    all.iter()
        .find(|p| {
            p.open.iter().any(|o| o == lock) || (p.is_git() && places.iter().any(|d| p.works_in(d)))
        })
        .map(Process::describe)
}

/// `path` as `/proc` names it (links resolved), or as it is when it cannot be resolved.
fn canonical(path: &Utf8Path) -> Utf8PathBuf {
    fs_err::canonicalize(path)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| path.to_owned())
}

/// A session, as far as its locks go.
pub struct Session<'a> {
    pub id: &'a str,
    pub worktree: &'a Utf8Path,
    /// Its recorded agent, when known.
    pub agent: Option<&'a AgentRun>,
}

impl<'a> From<&'a SessionRecord> for Session<'a> {
    fn from(record: &'a SessionRecord) -> Self {
        Session {
            id: &record.id,
            worktree: &record.worktree,
            agent: record.agent.as_ref(),
        }
    }
}

/// The lock files of a session's admin dir.
pub fn find_session(paths: &RepoPaths, session: &Session<'_>) -> Vec<Found> {
    let admin = crate::git::worktrees::admin_dir_of(session.worktree, &paths.common_dir);
    let locks = admin.map(|a| lock_files(&a)).unwrap_or_default();
    if locks.is_empty() {
        return Vec::new();
    }
    let files: Vec<_> = locks.iter().map(|l| file_id(l)).collect();
    let all = processes();
    locks
        .into_iter()
        .zip(files)
        .map(|(path, file)| Found {
            holder: session_holder(paths, session, &path, &all),
            path,
            file,
        })
        .collect()
}

/// The lock files of the repository's own git dir (the main worktree's and the refs).
pub fn find_main(paths: &RepoPaths) -> Vec<Found> {
    let locks = lock_files(&paths.common_dir);
    if locks.is_empty() {
        return Vec::new();
    }
    let (records, _) = StateDir::new(&paths.common_dir)
        .records()
        .unwrap_or_default();
    let files: Vec<_> = locks.iter().map(|l| file_id(l)).collect();
    let all = processes();
    locks
        .into_iter()
        .zip(files)
        .map(|(path, file)| Found {
            holder: main_holder(paths, &records, &path, &all),
            path,
            file,
        })
        .collect()
}

/// Moves the stale ones of `found` to the trash, saying so; returns how many.
pub fn clear(paths: &RepoPaths, found: &[Found], whose: &str) -> anyhow::Result<usize> {
    let stale: Vec<&Found> = found.iter().filter(|f| f.holder.is_none()).collect();
    if stale.is_empty() {
        return Ok(0);
    }
    let into = aside_dir(&paths.common_dir)?;
    let mut moved = 0;
    for lock in &stale {
        // Kept at its path under the git dir: `worktrees/<name>/index.lock`, `refs/heads/x.lock`.
        let relative = lock
            .path
            .strip_prefix(&paths.common_dir)
            .unwrap_or(&lock.path);
        let to = into.join(relative.as_str().trim_start_matches('/'));
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent)?;
        }
        if !move_if_unchanged(&lock.path, lock.file, &to)? {
            continue;
        }
        moved += 1;
        output::note(&format!(
            "git-codex: moved the stale git lock {} of {whose} to {to} (no live process of it; a killed git left it)",
            lock.path
        ));
    }
    if moved < stale.len() {
        drop_empty_dirs(&into);
    }
    Ok(moved)
}

/// Moves a session's stale locks aside before git-codex runs git there.
pub fn clear_session(paths: &RepoPaths, session: &Session<'_>) -> anyhow::Result<usize> {
    let found = settled(paths, || find_session(paths, session));
    clear(paths, &found, &format!("session '{}'", session.id))
}

/// Moves the repository's stale locks aside before git-codex runs git in the main worktree.
pub fn clear_main(paths: &RepoPaths) -> anyhow::Result<usize> {
    clear(
        paths,
        &settled(paths, || find_main(paths)),
        "the repository",
    )
}

/// The locks `find` sees once what a killed git-codex started has ended: a git killed in a
/// transaction leaves its locks while its hook (`git-codex hook`, which no death signal
/// reaches) runs on a moment; that hook would count as their holder, and may take a lock
/// of its own (`index.lock`) just after they were judged.
fn settled(paths: &RepoPaths, find: impl Fn() -> Vec<Found>) -> Vec<Found> {
    let places = [paths.main_root.clone(), paths.common_dir.clone()];
    if crate::git::orphans::orphans_at_work(&places) {
        crate::git::orphans::wait_for_orphans(&places, crate::git::orphans::WAIT);
    }
    find()
}

/// A new dir in the trash for what is moved now.
fn aside_dir(common_dir: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    let root = super::trash::root(common_dir);
    fs_err::create_dir_all(&root)?;
    let secs = jiff::Timestamp::now().as_second();
    for attempt in 0..1000u32 {
        let dir = root.join(format!("git-locks@{secs}-{attempt}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(anyhow::Error::new(err).context(format!("cannot create {dir}"))),
        }
    }
    anyhow::bail!("cannot make a new dir in {root}")
}

/// Renames `from` to `to` when it is still the file that was found stale (`found`), saying
/// whether it did: a lock gone meanwhile (its git ended) needs nothing, and one a git took
/// anew since is in use (what a rename caught mid-way moved is put back).
fn move_if_unchanged(
    from: &Utf8Path,
    found: Option<FileId>,
    to: &Utf8Path,
) -> anyhow::Result<bool> {
    let Some(before) = file_id(from) else {
        return Ok(false);
    };
    if Some(before) != found {
        return Ok(false);
    }
    match fs_err::rename(from, to) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err.into()),
    }
    let after = fs_err::symlink_metadata(to)?;
    if (before.0, before.1) != (after.dev(), after.ino()) {
        // Never over a lock taken since.
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            to.as_std_path(),
            rustix::fs::CWD,
            from.as_std_path(),
            rustix::fs::RenameFlags::NOREPLACE,
        )?;
        anyhow::bail!("{from} changed while it was moved aside: it is in use");
    }
    Ok(true)
}

/// Removes the dirs under and at `dir` that hold no file (made for locks that were gone by
/// the time they were to be moved). Only empty dirs go: `remove_dir` never deletes a file.
fn drop_empty_dirs(dir: &Utf8Path) {
    if let Ok(list) = fs_err::read_dir(dir) {
        for entry in list.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && let Ok(path) = Utf8PathBuf::from_path_buf(entry.path())
            {
                drop_empty_dirs(&path);
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI, refs packed in a loop under a review: a lock found stale was gone (its git ended)
    /// by the time it was to be moved, and the review failed on it. And a lock a newer git
    /// took at that path since is in use: never moved.
    #[test]
    fn a_lock_gone_or_taken_anew_since_it_was_found_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = Utf8Path::from_path(dir.path()).expect("utf-8");
        let lock = dir.join("HEAD.lock");
        let to = dir.join("aside.lock");
        fs_err::write(&lock, "").expect("write");
        let found = file_id(&lock);
        fs_err::remove_file(&lock).expect("rm");
        assert!(!move_if_unchanged(&lock, found, &to).expect("gone"));
        assert!(!to.exists());
        // A newer git's lock at the same path (the deleted one's inode may be reused).
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs_err::write(dir.join("new"), "").expect("write");
        fs_err::rename(dir.join("new"), &lock).expect("rename");
        assert!(!move_if_unchanged(&lock, found, &to).expect("newer"));
        assert!(lock.exists() && !to.exists());
        // The lock that was found is moved.
        let found = file_id(&lock);
        assert!(move_if_unchanged(&lock, found, &to).expect("stale"));
        assert!(!lock.exists() && to.exists());
    }
}
