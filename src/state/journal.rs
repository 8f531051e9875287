//! Intents: a multi-step operation on a session (add, restore, remove) writes what it is about
//! to do to `<state>/journal/<id>.json` before its first irreversible step and deletes it when
//! done. A command killed halfway leaves the intent, and the next git-codex command that takes
//! the state lock finishes the operation or rolls it back (`commands::session::journal`).

use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{StateDir, atomic_write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A new session's branch and worktree are being made.
    Add,
    /// A removed session is coming back.
    Restore,
    /// A session's work is being saved and its worktree moved to the trash.
    Remove,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Restore => "restore",
            Op::Remove => "remove",
        }
    }
}

/// What an interrupted operation was doing, enough to finish it or undo it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub op: Op,
    pub id: String,
    pub branch: String,
    pub worktree: Utf8PathBuf,
    pub started: Timestamp,
    /// Add and restore: the commit a branch they make starts at, when they make one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_branch_at: Option<String>,
    /// Restore: the trash entry the worktree comes back from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Utf8PathBuf>,
    /// Remove: whether the branch is kept even when merged.
    #[serde(default)]
    pub keep_branch: bool,
    /// Remove: files `copy_files` put in the worktree.
    #[serde(default)]
    pub copied_files: Vec<String>,
}

/// One journal file: its intent, or why it cannot be read.
pub struct Pending {
    pub path: Utf8PathBuf,
    pub intent: Result<Intent, String>,
}

impl StateDir {
    pub fn journal_dir(&self) -> Utf8PathBuf {
        self.root.join("journal")
    }

    pub fn intent_path(&self, id: &str) -> Utf8PathBuf {
        self.journal_dir().join(format!("{id}.json"))
    }

    /// Writes `intent` (replacing an earlier one of the same session) before the operation's
    /// first step.
    pub fn write_intent(&self, intent: &Intent) -> anyhow::Result<()> {
        fs_err::create_dir_all(self.journal_dir())?;
        let mut text = serde_json::to_vec_pretty(intent)?;
        text.push(b'\n');
        atomic_write(&self.intent_path(&intent.id), &text)
    }

    /// Deletes session `id`'s intent: its operation is done, or undone.
    pub fn drop_intent(&self, id: &str) -> anyhow::Result<()> {
        drop_file(&self.intent_path(id))
    }

    /// Every intent left behind, unreadable ones included. Only regular files are read.
    pub fn pending(&self) -> anyhow::Result<Vec<Pending>> {
        let list = match fs_err::read_dir(self.journal_dir()) {
            Ok(list) => list,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err.into()),
        };
        let mut out = Vec::new();
        for item in list {
            let item = item?;
            let Ok(path) = Utf8PathBuf::from_path_buf(item.path()) else {
                continue;
            };
            if path.extension() != Some("json") {
                continue;
            }
            let stem = path.file_stem().unwrap_or_default().to_string();
            let intent = match super::read_regular_file(&path) {
                Ok(Some(bytes)) => serde_json::from_slice::<Intent>(&bytes)
                    .map_err(|err| format!("cannot parse {path}: {err}"))
                    .and_then(|intent| {
                        // Its id names paths that replay deletes: only a valid id of its own file.
                        if intent.id == stem && super::SessionId::parse(&stem).is_ok() {
                            Ok(intent)
                        } else {
                            Err(format!("{path} names another or an invalid session id"))
                        }
                    }),
                Ok(None) => Err(format!("{path} is not a regular file")),
                Err(err) => Err(format!("{err:#}")),
            };
            out.push(Pending { path, intent });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

impl StateDir {
    /// The temporary files of an atomic write a killed git-codex left in the records' and the
    /// journal's dirs (`.<name>.tmp<pid>`, its pid gone).
    pub fn stale_temps(&self) -> Vec<Utf8PathBuf> {
        let mut out = Vec::new();
        for dir in [self.sessions_dir(), self.journal_dir()] {
            let Ok(list) = fs_err::read_dir(&dir) else {
                continue;
            };
            for item in list.flatten() {
                let name = item.file_name();
                let Some(name) = name.to_str() else {
                    continue;
                };
                let Some((_, pid)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp"))
                else {
                    continue;
                };
                let dead = !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && !crate::procfs::exists(pid);
                if dead && item.file_type().is_ok_and(|t| t.is_file()) {
                    out.push(dir.join(name));
                }
            }
        }
        out
    }
}

fn drop_file(path: &Utf8Path) -> anyhow::Result<()> {
    match fs_err::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}
