//! Reading every small file of a directory (session records, loose refs) in few system calls:
//! one handle on the directory, each file opened relative to it (no path walked again), read
//! into one buffer, no link ever followed. A hook reads hundreds of these on every landing on
//! a protected branch (issue 18): through `std::fs` each costs twice the calls on a full path.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

/// An open directory and its entries' names, each with the type the listing gives.
type Listing = (Dir, Vec<(Vec<u8>, FileType)>);

/// The entries of `dir` but `.` and `..` (each name with the type the listing gives), in the
/// order the file system lists them, with the open directory; `None` when there is no
/// directory there. A link at `dir` itself is not followed (an error).
fn list(dir: &Path) -> std::io::Result<Option<Listing>> {
    let fd = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
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
/// file, is an error.
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
        if filled == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&buf[..filled]);
    }
}

// --- Files known again by their stat data ----------------------------------------------------
//
// A hook reads the same few hundred files on every landing (a record per session, its branch,
// its ledger), and they seldom change. Once a process has [`remember`]ed what an earlier one
// [`memo_bytes`] left, [`read_known`] takes a file's value from there instead of reading it
// when the file's stat data (inode, device, mode, size, modification and change times) is the
// one it was read with. A change of its bytes changes its change time, which no one but the
// kernel sets; a file changed within `SETTLED_NS` of its read is not kept, so no change can
// fall in the clock tick it was read in (as git's index treats racily clean entries). Only
// git-codex's hooks keep the memo (`<state>/read-memo`, which no confined agent can write);
// its own commands read every file.

/// How long a file must have been left alone before its value is kept.
const SETTLED_NS: i128 = 2_000_000_000;

/// The memo file's first line; anything else is not read.
const MEMO_HEADER: &[u8] = b"git-codex read memo 1\n";

/// What tells one state of a file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Sig {
    fn of(stat: &rustix::fs::Statx) -> Sig {
        let ns = |t: rustix::fs::StatxTimestamp| {
            i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
        };
        Sig {
            dev: (u64::from(stat.stx_dev_major) << 32) | u64::from(stat.stx_dev_minor),
            ino: stat.stx_ino,
            mode: u32::from(stat.stx_mode),
            size: stat.stx_size,
            mtime: ns(stat.stx_mtime),
            ctime: ns(stat.stx_ctime),
        }
    }
}

#[derive(Default)]
struct Memo {
    /// Loaded: `read_known` consults and fills it.
    on: bool,
    /// Now, less [`SETTLED_NS`], when it was loaded: files changed since are not kept.
    settled_before: i128,
    /// What the last process left, by directory and name.
    known: Files,
    /// What this one saw, to leave for the next.
    seen: Files,
    /// Whether what it saw differs from what it was left.
    changed: bool,
}

static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

/// Turns the memo on for this process, with what `bytes` (an earlier [`memo_bytes`], or
/// nothing) holds; anything that does not read back whole is dropped.
pub fn remember(bytes: Option<&[u8]>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let memo = Memo {
        on: true,
        settled_before: now - SETTLED_NS,
        known: bytes.and_then(decode).unwrap_or_default(),
        seen: HashMap::new(),
        changed: false,
    };
    if let Ok(mut slot) = MEMO.lock() {
        *slot = Some(memo);
    }
}

/// What to leave for the next process: every file [`read_known`] saw here, or `None` when
/// that is what the last one left (nothing to write).
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
/// when there is no directory there; a link at `dir` is not followed), each plain file's
/// value being `derive` of its bytes (`None`: it has none,
/// and is not kept) — or the value kept for it, while it is as it was. `kind` names what
/// `derive` makes.
pub fn read_known(
    kind: &str,
    dir: &Path,
    derive: impl Fn(&str, &[u8]) -> Option<Vec<u8>>,
) -> std::io::Result<Option<Vec<Known>>> {
    let Some((listing, names)) = list(dir)? else {
        return Ok(None);
    };
    let fd = listing.fd()?;
    // What `derive` makes of a file is told apart by `kind` (another caller's of one file
    // is not this one's).
    let key = [kind.as_bytes(), b"\0", dir.as_os_str().as_bytes()].concat();
    // The lock is held only to take this directory's files out and put them back: listings
    // of other directories may run meanwhile, on other threads.
    let (settled_before, known) = {
        let mut slot = MEMO.lock().ok();
        match slot.as_mut().and_then(|s| s.as_mut()).filter(|m| m.on) {
            Some(m) => (
                Some(m.settled_before),
                m.known.remove(&key).unwrap_or_default(),
            ),
            None => (None, DirFiles::new()),
        }
    };
    let mut seen = DirFiles::new();
    let mut changed = false;
    let mut out = Vec::with_capacity(names.len());
    for (name, listed) in names {
        let text = match String::from_utf8(name) {
            Ok(text) => text,
            Err(err) => {
                out.push(Known::Other(err.into_bytes()));
                continue;
            }
        };
        if !matches!(listed, FileType::RegularFile | FileType::Unknown) {
            out.push(if listed == FileType::Directory {
                Known::Dir(text)
            } else {
                Known::Other(text.into_bytes())
            });
            continue;
        }
        let stat = rustix::fs::statx(
            fd,
            text.as_str(),
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS,
        );
        let stat = match stat {
            Ok(stat) => stat,
            Err(err) => {
                out.push(Known::File(text, Err(err.into())));
                continue;
            }
        };
        match FileType::from_raw_mode(u32::from(stat.stx_mode)) {
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
        let sig = Sig::of(&stat);
        let kept = known
            .get(&text)
            .filter(|(was, _)| *was == sig)
            .map(|(_, value)| value.clone());
        let hit = kept.is_some();
        let value = match kept {
            Some(value) => Ok(Some(value)),
            None => read_at(fd, &text).map(|bytes| derive(&text, &bytes)),
        };
        if let (Some(settled_before), Ok(Some(value))) = (settled_before, &value)
            && sig.ctime < settled_before
            && sig.mtime < settled_before
        {
            changed |= !hit;
            seen.insert(text.clone(), (sig, value.clone()));
        }
        out.push(Known::File(text, value));
    }
    if settled_before.is_some()
        && let Ok(mut slot) = MEMO.lock()
        && let Some(m) = slot.as_mut()
    {
        // A file kept before and gone (or changed) since is dropped.
        m.changed |= changed
            || known.len() != seen.len()
            || m.seen.get(&key).is_some_and(|was| *was != seen);
        m.known.insert(key.clone(), known);
        m.seen.insert(key, seen);
    }
    Ok(Some(out))
}

/// One entry of a directory, as [`read_known`] found it.
#[derive(Debug)]
pub enum Known {
    /// A plain file and its value (`None`: `derive` gave none).
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

/// A directory's files kept: each one's stat data and value, by name.
type DirFiles = HashMap<String, (Sig, Vec<u8>)>;

/// Every directory's, by what reads it and where it is.
type Files = HashMap<Vec<u8>, DirFiles>;

fn encode(all: &Files) -> Vec<u8> {
    let mut body = Vec::new();
    let put = |body: &mut Vec<u8>, bytes: &[u8]| {
        body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        body.extend_from_slice(bytes);
    };
    for (dir, files) in all {
        put(&mut body, dir);
        body.extend_from_slice(&(files.len() as u32).to_le_bytes());
        for (name, (sig, value)) in files {
            put(&mut body, name.as_bytes());
            body.extend_from_slice(&sig.dev.to_le_bytes());
            body.extend_from_slice(&sig.ino.to_le_bytes());
            body.extend_from_slice(&sig.mode.to_le_bytes());
            body.extend_from_slice(&sig.size.to_le_bytes());
            body.extend_from_slice(&sig.mtime.to_le_bytes());
            body.extend_from_slice(&sig.ctime.to_le_bytes());
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
fn decode(bytes: &[u8]) -> Option<Files> {
    let rest = bytes.strip_prefix(MEMO_HEADER)?;
    let mut at = Cursor(rest);
    let sum = at.u64()?;
    let len = usize::try_from(at.u64()?).ok()?;
    if at.0.len() != len || fnv(at.0) != sum {
        return None;
    }
    let mut all = Files::new();
    while !at.0.is_empty() {
        let dir = at.bytes()?.to_vec();
        let count = at.u32()?;
        let mut files = HashMap::new();
        for _ in 0..count {
            let name = String::from_utf8(at.bytes()?.to_vec()).ok()?;
            let sig = Sig {
                dev: at.u64()?,
                ino: at.u64()?,
                mode: at.u32()?,
                size: at.u64()?,
                mtime: at.i128()?,
                ctime: at.i128()?,
            };
            files.insert(name, (sig, at.bytes()?.to_vec()));
        }
        all.insert(dir, files);
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
    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}
