//! Work in a session worktree that a plain status does not show: tracked files outside the
//! sparse checkout that are on disk (their index entries say skip-worktree, which gix
//! trusts), and nested repositories whose HEAD moved off the commit their gitlink names
//! (their status is never asked, so that no config of theirs runs). Everything here reads
//! files in-process, as plain files only: no git runs inside a nested repository, no link
//! is followed where the agent writes, and a fifo cannot hang the reader.

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};

/// The most a HEAD, a loose ref or a `.git` file may hold, and a `packed-refs` file.
const SMALL: u64 = 4096;
const PACKED_REFS: u64 = 64 << 20;

/// Whether a skip-worktree entry of `index` (a file outside the sparse checkout, or a sparse
/// index's directory) has something on disk again: git clears the mark for such a file and
/// `git add --sparse` stages it. A link or a file where a directory of the path should be
/// counts as something, so the answer errs towards "changed".
pub fn skipped_but_present(worktree: &Utf8Path, index: &gix::index::State) -> bool {
    let mut dirs: HashMap<Vec<u8>, Presence> = HashMap::new();
    index
        .entries()
        .iter()
        .filter(|e| e.flags.contains(gix::index::entry::Flags::SKIP_WORKTREE))
        .any(|entry| present(worktree, entry.path(index), &mut dirs))
}

#[derive(Clone, Copy, PartialEq)]
enum Presence {
    Missing,
    Dir,
    Other,
}

fn lstat(path: &Utf8Path) -> Presence {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Presence::Dir,
        Ok(_) => Presence::Other,
        Err(_) => Presence::Missing,
    }
}

/// Whether `path` (relative, `/`-separated) exists under `worktree`, each of its directories
/// checked once and without following a link.
fn present(worktree: &Utf8Path, path: &BStr, dirs: &mut HashMap<Vec<u8>, Presence>) -> bool {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    let Ok(text) = std::str::from_utf8(path) else {
        return true;
    };
    for at in path.find_iter("/") {
        let dir = &path[..at];
        let presence = *dirs
            .entry(dir.to_vec())
            .or_insert_with(|| lstat(&worktree.join(&text[..at])));
        match presence {
            Presence::Missing => return false,
            Presence::Other => return true,
            Presence::Dir => {}
        }
    }
    lstat(&worktree.join(text)) != Presence::Missing
}

/// Whether a gitlink of `index` names another commit than its nested repository has checked
/// out: the agent committed or switched there, and `git add` would record the move.
pub fn moved_gitlink(worktree: &Utf8Path, index: &gix::index::State) -> bool {
    index
        .entries()
        .iter()
        .filter(|e| e.mode == gix::index::entry::Mode::COMMIT)
        .any(|entry| {
            let Ok(path) = std::str::from_utf8(entry.path(index)) else {
                return true;
            };
            nested_head(&worktree.join(path))
                .is_some_and(|head| head != entry.id && head.kind() == entry.id.kind())
        })
}

/// The commit checked out in the nested repository at `dir` (a dir with a `.git` dir, or a
/// `.git` file naming its git dir): what `git add` would record for its gitlink. `None` when
/// it cannot be read that way (not a repository, a link on the way, reftable refs).
pub fn nested_head(dir: &Utf8Path) -> Option<ObjectId> {
    if lstat(dir) != Presence::Dir {
        return None;
    }
    let dot_git = dir.join(".git");
    let git_dir = match lstat(&dot_git) {
        Presence::Dir => dot_git,
        Presence::Other => {
            let text = small_file(&dot_git, SMALL)?;
            let named = text.strip_prefix(b"gitdir:")?.trim();
            dir.join(std::str::from_utf8(named).ok()?)
        }
        Presence::Missing => return None,
    };
    let common = match small_file(&git_dir.join("commondir"), SMALL) {
        Some(text) => git_dir.join(std::str::from_utf8(text.trim()).ok()?),
        None => git_dir.clone(),
    };
    let mut content = small_file(&git_dir.join("HEAD"), SMALL)?;
    // A symbolic ref may name another; git gives up after five.
    for _ in 0..5 {
        let text = content.trim();
        let Some(name) = text.strip_prefix(b"ref:") else {
            return ObjectId::from_hex(text).ok();
        };
        let name = std::str::from_utf8(name.trim()).ok()?;
        if !name.starts_with("refs/") || name.split('/').any(|c| c.is_empty() || c == "..") {
            return None;
        }
        content = match small_file(&common.join(name), SMALL) {
            Some(loose) => loose,
            None => packed(&common, name)?,
        };
    }
    None
}

/// `name`'s commit in the `packed-refs` file of `common`, as a line of it.
fn packed(common: &Utf8Path, name: &str) -> Option<Vec<u8>> {
    let text = small_file(&common.join("packed-refs"), PACKED_REFS)?;
    text.lines()
        .filter(|line| !line.starts_with(b"#") && !line.starts_with(b"^"))
        .find_map(|line| {
            let (id, refname) = line.split_once_str(" ")?;
            (refname == name.as_bytes()).then(|| id.to_vec())
        })
}

/// The bytes of `path` when it is a regular file of at most `max` bytes (never through a
/// link at its end, never a fifo or a device).
fn small_file(path: &Utf8PathBuf, max: u64) -> Option<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_nested_head_through_gitfiles_symrefs_and_packed_refs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Utf8Path::from_path(dir.path()).expect("utf-8");
        let one = "1".repeat(40);
        let two = "2".repeat(40);
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs_err::create_dir_all(path.parent().expect("parent")).expect("dir");
            fs_err::write(path, text).expect("write");
        };
        write("a/.git/HEAD", "ref: refs/heads/main\n");
        write("a/.git/refs/heads/main", &format!("{one}\n"));
        write("b/.git", "gitdir: ../modules/b\n");
        write("modules/b/HEAD", "ref: refs/heads/x\n");
        write(
            "modules/b/packed-refs",
            &format!("# pack\n{two} refs/heads/x\n"),
        );
        write("c/.git/HEAD", "ref: refs/heads/../../../../etc/passwd\n");
        write("d/.git/HEAD", &format!("{two}\n"));
        std::os::unix::fs::symlink(root.join("a"), root.join("link")).expect("link");
        assert_eq!(
            nested_head(&root.join("a")),
            ObjectId::from_hex(one.as_bytes()).ok()
        );
        assert_eq!(
            nested_head(&root.join("b")),
            ObjectId::from_hex(two.as_bytes()).ok()
        );
        assert_eq!(nested_head(&root.join("c")), None);
        assert_eq!(
            nested_head(&root.join("d")),
            ObjectId::from_hex(two.as_bytes()).ok()
        );
        assert_eq!(nested_head(&root.join("link")), None);
        assert_eq!(nested_head(&root.join("missing")), None);
    }
}
