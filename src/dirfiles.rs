//! Reading every small file of a directory (session records, loose refs) in few system calls:
//! one handle on the directory, each file opened relative to it (no path walked again), read
//! into one buffer, no link followed below the directory. A hook reads hundreds of these on
//! every landing on a protected branch (issue 18): through `std::fs` each costs twice the
//! calls on a full path.
//!
//! A hook also remembers what it made of each file's bytes (a record parsed, say): once a
//! process has [`remember`]ed what an earlier one left ([`memo_bytes`]), [`read_known`] takes
//! the value for a name and bytes it has seen before instead of making it again. Every file is
//! still read on every call, and a value is only ever found by the very name and bytes it was
//! made from: what the memo holds cannot stand for a file that changed, however it changed (an
//! earlier design trusted stat data, which a write through a shared mapping leaves as it was).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

/// An open directory and its entries' names, each with the type the listing gives.
type Listing = (Dir, Vec<(Vec<u8>, FileType)>);

/// The entries of `dir` but `.` and `..` (each name with the type the listing gives), in the
/// order the file system lists them, with the open directory; `None` when there is no
/// directory there. `dir` itself may be a link to one (as `std::fs::read_dir` and gix's
/// listings allow).
fn list(dir: &Path) -> std::io::Result<Option<Listing>> {
    let fd = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let mut listing = Dir::new(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push((name.to_vec(), entry.file_type()));
        }
    }
    Ok(Some((listing, names)))
}

/// The bytes of the plain file `name` in the directory `dir`: a link, or anything but a plain
/// file, is an error. A read that fills less than the buffer is taken as the file's end (as
/// it is for a plain file): a ref or a record is read in one call, not two. (Where a file
/// system returns less, what is read does not parse, and the callers read it their usual way.)
fn read_at(dir: impl AsFd, name: &str) -> std::io::Result<Vec<u8>> {
    let file: OwnedFd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let filled = rustix::io::read(&file, &mut buf)?;
        bytes.extend_from_slice(&buf[..filled]);
        if filled < buf.len() {
            return Ok(bytes);
        }
    }
}

/// The memo file's first line; anything else is not read.
const MEMO_HEADER: &[u8] = b"git-codex read memo 2\n";

/// By kind (what `derive` makes), each file's name and bytes and what was made of them.
type Values = HashMap<String, HashMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
struct Memo {
    /// What the last process left.
    known: Values,
    /// What this one made or found, to leave for the next (what no file holds any more is
    /// dropped).
    seen: Values,
    /// Whether what it saw differs from what it was left.
    changed: bool,
}

static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

/// Turns the memo on for this process, with what `bytes` (an earlier [`memo_bytes`], or
/// nothing) holds; anything that does not read back whole is dropped.
pub fn remember(bytes: Option<&[u8]>) {
    let memo = Memo {
        known: bytes.and_then(decode).unwrap_or_default(),
        ..Memo::default()
    };
    if let Ok(mut slot) = MEMO.lock() {
        *slot = Some(memo);
    }
}

/// What to leave for the next process, or `None` when it is what the last one left.
pub fn memo_bytes() -> Option<Vec<u8>> {
    let mut slot = MEMO.lock().ok()?;
    let memo = slot.as_mut()?;
    if !memo.changed {
        return None;
    }
    let mut all = std::mem::take(&mut memo.known);
    all.extend(std::mem::take(&mut memo.seen));
    Some(encode(&all))
}

/// Every entry of `dir` but `.` and `..`, in the order the file system lists them (`None`
/// when there is no directory there), each plain file's value being `derive` of its bytes
/// (`None`: it has none). With `kind` (what `derive` makes), in a process that
/// [`remember`]s, a value made before from the same name and bytes is taken instead.
pub fn read_known(
    kind: Option<&str>,
    dir: &Path,
    derive: impl Fn(&str, &[u8]) -> Option<Vec<u8>>,
) -> std::io::Result<Option<Vec<Known>>> {
    let Some((listing, names)) = list(dir)? else {
        return Ok(None);
    };
    let fd = listing.fd()?;
    // The lock is held only to take this kind's values out and put them back: listings of
    // other kinds may run meanwhile, on other threads.
    let memo = kind.and_then(|kind| {
        let mut slot = MEMO.lock().ok()?;
        let m = slot.as_mut()?;
        Some(m.known.remove(kind).unwrap_or_default())
    });
    let mut seen: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(names.len());
    for (name, listed) in names {
        let text = match String::from_utf8(name) {
            Ok(text) => text,
            Err(err) => {
                out.push(Known::Other(err.into_bytes()));
                continue;
            }
        };
        let listed = match listed {
            FileType::Unknown => match rustix::fs::statx(
                fd,
                text.as_str(),
                AtFlags::SYMLINK_NOFOLLOW,
                StatxFlags::TYPE,
            ) {
                Ok(stat) => FileType::from_raw_mode(u32::from(stat.stx_mode)),
                // Gone since it was listed: the read says so.
                Err(_) => FileType::RegularFile,
            },
            listed => listed,
        };
        match listed {
            FileType::RegularFile => {}
            FileType::Directory => {
                out.push(Known::Dir(text));
                continue;
            }
            _ => {
                out.push(Known::Other(text.into_bytes()));
                continue;
            }
        }
        let value = read_at(fd, &text).map(|bytes| {
            let Some(memo) = &memo else {
                return derive(&text, &bytes);
            };
            // What `derive` makes of a file's name and bytes: both are the key (a name holds
            // no NUL).
            let key = [text.as_bytes(), b"\0", &bytes].concat();
            let value = match memo.get(&key) {
                Some(value) => Some(value.clone()),
                None => derive(&text, &bytes),
            };
            if let Some(value) = &value {
                seen.insert(key, value.clone());
            }
            value
        });
        out.push(Known::File(text, value));
    }
    if let (Some(kind), Some(known)) = (kind, memo)
        && let Ok(mut slot) = MEMO.lock()
        && let Some(m) = slot.as_mut()
    {
        // What no file holds any more is dropped; what was not seen before is added.
        m.changed |= known.len() != seen.len() || seen.keys().any(|b| !known.contains_key(b));
        m.known.insert(kind.to_string(), known);
        m.seen.insert(kind.to_string(), seen);
    }
    Ok(Some(out))
}

/// One entry of a directory, as [`read_known`] found it.
#[derive(Debug)]
pub enum Known {
    /// A plain file and its value (`None`: `derive` gave none), or why it could not be read
    /// (gone since it was listed, say).
    File(String, std::io::Result<Option<Vec<u8>>>),
    Dir(String),
    /// Anything else (a link, a socket, a name that is not UTF-8), by name.
    Other(Vec<u8>),
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash ^= u64::from_le_bytes(word);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    hash
}

fn encode(all: &Values) -> Vec<u8> {
    let mut body = Vec::new();
    let put = |body: &mut Vec<u8>, bytes: &[u8]| {
        body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        body.extend_from_slice(bytes);
    };
    for (kind, values) in all {
        put(&mut body, kind.as_bytes());
        body.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for (bytes, value) in values {
            put(&mut body, bytes);
            put(&mut body, value);
        }
    }
    let mut out = MEMO_HEADER.to_vec();
    out.extend_from_slice(&fnv(&body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads what [`encode`] wrote; `None` for anything else (another version, cut short, a
/// byte changed).
fn decode(bytes: &[u8]) -> Option<Values> {
    let rest = bytes.strip_prefix(MEMO_HEADER)?;
    let mut at = Cursor(rest);
    let sum = at.u64()?;
    let len = usize::try_from(at.u64()?).ok()?;
    if at.0.len() != len || fnv(at.0) != sum {
        return None;
    }
    let mut all = Values::new();
    while !at.0.is_empty() {
        let kind = String::from_utf8(at.bytes()?.to_vec()).ok()?;
        let count = at.u32()?;
        let mut values = HashMap::new();
        for _ in 0..count {
            let bytes = at.bytes()?.to_vec();
            values.insert(bytes, at.bytes()?.to_vec());
        }
        all.insert(kind, values);
    }
    Some(all)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the memo gives for a file is what `derive` makes of that file's name and bytes,
    /// whatever else it was left: another name with the same bytes, or the same name with
    /// other bytes, is made afresh.
    #[test]
    fn a_value_is_found_only_by_the_name_and_bytes_it_was_made_from() {
        let dir = tempfile::tempdir().expect("temp dir");
        let derive =
            |name: &str, bytes: &[u8]| Some(format!("{name}:{}", bytes.len()).into_bytes());
        let values = || -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = read_known(Some("test"), dir.path(), derive)
                .expect("read")
                .expect("a dir")
                .into_iter()
                .filter_map(|k| match k {
                    Known::File(name, Ok(Some(v))) => Some((name, String::from_utf8(v).ok()?)),
                    _ => None,
                })
                .collect();
            out.sort();
            out
        };
        std::fs::write(dir.path().join("a"), "same").expect("write");
        remember(None);
        assert_eq!(values(), [("a".to_string(), "a:4".to_string())]);
        let left = memo_bytes().expect("something to leave");
        // b gets a's bytes, a gets others: neither is what the memo holds for them.
        std::fs::write(dir.path().join("b"), "same").expect("write");
        std::fs::write(dir.path().join("a"), "longer").expect("write");
        remember(Some(&left));
        assert_eq!(
            values(),
            [
                ("a".to_string(), "a:6".to_string()),
                ("b".to_string(), "b:4".to_string())
            ]
        );
        // A memo cut short or changed is not read.
        assert!(decode(&left[..left.len() - 1]).is_none());
        let mut changed = left.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(decode(&changed).is_none());
        assert!(decode(&left).is_some());
        *MEMO.lock().expect("memo") = None;
    }
}
