//! Git LFS for a confined agent: the repository's LFS store (`<common>/lfs`, or
//! `lfs.storage`) is read-only to it, and git-lfs writes every object it cleans (`git add`
//! of a tracked file, and the refresh before `commit` or `stash`) there first. So the agent
//! gets a store of its own, mounted over the shared one in its sandbox, and git-lfs still
//! reads the shared one, which it finds as the LFS dir beside the alternate object dir (see
//! [`super::stores`]). When the run settles, [`import`] copies each new object into the
//! shared store once its content hashes to its name; nothing there is ever replaced.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::Digest as _;

use crate::context::Ctx;

/// The shared LFS store: `lfs.storage` (relative to the common git dir), else `<common>/lfs`.
pub(super) fn shared_store(ctx: &Ctx) -> Utf8PathBuf {
    let configured = ctx
        .git
        .run(&ctx.paths.main_root, &["config", "--get", "lfs.storage"])
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
        .filter(|s| !s.is_empty());
    match configured {
        Some(path) => crate::config::expand_path(&path, &ctx.paths.common_dir),
        None => ctx.paths.common_dir.join("lfs"),
    }
}

/// Copies the objects of the agent's LFS `store` into the shared one, each checked against
/// its name; returns how many were not taken (wrong content, misplaced, not a regular file).
pub fn import(ctx: &Ctx, store: &Utf8Path) -> anyhow::Result<usize> {
    let objects = store.join("objects");
    match std::fs::symlink_metadata(&objects) {
        Ok(meta) if meta.is_dir() => {}
        // A link is never followed: the agent could name any dir of the person's.
        Ok(_) => return Ok(1),
        Err(_) => return Ok(0),
    }
    let mut rejected = 0;
    let mut found = Vec::new();
    for first in entries(&objects, &mut rejected) {
        for second in entries(&objects.join(&first), &mut rejected) {
            for name in files(&objects.join(&first).join(&second), &mut rejected) {
                if is_oid(&name) && name[..2] == first && name[2..4] == second {
                    found.push(name);
                } else {
                    rejected += 1;
                }
            }
        }
    }
    if found.is_empty() {
        return Ok(rejected);
    }
    let shared = shared_store(ctx).join("objects");
    for oid in found {
        let from = objects.join(&oid[..2]).join(&oid[2..4]).join(&oid);
        let to = shared.join(&oid[..2]).join(&oid[2..4]).join(&oid);
        // The person's object stays what it is, whatever the agent wrote under its name.
        if std::fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        if !copy_verified(&from, &to, &oid)? {
            rejected += 1;
        }
    }
    Ok(rejected)
}

/// The dirs in `dir` named as two hex digits; counts anything else there as rejected.
fn entries(dir: &Utf8Path, rejected: &mut usize) -> Vec<String> {
    listing(dir, rejected, |name, kind| {
        kind.is_dir() && name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The regular files in `dir`; counts anything else there as rejected.
fn files(dir: &Utf8Path, rejected: &mut usize) -> Vec<String> {
    listing(dir, rejected, |_, kind| kind.is_file())
}

fn listing(
    dir: &Utf8Path,
    rejected: &mut usize,
    wanted: impl Fn(&str, std::fs::FileType) -> bool,
) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in read.flatten() {
        // The entry's own type: a link is never followed.
        match (entry.file_name().into_string(), entry.file_type()) {
            (Ok(name), Ok(kind)) if wanted(&name, kind) => names.push(name),
            _ => *rejected += 1,
        }
    }
    names
}

/// An LFS object id: 64 lowercase hex digits (a SHA-256).
fn is_oid(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Copies `from` to a new file beside `to`, hashing as it goes, and links it in as `to` only
/// when the content's SHA-256 is `oid`. Returns whether it did.
fn copy_verified(from: &Utf8Path, to: &Utf8Path, oid: &str) -> anyhow::Result<bool> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from);
    let Ok(mut source) = opened else {
        return Ok(false);
    };
    let meta = source.metadata()?;
    // A sparse file costs the agent no disk but the person minutes to hash.
    if !meta.is_file() || super::admin::sparse(&meta) {
        return Ok(false);
    }
    let dir = to.parent().context("an LFS object path with no parent")?;
    fs_err::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{oid}.git-codex{}", std::process::id()));
    let mut out = crate::state::create_fresh(&tmp)?;
    let result = (|| -> anyhow::Result<bool> {
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = source.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])?;
        }
        out.sync_all()?;
        let digest = hasher.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if hex != oid {
            return Ok(false);
        }
        // Never over an object that appeared meanwhile (the person's git-lfs wrote it).
        match std::fs::hard_link(&tmp, to) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(true),
            Err(err) => Err(anyhow::Error::new(err).context(format!("cannot create {to}"))),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}
