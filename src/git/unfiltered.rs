//! A snapshot's files byte for byte (issue 15, point 7). `git add` stores a file through the
//! clean filters (`core.autocrlf`, `eol`/`text` attributes, filter drivers) and `git restore`
//! writes it back through the smudge filters: a round trip that changes line endings (an LF
//! file comes back CRLF under `core.autocrlf=true`). Those filters are for committed content;
//! what a snapshot saves was never committed. So a snapshot stores each file it changes by its
//! bytes on disk (`hash-object --no-filters`), says so in its message, and restore writes those
//! bytes back as they are.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::process::Stdio;

use anyhow::Context as _;
use camino::Utf8Path;
use gix::ObjectId;

use super::Git;
use super::read::Reader;

/// The line of a snapshot commit's message that says its files are stored unfiltered.
pub const MARKER: &str = "files: as they were on disk (unfiltered)";

/// A changed regular file: its mode, its blob and its path (as git wrote it, unquoted).
struct Changed {
    mode: &'static str,
    blob: String,
    path: Vec<u8>,
}

impl Git {
    /// Stores each regular file that the scratch `index` changes against `head` by its bytes on
    /// disk, in place of what `add` stored through the clean filters; returns the index's tree
    /// (`tree` when nothing differed).
    pub(super) fn store_unfiltered(
        &self,
        worktree: &Utf8Path,
        index: &Utf8Path,
        head: &str,
        tree: String,
    ) -> anyhow::Result<String> {
        let listing = self.bytes_with_index(
            worktree,
            Some(index),
            &["diff-index", "--cached", "-z", "--no-renames", head],
            None,
        )?;
        // Only what is a regular file now: `hash-object` must not read through a link or
        // open a fifo (a link's blob is its target, which no filter touches).
        let changed: Vec<Changed> = changed_files(&listing)
            .into_iter()
            .filter(|c| {
                std::fs::symlink_metadata(worktree.as_std_path().join(OsStr::from_bytes(&c.path)))
                    .is_ok_and(|m| m.is_file())
            })
            .collect();
        if changed.is_empty() {
            return Ok(tree);
        }
        // One path a line, C-quoted as `hash-object --stdin-paths` unquotes (a name may hold
        // a newline).
        let mut paths = Vec::new();
        for c in &changed {
            paths.extend(c_quote(&c.path));
            paths.push(b'\n');
        }
        let hashed = self.bytes_with_index(
            worktree,
            Some(index),
            &["hash-object", "-w", "--no-filters", "--stdin-paths"],
            Some(&paths),
        )?;
        let blobs: Vec<&str> = std::str::from_utf8(&hashed)?.lines().collect();
        anyhow::ensure!(
            blobs.len() == changed.len(),
            "git hash-object gave {} ids for {} files",
            blobs.len(),
            changed.len()
        );
        let mut info = Vec::new();
        for (c, blob) in changed.iter().zip(&blobs) {
            if *blob != c.blob {
                info.extend(format!("{} {blob}\t", c.mode).as_bytes());
                info.extend(&c.path);
                info.push(0);
            }
        }
        if info.is_empty() {
            return Ok(tree);
        }
        let args = ["update-index", "-z", "--index-info"];
        self.bytes_with_index(worktree, Some(index), &args, Some(&info))?;
        let tree = self.bytes_with_index(worktree, Some(index), &["write-tree"], None)?;
        Ok(String::from_utf8(tree)?.trim_end().to_string())
    }

    /// After `restore_files`: when `snapshot` stored its files unfiltered, writes each regular
    /// file it changes against its first parent back with those exact bytes (git wrote them
    /// through the smudge filters). Only over a regular file git just wrote, reached through
    /// real directories: never through a link.
    pub fn restore_unfiltered(
        &self,
        reader: &Reader,
        worktree: &Utf8Path,
        snapshot: &str,
    ) -> anyhow::Result<()> {
        let id = ObjectId::from_hex(snapshot.as_bytes())?;
        let commit = reader.repo.find_commit(id)?;
        let unfiltered = commit
            .message_raw_sloppy()
            .to_string()
            .lines()
            .any(|line| line == MARKER);
        if !unfiltered {
            return Ok(());
        }
        let parent = format!("{snapshot}^1");
        let args = ["diff-tree", "-r", "-z", "--no-renames", &parent, snapshot];
        let listing = self.bytes_with_index(worktree, None, &args, None)?;
        for file in changed_files(&listing) {
            let blob = ObjectId::from_hex(file.blob.as_bytes())?;
            let bytes = reader.repo.find_object(blob)?.detach().data;
            overwrite(worktree, &file.path, &bytes)?;
        }
        Ok(())
    }

    /// Runs git in `worktree` (with `index` as its index, if given), `input` on stdin;
    /// returns stdout as bytes.
    pub(super) fn bytes_with_index(
        &self,
        worktree: &Utf8Path,
        index: Option<&Utf8Path>,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut cmd = self.command(worktree);
        if let Some(index) = index {
            cmd.env("GIT_INDEX_FILE", index.as_str());
        }
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run git {}", args.join(" ")))?;
        let out = super::feed_and_wait(child, input.unwrap_or_default())?;
        super::check(args, &out)?;
        Ok(out.stdout)
    }
}

/// The added, modified or retyped regular files of a raw `-z` listing (`diff-index`,
/// `diff-tree`): `:<old mode> <new mode> <old id> <new id> <status>\0<path>\0`.
fn changed_files(listing: &[u8]) -> Vec<Changed> {
    let mut out = Vec::new();
    let mut fields = listing.split(|b| *b == 0);
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        let meta = String::from_utf8_lossy(meta);
        let words: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let [_, mode, _, blob, status] = words[..] else {
            continue;
        };
        let mode = match mode {
            "100644" => "100644",
            "100755" => "100755",
            _ => continue,
        };
        if matches!(status, "A" | "M" | "T") && !path.is_empty() {
            out.push(Changed {
                mode,
                blob: blob.to_string(),
                path: path.to_vec(),
            });
        }
    }
    out
}

/// `path` C-quoted: `"…"` with `\\`, `\"` and every other byte outside printable ASCII as
/// `\ooo`.
fn c_quote(path: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in path {
        match b {
            b'"' | b'\\' => out.extend([b'\\', b]),
            0x20..=0x7e => out.push(b),
            _ => out.extend(format!("\\{b:03o}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

/// Writes `bytes` over the regular file at `relative` under `worktree`, every directory on the
/// way checked to be a real one; a path that is not there, or not a regular file, is left.
pub(super) fn overwrite(worktree: &Utf8Path, relative: &[u8], bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let parts: Vec<&[u8]> = relative.split(|b| *b == b'/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == b"." || *p == b".." || p.eq_ignore_ascii_case(b".git"))
    {
        return Ok(());
    }
    let mut path = worktree.as_std_path().to_path_buf();
    for (n, part) in parts.iter().enumerate() {
        path.push(OsStr::from_bytes(part));
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(());
        };
        let last = n + 1 == parts.len();
        if (!last && !meta.is_dir()) || (last && !meta.is_file()) {
            return Ok(());
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if !file.metadata()?.is_file() {
        return Ok(());
    }
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_byte() {
        assert_eq!(c_quote(b"a b.txt"), b"\"a b.txt\"");
        assert_eq!(c_quote(b"x\ny\"\\"), b"\"x\\012y\\\"\\\\\"");
        assert_eq!(c_quote("é".as_bytes()), b"\"\\303\\251\"");
    }

    #[test]
    fn only_added_modified_or_retyped_regular_files_are_listed() {
        let z = "0".repeat(40);
        let b = "1".repeat(40);
        let listing = format!(
            ":000000 100644 {z} {b} A\0new\0:100644 100755 {b} {b} M\0tool\0:100644 000000 {b} {z} D\0gone\0:000000 120000 {z} {b} A\0link\0:000000 160000 {z} {b} A\0sub\0"
        );
        let found: Vec<(String, Vec<u8>)> = changed_files(listing.as_bytes())
            .into_iter()
            .map(|c| (c.mode.to_string(), c.path))
            .collect();
        assert_eq!(
            found,
            [
                ("100644".to_string(), b"new".to_vec()),
                ("100755".to_string(), b"tool".to_vec())
            ]
        );
    }
}
