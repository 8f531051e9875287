//! Writing a loose ref by hand, as git does: for the ledgers, which git-codex writes without
//! firing hooks (see `ledger`).

use anyhow::Context as _;
use gix::ObjectId;

/// A ledger's loose ref locked as git locks one (`<ref>.lock`, made exclusively), written
/// and renamed over the ref by [`LooseLock::commit`], removed when dropped otherwise. Done by
/// hand rather than by a gix transaction because the reference-transaction hook records
/// while its git holds `packed-refs.lock` (a deletion), which gix would wait for.
pub struct LooseLock {
    path: std::path::PathBuf,
    lock: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl LooseLock {
    pub fn take(repo: &gix::Repository, name: &str) -> anyhow::Result<LooseLock> {
        let path = repo.common_dir().join(name);
        let dir = path.parent().context("a ledger ref has a directory")?;
        std::fs::create_dir_all(dir)?;
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        let lock = std::path::PathBuf::from(lock);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .with_context(|| format!("cannot lock {}", lock.display()))?;
        Ok(LooseLock {
            path,
            lock,
            file: Some(file),
        })
    }

    /// Writes `new` and puts it in place; on failure the lock goes (when dropped).
    pub fn commit(mut self, new: ObjectId) -> anyhow::Result<()> {
        use std::io::Write as _;
        let file = self.file.as_mut().context("the lock is held")?;
        file.write_all(format!("{new}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&self.lock, &self.path)?;
        self.file = None;
        Ok(())
    }
}

impl Drop for LooseLock {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.lock);
        }
    }
}
