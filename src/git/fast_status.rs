//! The quick answer to "is this session's worktree clean?", without opening it as a
//! repository: its index is read, its cache-tree compared with the branch's tree, and every
//! tracked file is `lstat`ed relative to its directory's descriptor (one path component per
//! call instead of the whole absolute path), while each directory's listing shows whether
//! anything untracked is there. The answer is `true` only when git itself would call the
//! worktree clean from these facts alone; anything unusual (a racily clean entry, an unknown
//! name that an ignore rule may cover, a conflict, a submodule, a sparse index) answers
//! `false`, and the caller asks gix's full status instead.

use std::os::fd::{AsFd, OwnedFd};

use camino::Utf8Path;
use gix::bstr::ByteSlice;
use gix::index::entry::{Flags, Mode, Stat, stat};
use rustix::fs::{AtFlags, Dir, FileType, Mode as FsMode, OFlags};

use super::read::KnownHead;
use super::worktrees::gitdir_of;
use crate::state::{SESSION_FILE, read_regular_file};

/// Whether the worktree at `worktree` certainly has `known.branch_ref` checked out, with
/// index and files exactly as the branch tip's tree has them.
pub fn certainly_clean(worktree: &Utf8Path, known: &KnownHead) -> bool {
    check(worktree, known).unwrap_or(false)
}

fn check(worktree: &Utf8Path, known: &KnownHead) -> Option<bool> {
    let admin = gitdir_of(worktree)?;
    // The admin dir and the worktree are the agent's to write: their files are read only as
    // plain files, never through a link nor from a fifo that would hang the person's command.
    let head = read_regular_file(&admin.join("HEAD")).ok()??;
    if head.trim_end() != format!("ref: {}", known.branch_ref).as_bytes() {
        return Some(false);
    }
    let index_path = admin.join("index");
    let data = read_regular_file(&index_path).ok()??;
    let mtime = filetime::FileTime::from_last_modification_time(
        &std::fs::symlink_metadata(&index_path).ok()?,
    );
    let (index, _) =
        gix::index::State::from_bytes(&data, mtime, known.hash, Default::default()).ok()?;
    let tree = index.tree()?;
    if tree.num_entries.is_none() || tree.id != known.tree || index.is_sparse() {
        return Some(false);
    }
    let root = rustix::fs::open(
        worktree.as_std_path(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        FsMode::empty(),
    )
    .ok()?;
    let walk = Walk {
        index: &index,
        options: NSEC_STAT,
        // A root `.gitignore` could re-include the session file with a `!` pattern.
        skip_session_file: known.session_file_excluded && !negates(&worktree.join(".gitignore")),
    };
    walk.dir(root, 0, index.entries(), true)
}

/// Whether the ignore file at `path` (if any) has a `!` pattern.
fn negates(path: &Utf8Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(_) => false,
        // Anything but a plain file (a fifo, a link) counts as negating: the slow, exact path.
        Ok(meta) if !meta.is_file() => true,
        Ok(_) => read_regular_file(path).map_or(true, |text| {
            text.is_none_or(|text| text.lines().any(|l| l.trim_start().starts_with(b"!")))
        }),
    }
}

/// Stat data compared to the nanosecond, as git built with `USE_NSEC` compares it: an entry is
/// racily clean only when its file changed no earlier than the index was written, to the
/// nanosecond the filesystem keeps, rather than in the same second. A file changed after the
/// index was written has a time no earlier than the index's, so it either differs from the
/// time the entry holds or is racy; git (both versions here) and gix record the nanoseconds
/// in every entry, and an entry without them simply never matches (the slow, exact path).
/// Without it every entry of a worktree just checked out is racy and every file is read.
pub(crate) const NSEC_STAT: stat::Options = stat::Options {
    trust_ctime: true,
    check_stat: true,
    use_nsec: true,
    use_stdev: false,
};

struct Walk<'a> {
    index: &'a gix::index::State,
    options: stat::Options,
    skip_session_file: bool,
}

impl Walk<'_> {
    /// Checks `entries` (all of them under the directory open as `fd`, whose path in the
    /// index is `prefix` bytes long) and that the directory holds nothing else.
    fn dir(
        &self,
        fd: OwnedFd,
        prefix: usize,
        entries: &[gix::index::Entry],
        root: bool,
    ) -> Option<bool> {
        let mut expected: Vec<&[u8]> = Vec::new();
        let mut rest = entries;
        while let Some(first) = rest.first() {
            let path = first.path(self.index);
            let name = path.get(prefix..)?;
            match name.find_byte(b'/') {
                Some(slash) => {
                    let sub = &name[..slash];
                    let child_prefix = prefix + slash + 1;
                    // Sorted by path, everything under `sub/` comes in one run.
                    let dir_path = &path[..child_prefix];
                    let run = rest
                        .iter()
                        .position(|e| !e.path(self.index).starts_with(dir_path))
                        .unwrap_or(rest.len());
                    let Ok(child) = rustix::fs::openat(
                        fd.as_fd(),
                        sub,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        FsMode::empty(),
                    ) else {
                        return Some(false);
                    };
                    if !self.dir(child, child_prefix, &rest[..run], false)? {
                        return Some(false);
                    }
                    expected.push(sub);
                    rest = &rest[run..];
                }
                None => {
                    if !self.file(&fd, name, first) {
                        return Some(false);
                    }
                    expected.push(name);
                    rest = &rest[1..];
                }
            }
        }
        expected.sort_unstable();
        let mut listing = Dir::new(fd).ok()?;
        let mut seen = 0usize;
        while let Some(entry) = listing.read() {
            let entry = entry.ok()?;
            let name = entry.file_name().to_bytes();
            if name == b"."
                || name == b".."
                || (root && name == b".git")
                || (root && self.skip_session_file && name == SESSION_FILE.as_bytes())
            {
                continue;
            }
            if expected.binary_search(&name).is_err() {
                // Untracked, or ignored: only the full status can tell.
                return Some(false);
            }
            seen += 1;
        }
        Some(seen == expected.len())
    }

    /// Whether the tracked file `name` (in the directory open as `fd`) is as the index says.
    fn file(&self, fd: &OwnedFd, name: &[u8], entry: &gix::index::Entry) -> bool {
        let unusual = Flags::INTENT_TO_ADD | Flags::SKIP_WORKTREE | Flags::ASSUME_VALID;
        if entry.stage_raw() != 0 || entry.flags.intersects(unusual) {
            return false;
        }
        let Ok(st) = rustix::fs::statat(fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) else {
            return false;
        };
        let kind = FileType::from_raw_mode(st.st_mode as _);
        let executable = st.st_mode & 0o100 != 0;
        let mode_matches = match entry.mode {
            Mode::FILE => kind == FileType::RegularFile && !executable,
            Mode::FILE_EXECUTABLE => kind == FileType::RegularFile && executable,
            Mode::SYMLINK => kind == FileType::Symlink,
            _ => false,
        };
        if !mode_matches {
            return false;
        }
        // Truncated to 32 bits as git stores them.
        #[allow(clippy::unnecessary_cast)]
        let disk = Stat {
            mtime: stat::Time {
                secs: st.st_mtime as u32,
                nsecs: st.st_mtime_nsec as u32,
            },
            ctime: stat::Time {
                secs: st.st_ctime as u32,
                nsecs: st.st_ctime_nsec as u32,
            },
            dev: st.st_dev as u32,
            ino: st.st_ino as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size as u32,
        };
        entry.stat.matches(&disk, self.options)
            && !entry.stat.is_racy(self.index.timestamp(), self.options)
    }
}
