//! Reading refs while `git pack-refs` runs (as `git gc --auto` does after commits): a pack
//! writes the new `packed-refs` first, then deletes the loose files it packed. A listing that
//! saw a loose file may find it gone ("Could not read reference"), and a packed-refs buffer
//! read before the pack lacks what the deleted files held. So every read of refs here notes
//! the `packed-refs` file it starts from and is made again, with the buffer read afresh, when
//! the file was replaced under it or a read failed; bounded, then the last answer stands.

use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// How often a read of refs is made before its answer (or error) stands.
const ATTEMPTS: u32 = 10;

/// What tells one `packed-refs` from the next: a pack renames a new file into place (a new
/// inode); size and change time too, as an inode can be reused.
type Stamp = (u64, u64, i64, i64);

fn stamp(repo: &gix::Repository) -> Option<Stamp> {
    let meta = std::fs::metadata(repo.common_dir().join("packed-refs")).ok()?;
    Some((meta.ino(), meta.size(), meta.ctime(), meta.ctime_nsec()))
}

thread_local! {
    /// The `packed-refs` each ref store (by address) was last made to read.
    static READ: RefCell<Vec<(usize, Option<Stamp>)>> = const { RefCell::new(Vec::new()) };
}

/// Makes `repo` read `packed-refs` afresh when it is not the file the store last read here:
/// gix compares modification times only, and two packs within one clock tick have the same.
fn sync(repo: &gix::Repository) -> Option<Stamp> {
    let now = stamp(repo);
    let key = std::ptr::from_ref(&repo.refs) as usize;
    let known = READ.with(|read| {
        read.borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .is_some_and(|(_, s)| *s == now)
    });
    if !known {
        // No file (every ref loose) leaves nothing to read; gix notices that itself.
        let _ = repo.refs.force_refresh_packed_buffer();
        READ.with(|read| {
            let mut read = read.borrow_mut();
            read.retain(|(k, _)| *k != key);
            read.push((key, now));
        });
    }
    now
}

/// Runs `read` until its answer stands: `packed-refs` stayed the same file throughout, or
/// `settled` accepts the answer anyway. A failure stands too unless the file changed or
/// `listing` (a listing fails when a loose ref it saw is deleted before it is read, with the
/// new `packed-refs` already in place when it started). At most [`ATTEMPTS`] times.
fn steady<T>(
    repo: &gix::Repository,
    listing: bool,
    settled: impl Fn(&T) -> bool,
    read: impl Fn() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut attempt = 1;
    loop {
        let before = sync(repo);
        let result = read();
        let same = stamp(repo) == before;
        let again = match &result {
            Ok(value) => !same && !settled(value),
            Err(_) => !same || listing,
        };
        if !again || attempt == ATTEMPTS {
            return result;
        }
        // A pack is under way: let it delete its loose files before looking again.
        std::thread::sleep(Duration::from_millis(u64::from(attempt)));
        attempt += 1;
    }
}

/// The ref `name`, or `None` when there is none. A loose ref found is what the ref is; one
/// not found is looked up again when a pack replaced `packed-refs` meanwhile.
pub fn find<'r>(
    repo: &'r gix::Repository,
    name: &str,
) -> anyhow::Result<Option<gix::Reference<'r>>> {
    steady(
        repo,
        false,
        |found: &Option<gix::Reference<'_>>| found.is_some(),
        || Ok(repo.try_find_reference(name)?),
    )
}

/// Every ref whose full name starts with `prefix` (`refs/heads/`, `""` for all).
pub fn list<'r>(
    repo: &'r gix::Repository,
    prefix: &str,
) -> anyhow::Result<Vec<gix::Reference<'r>>> {
    steady(
        repo,
        true,
        |_| false,
        || {
            let platform = repo.references()?;
            let iter = if prefix.is_empty() {
                platform.all()?
            } else {
                platform.prefixed(prefix)?
            };
            iter.map(|r| r.map_err(|e| anyhow::anyhow!("{e}")))
                .collect()
        },
    )
}

/// Every ref but those that cannot be read once a pack is through with them (a broken loose
/// file): those are left out.
pub fn list_skipping_broken(repo: &gix::Repository) -> anyhow::Result<Vec<gix::Reference<'_>>> {
    let mut attempt = 1;
    loop {
        let before = sync(repo);
        let mut broken = false;
        let mut refs = Vec::new();
        for reference in repo.references()?.all()? {
            match reference {
                Ok(reference) => refs.push(reference),
                Err(_) => broken = true,
            }
        }
        if (!broken && stamp(repo) == before) || attempt == ATTEMPTS {
            return Ok(refs);
        }
        std::thread::sleep(Duration::from_millis(u64::from(attempt)));
        attempt += 1;
    }
}

/// `rev` resolved as `repo` sees it; a failure is tried again while refs are being packed.
pub fn rev_parse<'r>(repo: &'r gix::Repository, rev: &str) -> anyhow::Result<gix::Id<'r>> {
    steady(repo, false, |_| true, || Ok(repo.rev_parse_single(rev)?))
}
