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
    /// Whether `sandbox` was given with `session add --sandbox`: then it is the session's mode;
    /// otherwise each run follows `sandbox.mode` as it is then.
    #[serde(default)]
    pub sandbox_pinned: bool,
    pub port: u16,
    /// Files `copy_files` put into the worktree (relative paths): never committed by review.
    #[serde(default)]
    pub copied_files: Vec<String>,
    /// The agent `session run` started, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRun>,
    /// How the last run went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Where `session merge` landed the session: a merge run again at the same tip says so
    /// instead of landing it twice (a squash or rebase leaves the tip off the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<Landed>,
    /// A landing `session merge` began in the checkout of its target and has not finished:
    /// killed there, the files it wrote are proven the landing's against this, put back and
    /// landed whole by the next merge (`doctor` names them meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<Landing>,
    /// The rejection tag `refs/codex/rejections/<id>` held when this session was made: an
    /// earlier session's of that id, whose message is not feedback for this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_rejection: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Landing {
    /// The full name of the branch it lands on.
    pub target: String,
    /// The target's commit and the session's tip it lands.
    pub old: String,
    pub tip: String,
    /// `merge`, `squash`, `rebase` or `ff`.
    pub strategy: String,
    /// When git was about to land it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// The person's changes in the checkout, kept aside while the landing is finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<Kept>,
}

/// Paths of the person's, committed as they were (`commit`, at `refs/codex/kept/<id>`; its
/// second parent holds the staged versions) before they were put back as HEAD has them;
/// written back once the session has landed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    pub commit: String,
    /// Each path's bytes in hex (a name need not be UTF-8); one absent from `commit` was
    /// absent in the checkout.
    pub paths: Vec<String>,
    /// Those of `paths` that were staged apart from HEAD.
    #[serde(default)]
    pub staged: Vec<String>,
}

fn hex(path: &[u8]) -> String {
    path.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Kept {
    pub fn new(commit: String, paths: &[Vec<u8>], staged: &[Vec<u8>]) -> Kept {
        Kept {
            commit,
            paths: paths.iter().map(|p| hex(p)).collect(),
            staged: staged.iter().map(|p| hex(p)).collect(),
        }
    }

    /// The paths, as bytes; `None` when the record was edited into something else.
    pub fn paths(&self) -> Option<Vec<Vec<u8>>> {
        self.paths.iter().map(|h| unhex(h)).collect()
    }

    /// The staged paths, as bytes.
    pub fn staged(&self) -> Option<Vec<Vec<u8>>> {
        self.staged.iter().map(|h| unhex(h)).collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Landed {
    /// The session tip that landed.
    pub tip: String,
    /// The full name of the branch it landed on.
    pub target: String,
    /// The target's commit that carries it.
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRun {
    pub pid: u32,
    /// The process's start time in clock ticks since boot: a reused pid does not match it.
    pub start_ticks: u64,
    pub command: Vec<String>,
    pub started: Timestamp,
    pub network_enforced: bool,
    /// Whether its writes were confined to its session (SPEC §7a).
    #[serde(default)]
    pub filesystem_confined: bool,
    pub log: Utf8PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    pub command: Vec<String>,
    pub started: Timestamp,
    pub ended: Timestamp,
    /// The agent's exit code; for a signal, 128 + its number, as shells report it.
    pub exit_code: i32,
    pub sandbox: String,
    pub network_enforced: bool,
    #[serde(default)]
    pub filesystem_confined: bool,
    pub log: Utf8PathBuf,
}

impl AgentRun {
    pub fn is_alive(&self) -> bool {
        crate::procfs::is_alive(self.pid, self.start_ticks)
    }
}

impl SessionRecord {
    /// When the session expires: `ttl` after its last activity, where a commit on its branch
    /// (`tip_time`) counts as activity too. `None` when it never expires, or while its agent
    /// is alive.
    pub fn expires_at(&self, tip_time: Option<Timestamp>) -> Option<Timestamp> {
        if self.agent.as_ref().is_some_and(AgentRun::is_alive) {
            return None;
        }
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

/// What the hooks read of every record on every landing: which session a branch or worktree
/// is, and where it started. A record read whole gives the same ([`From`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBrief {
    pub id: String,
    pub branch: String,
    pub worktree: Utf8PathBuf,
    pub base_commit: String,
}

impl From<&SessionRecord> for SessionBrief {
    fn from(record: &SessionRecord) -> SessionBrief {
        SessionBrief {
            id: record.id.clone(),
            branch: record.branch.clone(),
            worktree: record.worktree.clone(),
            base_commit: record.base_commit.clone(),
        }
    }
}

impl SessionBrief {
    /// Its fields, NUL between them; `None` when one holds a NUL itself.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let fields = [
            self.id.as_str(),
            self.branch.as_str(),
            self.worktree.as_str(),
            self.base_commit.as_str(),
        ];
        if fields.iter().any(|f| f.contains('\0')) {
            return None;
        }
        Some(fields.join("\0").into_bytes())
    }

    /// What [`SessionBrief::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Option<SessionBrief> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split('\0');
        let brief = SessionBrief {
            id: fields.next()?.to_string(),
            branch: fields.next()?.to_string(),
            worktree: fields.next()?.into(),
            base_commit: fields.next()?.to_string(),
        };
        fields.next().is_none().then_some(brief)
    }
}
