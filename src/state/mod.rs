//! The state dir `<common-dir>/codex/` (SPEC §3): records, the lock, atomic writes, and `init`.

pub mod id;
pub mod journal;
pub mod record;

use std::io::Write as _;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};

use crate::error::UserError;
pub use id::SessionId;
pub use record::{SessionBrief, SessionRecord};

/// Creates `path` anew for writing (a log), in a dir a confined agent can write: whatever is
/// there goes first (a link is removed, never followed), and the file is made exclusively,
/// refusing a link to the last.
pub fn create_fresh(path: &Utf8Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(path)?,
        Ok(_) => fs_err::remove_file(path)?,
        Err(_) => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create {path}"))
}

/// The bytes of `path` when it is a regular file; `None` when it is missing, a link (never
/// followed), a fifo, a device or a dir. For files in places a confined agent can write.
pub fn read_regular_file(path: &Utf8Path) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        // A fifo must not block the open: its type is checked next.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(err)
            if err.kind() == std::io::ErrorKind::NotFound
                || err.raw_os_error() == Some(libc::ELOOP) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(anyhow::Error::new(err).context(format!("cannot open {path}"))),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {path}"))?;
    Ok(Some(bytes))
}

/// Writes a file atomically: a temp file in the same dir, synced, then renamed over.
pub fn atomic_write(path: &Utf8Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_via_temp(path, bytes, true)
}

/// As [`atomic_write`], without waiting for the disk: for files git-codex can make again
/// (review reports). Readers still never see half a file.
pub fn replace_file(path: &Utf8Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_via_temp(path, bytes, false)
}

fn write_via_temp(path: &Utf8Path, bytes: &[u8], sync: bool) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("no parent directory for {path}"))?;
    fs_err::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        // Never through a link someone planted under the temporary name (a session's worktree
        // is the agent's): whatever is there goes, and the file is made anew.
        match fs_err::remove_file(&tmp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        fs_err::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    result
}

/// A record that could not be read: `list` still works and reports it.
#[derive(Debug, Clone)]
pub struct BrokenRecord {
    pub id: String,
    pub path: Utf8PathBuf,
    pub problem: String,
    /// The port the record still names, read leniently: its session may be alive and
    /// listening on it, so it is not handed out again.
    pub port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: Utf8PathBuf,
}

/// Held while sessions are mutated; released on drop.
pub struct StateLock {
    _file: Option<std::fs::File>,
}

impl StateDir {
    pub fn new(common_dir: &Utf8Path) -> Self {
        StateDir {
            root: common_dir.join("codex"),
        }
    }

    pub fn config_file(&self) -> Utf8PathBuf {
        self.root.join("config.toml")
    }

    pub fn sessions_dir(&self) -> Utf8PathBuf {
        self.root.join("sessions")
    }

    pub fn record_path(&self, id: &str) -> Utf8PathBuf {
        self.sessions_dir().join(format!("{id}.json"))
    }

    pub fn tmp_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("tmp").join(id)
    }

    /// Where a confined agent's new objects go during its run: mounted over the repository's
    /// object dir in its sandbox (see `sandbox::stores`).
    pub fn objects_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("objects").join(id)
    }

    /// What the session's submodule git dirs held before a confined run (their `config` and
    /// `hooks`), to put back what the agent changed there when the run settles.
    pub fn modules_baseline_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("modules-baseline").join(id)
    }

    /// What a confined agent sees as its worktree's admin dir during its run: its own HEAD,
    /// index and reflog, so the shared one names no object of the agent's store (see
    /// `sandbox::admin`).
    pub fn admin_view_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("admin").join(id)
    }

    /// A confined agent's own Git LFS store during its run, mounted over the repository's (see
    /// `sandbox::stores`).
    pub fn lfs_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("lfs").join(id)
    }

    /// Programs git-codex puts first on a confined agent's PATH (its `git`, see
    /// `sandbox::git_shim`): never writable by the agent.
    /// The review gate's cache of what each session could bring to a landing (SPEC §6):
    /// deleting it changes no verdict.
    pub fn gate_cache(&self) -> Utf8PathBuf {
        self.root.join("gate-cache")
    }

    /// What the last hook made of the records it read (see `dirfiles::read_known`).
    pub fn read_memo(&self) -> Utf8PathBuf {
        self.root.join("read-memo")
    }

    /// Lets this process take what the last hook made of a record whose bytes it reads again
    /// (see `dirfiles::read_known`): for the hooks.
    pub fn remember_reads(&self) {
        let kept = read_regular_file(&self.read_memo()).ok().flatten();
        crate::dirfiles::remember(kept.as_deref());
    }

    /// Leaves what this process made of the records for the next hook: best effort (a
    /// confined run's state dir is read-only).
    pub fn keep_reads(&self) -> anyhow::Result<()> {
        match crate::dirfiles::memo_bytes() {
            Some(bytes) => replace_file(&self.read_memo(), &bytes),
            None => Ok(()),
        }
    }

    pub fn bin_dir(&self) -> Utf8PathBuf {
        self.root.join("bin")
    }

    /// git-codex's own scratch space for session `id` (temporary indexes): unlike the tmp dir,
    /// never writable by a confined agent, which could plant files there.
    pub fn scratch_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("scratch").join(id)
    }

    /// The agent's own log dir (`CODEX_LOG_DIR`), writable by a confined agent.
    pub fn logs_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("logs").join(id)
    }

    /// git-codex's record of session `id`'s runs (each run's log with the proxy's lines, the
    /// review hook's log): unlike the logs dir, never writable by a confined agent, which
    /// could rewrite what it did.
    pub fn runs_dir(&self, id: &str) -> Utf8PathBuf {
        self.root.join("runs").join(id)
    }

    pub fn is_initialized(&self) -> bool {
        self.sessions_dir().is_dir() && self.config_file().is_file()
    }

    /// Takes the lock that serialises every mutation of sessions (blocks until free). With no
    /// state dir there is no session to guard, and none is made: a command that then finds
    /// no session ('no session x') leaves no trace. What sets the state dir up takes
    /// [`StateDir::lock_creating`].
    pub fn lock(&self) -> anyhow::Result<StateLock> {
        if !self.root.is_dir() {
            return Ok(StateLock { _file: None });
        }
        self.lock_creating()
    }

    /// [`StateDir::lock`], making the state dir first when there is none. The lock is held on
    /// the state dir itself, which cannot vanish while it holds sessions: a lock file could be
    /// deleted or replaced while held (as git's own "remove the file manually" advice invites),
    /// and the next command would then lock a new file beside the holder.
    pub fn lock_creating(&self) -> anyhow::Result<StateLock> {
        fs_err::create_dir_all(&self.root)?;
        let dir = self.open_for_lock()?;
        dir.lock()
            .with_context(|| format!("cannot take the lock on {}", self.root))?;
        Ok(StateLock { _file: Some(dir) })
    }

    fn open_for_lock(&self) -> anyhow::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Whoever cannot write the state dir (a confined agent's git, whose hooks call
        // git-codex) must not hold the lock that serialises its writers.
        rustix::fs::access(self.root.as_std_path(), rustix::fs::Access::WRITE_OK).with_context(
            || {
                format!(
                    "cannot lock the state dir {}: it is not writable here",
                    self.root
                )
            },
        )?;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags())
            .open(&self.root)
            .with_context(|| format!("cannot open the state dir {} to lock it", self.root))
    }

    /// Takes the lock only if it is free right now. Hooks use this: the command that fired
    /// them may hold the lock (a `session add` running `git worktree add`).
    pub fn try_lock(&self) -> anyhow::Result<Option<StateLock>> {
        let Ok(dir) = self.open_for_lock() else {
            return Ok(None);
        };
        match dir.try_lock() {
            Ok(()) => Ok(Some(StateLock { _file: Some(dir) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => Err(err.into()),
        }
    }

    /// Whether another process holds the state lock now (a command at work).
    pub fn is_busy(&self) -> bool {
        self.open_for_lock()
            .is_ok_and(|dir| matches!(dir.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
    }

    /// The file whose modification time is the earliest moment a session may expire; the
    /// post-checkout shim compares it with files the checkout just wrote, so a checkout
    /// starts git-codex only when something may have expired.
    pub fn expiry_stamp(&self) -> Utf8PathBuf {
        self.root.join("expiry-stamp")
    }

    /// Sets the stamp to `at`, or removes it when nothing can expire.
    pub fn set_expiry_stamp(&self, at: Option<jiff::Timestamp>) -> anyhow::Result<()> {
        let path = self.expiry_stamp();
        let Some(at) = at else {
            return match fs_err::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
                _ => Ok(()),
            };
        };
        let file = fs_err::File::create(&path)?;
        let seconds = u64::try_from(at.as_second()).unwrap_or(0);
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        file.file().set_modified(when)?;
        Ok(())
    }

    /// The stamp from the records alone: each one's last activity plus its ttl. A commit
    /// on a branch only moves an expiry later, so this is never too late.
    fn refresh_expiry_stamp(&self) -> anyhow::Result<()> {
        let (records, _) = self.records()?;
        self.set_expiry_stamp(records.iter().filter_map(|r| r.expires_at(None)).min())
    }

    /// Every record, sorted by id; unreadable ones come back as [`BrokenRecord`].
    pub fn records(&self) -> anyhow::Result<(Vec<SessionRecord>, Vec<BrokenRecord>)> {
        let dir = self.sessions_dir();
        let mut good = Vec::new();
        let mut broken = Vec::new();
        let whole = |_: &str, bytes: &[u8]| Some(bytes.to_vec());
        let Some(entries) = crate::dirfiles::read_known(None, dir.as_std_path(), whole)
            .map_err(|err| anyhow::anyhow!("cannot read {dir}: {err}"))?
        else {
            return Ok((good, broken));
        };
        for entry in entries {
            let not_a_file = || Err("not a plain file".to_string());
            let (name, bytes) = match entry {
                crate::dirfiles::Known::File(name, bytes) => (
                    name,
                    bytes
                        .map_err(|err| err.to_string())
                        .map(Option::unwrap_or_default),
                ),
                crate::dirfiles::Known::Dir(name) => (name, not_a_file()),
                crate::dirfiles::Known::Other(name) => match String::from_utf8(name) {
                    Ok(name) => (name, not_a_file()),
                    Err(_) => continue,
                },
            };
            let Some(stem) = record_stem(&name) else {
                continue;
            };
            let path = dir.join(&name);
            let read = bytes.map_err(|problem| (problem, None));
            match read.and_then(|bytes| parse_record(&bytes, stem).map_err(|e| (e, Some(bytes)))) {
                Ok(record) => good.push(record),
                Err((problem, bytes)) => broken.push(BrokenRecord {
                    id: stem.to_string(),
                    port: bytes.as_deref().and_then(lenient_port),
                    path,
                    problem,
                }),
            }
        }
        good.sort_by(|a, b| a.id.cmp(&b.id));
        broken.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((good, broken))
    }

    /// What [`StateDir::records`] tells of each readable record, in brief: for the hooks,
    /// which read every record on every landing. A record whose bytes an earlier hook parsed
    /// is not parsed again (see `dirfiles::read_known`).
    pub fn briefs(&self) -> anyhow::Result<Vec<SessionBrief>> {
        let dir = self.sessions_dir();
        let derive = |name: &str, bytes: &[u8]| {
            SessionBrief::from(&parse_record(bytes, record_stem(name)?).ok()?).encode()
        };
        let Some(entries) =
            crate::dirfiles::read_known(Some("session record"), dir.as_std_path(), derive)
                .map_err(|err| anyhow::anyhow!("cannot read {dir}: {err}"))?
        else {
            return Ok(Vec::new());
        };
        let mut briefs = Vec::new();
        for entry in entries {
            let crate::dirfiles::Known::File(name, value) = entry else {
                continue;
            };
            if record_stem(&name).is_none() {
                continue;
            }
            match value.map(|v| v.as_deref().and_then(SessionBrief::decode)) {
                Ok(Some(brief)) => briefs.push(brief),
                // Broken, or what a brief cannot hold: as `records` tells it.
                Ok(None) => {
                    return Ok(self.records()?.0.iter().map(SessionBrief::from).collect());
                }
                // Unreadable: a broken record, which no session line counts.
                Err(_) => {}
            }
        }
        briefs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(briefs)
    }

    /// The record of `id` (exact), exit 4 when there is none, exit 1 when it is corrupt.
    pub fn record(&self, id: &SessionId) -> anyhow::Result<SessionRecord> {
        let path = self.record_path(id.as_str());
        if !path.is_file() {
            return Err(UserError::unknown_session(id.as_str()).into());
        }
        read_record(&path).map_err(|problem| {
            UserError::runtime(format!("session record {path} is corrupt: {problem}"))
                .hint(format!(
                    "move the file aside, or run 'git codex session remove {id}' to clean up"
                ))
                .into()
        })
    }

    pub fn write_record(&self, record: &SessionRecord) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(record)?;
        json.push(b'\n');
        atomic_write(&self.record_path(&record.id), &json)?;
        self.refresh_expiry_stamp()
    }

    pub fn delete_record(&self, id: &str) -> anyhow::Result<()> {
        match fs_err::remove_file(self.record_path(id)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        self.refresh_expiry_stamp()
    }

    /// Creates the dirs, a commented default config and the excludes. Idempotent.
    /// Returns true when something was created.
    pub fn init(&self, common_dir: &Utf8Path, excludes: &[String]) -> anyhow::Result<bool> {
        let mut created = false;
        for dir in [
            self.sessions_dir(),
            self.root.join("reviews"),
            self.root.join("logs"),
            self.root.join("tmp"),
        ] {
            if !dir.is_dir() {
                fs_err::create_dir_all(&dir)?;
                created = true;
            }
        }
        let config = self.config_file();
        if !config.exists() {
            atomic_write(&config, crate::config::edit::default_file_text().as_bytes())?;
            created = true;
        }
        created |= add_excludes(&common_dir.join("info").join("exclude"), excludes)?;
        Ok(created)
    }
}

fn read_record(path: &Utf8Path) -> Result<SessionRecord, String> {
    let bytes = fs_err::read(path).map_err(|e| e.to_string())?;
    parse_record(&bytes, path.file_stem().unwrap_or_default())
}

/// The id a file in the sessions dir is the record of, if it is one's (`<id>.json`, not
/// hidden).
fn record_stem(name: &str) -> Option<&str> {
    name.strip_suffix(".json")
        .filter(|stem| !stem.is_empty() && !stem.starts_with('.'))
}

/// A record from its file's bytes; `expected` is the id its file name gives.
fn parse_record(bytes: &[u8], expected: &str) -> Result<SessionRecord, String> {
    let record: SessionRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if record.schema != record::SCHEMA {
        return Err(format!("unsupported schema {}", record.schema));
    }
    if record.id != expected {
        return Err(format!(
            "its id '{}' does not match its file name",
            record.id
        ));
    }
    Ok(record)
}

/// The `"port": N` of a record that does not parse (cut short, a field missing, another
/// schema): the first such member anywhere in the text.
fn lenient_port(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("\"port\"").find_map(|(at, key)| {
        let rest = text[at + key.len()..].trim_start().strip_prefix(':')?;
        let rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..digits].parse().ok()
    })
}

/// The session file git-codex writes into every worktree; `info/exclude` ignores it.
pub const SESSION_FILE: &str = ".codex-session.json";

/// Whether the repository whose common dir is `common_dir` excludes [`SESSION_FILE`] (as
/// `init` arranges), so that finding it in a worktree's root is no sign of untracked work.
pub fn session_file_excluded(common_dir: &Utf8Path) -> bool {
    std::fs::read_to_string(common_dir.join("info").join("exclude"))
        .is_ok_and(|text| text.lines().any(|l| l.trim() == format!("/{SESSION_FILE}")))
}

/// Appends the lines that `info/exclude` lacks.
fn add_excludes(path: &Utf8Path, lines: &[String]) -> anyhow::Result<bool> {
    let existing = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err.into()),
    };
    let missing: Vec<&String> = lines
        .iter()
        .filter(|line| !existing.lines().any(|l| l.trim() == line.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# git-codex: session worktrees and their metadata\n");
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    atomic_write(path, text.as_bytes())?;
    Ok(true)
}

/// The state dir is opened as a dir, never through a link.
fn libc_flags() -> i32 {
    libc::O_DIRECTORY | libc::O_NOFOLLOW
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link planted under the temporary name (a session worktree is the agent's) is
    /// replaced, never written through.
    #[test]
    fn atomic_write_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = Utf8Path::from_path(dir.path()).expect("utf-8");
        let victim = dir.join("victim");
        fs_err::write(&victim, "precious\n").expect("victim");
        let target = dir.join("session.json");
        let planted = dir.join(format!(".session.json.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).expect("plant link");
        atomic_write(&target, b"new\n").expect("write");
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(fs_err::read_to_string(&target).unwrap(), "new\n");
        assert!(!planted.exists());
    }

    /// A link planted where a log goes (the logs dir is the agent's) is replaced, and what
    /// it pointed at is untouched.
    #[test]
    fn create_fresh_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = Utf8Path::from_path(dir.path()).expect("utf-8");
        let victim = dir.join("hooks-cache.sh");
        fs_err::write(&victim, "precious\n").expect("victim");
        let log = dir.join("review-hook.log");
        std::os::unix::fs::symlink(&victim, &log).expect("plant link");
        let mut file = create_fresh(&log).expect("create");
        std::io::Write::write_all(&mut file, b"log\n").expect("write");
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!fs_err::symlink_metadata(&log).unwrap().is_symlink());
        assert_eq!(fs_err::read_to_string(&log).unwrap(), "log\n");
    }
}
