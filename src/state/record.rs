//! The session record, `sessions/<id>.json`: the source of truth for a session.

use camino::Utf8PathBuf;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub schema: u32,
    pub id: String,
    pub branch: String,
    pub worktree: Utf8PathBuf,
    /// The revision the user named as base (`main`, `HEAD`, a sha).
    pub base: String,
    /// The commit the branch started from.
    pub base_commit: String,
    /// The branch the base named, if any: ahead/behind are counted against its current tip.
    #[serde(default)]
    pub base_ref: Option<String>,
    pub created: Timestamp,
    pub last_activity: Timestamp,
    /// `None` means the session never expires.
    pub ttl_seconds: Option<u64>,
    pub sandbox: String,
    pub port: u16,
    /// Files `copy_files` put into the worktree (relative paths): never committed by review.
    #[serde(default)]
    pub copied_files: Vec<String>,
}

impl SessionRecord {
    /// When the session expires: `ttl` after its last activity, where a commit on its branch
    /// (`tip_time`) counts as activity too. `None` when it never expires.
    pub fn expires_at(&self, tip_time: Option<Timestamp>) -> Option<Timestamp> {
        let ttl = self.ttl_seconds?;
        let last = match tip_time {
            Some(tip) if tip > self.last_activity => tip,
            _ => self.last_activity,
        };
        let secs = i64::try_from(ttl).unwrap_or(i64::MAX);
        Some(
            last.checked_add(jiff::SignedDuration::from_secs(secs))
                .unwrap_or(Timestamp::MAX),
        )
    }
}
