//! Reading refs while `git pack-refs` runs (as `git gc --auto` does after commits): a pack
//! writes the new `packed-refs` first, then deletes the loose files it packed. A listing that
//! saw a loose file may find it gone ("Could not read reference"), and a packed-refs buffer
//! read before the pack lacks what the deleted files held. So every read of refs here notes
//! the `packed-refs` file it starts from and is made again, with the buffer read afresh, when
//! the file was replaced under it or a read failed; bounded, then the last answer stands.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use gix::ObjectId;

use crate::dirfiles::{self, Known};

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

/// For each of `prefixes` (`refs/heads/`, ending in `/`), every direct ref (not symbolic)
/// whose full name starts with it, with the object it names, as [`list`] tells it; the
/// prefixes' loose refs are read side by side. Loose refs are read here, each relative to its
/// directory (a hook lists hundreds of session branches and ledgers on every landing: issue
/// 18); anything gix's reader might tell otherwise (a link, a name that is not UTF-8, a file
/// that does not parse, a ref namespace, reftable, a pack under way) is left to [`list`].
pub fn direct_with_prefixes(
    repo: &gix::Repository,
    prefixes: &[&str],
) -> anyhow::Result<Vec<BTreeMap<String, ObjectId>>> {
    let readable = repo.refs.namespace.is_none() && !repo.common_dir().join("reftable").exists();
    let before = sync(repo);
    let hex_len = repo.object_hash().len_in_hex();
    let common = repo.common_dir();
    let walk = |prefix: &str| {
        let plain = prefix.starts_with("refs/") && prefix.ends_with('/');
        (readable && plain)
            .then(|| loose_refs(common, prefix, hex_len))
            .flatten()
    };
    let loose: Vec<Option<BTreeMap<String, ObjectId>>> = match prefixes {
        [prefix] => vec![walk(prefix)],
        _ => std::thread::scope(|scope| {
            let walks: Vec<_> = prefixes
                .iter()
                .map(|prefix| scope.spawn(move || walk(prefix)))
                .collect();
            walks
                .into_iter()
                .map(|walk| walk.join().ok().flatten())
                .collect()
        }),
    };
    let steady = stamp(repo) == before;
    let mut out = Vec::with_capacity(prefixes.len());
    for (prefix, loose) in prefixes.iter().zip(loose) {
        let found = match loose {
            Some(found) if steady => with_packed(repo, prefix, found)?,
            _ => None,
        };
        out.push(match found {
            Some(found) => found,
            None => list(repo, prefix)?
                .into_iter()
                .filter_map(|r| {
                    let id = r.target().try_id()?.to_owned();
                    Some((r.name().as_bstr().to_string(), id))
                })
                .collect(),
        });
    }
    Ok(out)
}

/// The loose refs under `prefix` in the repository whose common dir is `common`, or `None`
/// where they are left to gix (see [`loose_under`]).
fn loose_refs(
    common: &std::path::Path,
    prefix: &str,
    hex_len: usize,
) -> Option<BTreeMap<String, ObjectId>> {
    let mut found = BTreeMap::new();
    let dir = common.join(prefix.trim_end_matches('/'));
    loose_under(hex_len, &dir, prefix, &mut found).then_some(found)
}

/// `found` (the loose refs under `prefix`) with the packed ones no loose one hides; `None`
/// when `packed-refs` cannot be read whole.
fn with_packed(
    repo: &gix::Repository,
    prefix: &str,
    mut found: BTreeMap<String, ObjectId>,
) -> anyhow::Result<Option<BTreeMap<String, ObjectId>>> {
    if let Some(packed) = repo.refs.cached_packed_buffer()? {
        for reference in packed.iter_prefixed(prefix.into())? {
            let Ok(reference) = reference else {
                return Ok(None);
            };
            found
                .entry(reference.name.as_bstr().to_string())
                .or_insert_with(|| reference.target());
        }
    }
    Ok(Some(found))
}

/// Adds the direct loose refs under `dir` (named `prefix…`) to `found`; `false` when one of
/// them is anything but a plain file with a valid name that parses as an object id (or a link,
/// which gix's reader skips, as git does).
fn loose_under(
    hex_len: usize,
    dir: &std::path::Path,
    prefix: &str,
    found: &mut BTreeMap<String, ObjectId>,
) -> bool {
    // A loose ref as git writes it: the id in hex and a newline. Anything else (a symbolic
    // ref, odd spacing) is left to gix.
    let derive = |_: &str, bytes: &[u8]| -> Option<Vec<u8>> {
        let hex = bytes.strip_suffix(b"\n").filter(|h| h.len() == hex_len)?;
        Some(ObjectId::from_hex(hex).ok()?.as_bytes().to_vec())
    };
    let entries = match dirfiles::read_known(None, dir, derive) {
        Ok(Some(entries)) => entries,
        Ok(None) => return true,
        Err(_) => return false,
    };
    for entry in entries {
        match entry {
            Known::File(name, value) => {
                let full = format!("{prefix}{name}");
                if gix::validate::reference::name_partial(full.as_bytes().into()).is_err() {
                    // A lock, say: not a ref to git or gix.
                    continue;
                }
                let Some(id) = value
                    .ok()
                    .flatten()
                    .and_then(|raw| ObjectId::try_from(raw.as_slice()).ok())
                else {
                    return false;
                };
                found.insert(full, id);
            }
            Known::Dir(name) => {
                if !loose_under(
                    hex_len,
                    &dir.join(&name),
                    &format!("{prefix}{name}/"),
                    found,
                ) {
                    return false;
                }
            }
            // A link is no ref to gix (nor to git's listing); a name that is not UTF-8 is
            // left to gix.
            Known::Other(_) => return false,
        }
    }
    true
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
