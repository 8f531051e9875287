//! Approvals and rejections: annotated tag objects at `refs/codex/approvals/<id>` and
//! `refs/codex/rejections/<id>`, each naming the commit it judged (SPEC §3).

use gix::ObjectId;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::ReviewConfig;
use crate::git::read::Reader;

pub fn approval_ref(id: &str) -> String {
    format!("refs/codex/approvals/{id}")
}

pub fn rejection_ref(id: &str) -> String {
    format!("refs/codex/rejections/{id}")
}

/// A recorded judgement: who, when, which commit, and what they said.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub tag: String,
    pub commit: String,
    pub by: String,
    pub at: Option<Timestamp>,
    pub message: String,
}

impl Verdict {
    pub fn commit_id(&self) -> Option<ObjectId> {
        ObjectId::from_hex(self.commit.as_bytes()).ok()
    }
}

/// Reads the tag a verdict ref points at; `None` when the ref does not exist or is not a tag
/// of a commit.
pub fn read(reader: &Reader, refname: &str) -> anyhow::Result<Option<Verdict>> {
    let Some(tag_id) = reader.ref_id(refname)? else {
        return Ok(None);
    };
    let Ok(tag) = reader.repo.find_object(tag_id)?.try_into_tag() else {
        return Ok(None);
    };
    let decoded = tag.decode()?;
    let commit = decoded.target();
    let (by, at) = match decoded.tagger()? {
        Some(sig) => (
            format!("{} <{}>", sig.name, sig.email),
            sig.time()
                .ok()
                .and_then(|t| Timestamp::from_second(t.seconds).ok()),
        ),
        None => (String::new(), None),
    };
    Ok(Some(Verdict {
        tag: tag_id.to_string(),
        commit: commit.to_string(),
        by,
        at,
        message: decoded.message.to_string(),
    }))
}

/// Where a session stands with its reviewers.
#[derive(Debug, Clone)]
pub enum ApprovalState {
    /// Nothing decided for the current tip.
    Pending,
    /// Approved, and the approval is of the branch tip itself.
    Approved(Verdict),
    /// Approved once, but the branch is at another commit since.
    Stale(Verdict),
    /// Rejected at the current tip.
    Rejected(Verdict),
    /// Signatures are required, and this approval's does not verify (the reason).
    Unverified(Verdict, String),
}

impl ApprovalState {
    pub fn name(&self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved(_) => "approved",
            ApprovalState::Stale(_) => "stale-approval",
            ApprovalState::Rejected(_) => "rejected",
            ApprovalState::Unverified(..) => "unverified-approval",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ApprovalState::Pending => json!({"state": "pending"}),
            ApprovalState::Approved(v) | ApprovalState::Stale(v) | ApprovalState::Rejected(v) => {
                json!({"state": self.name(), "verdict": v})
            }
            ApprovalState::Unverified(v, why) => {
                json!({"state": self.name(), "verdict": v, "reason": why})
            }
        }
    }
}

/// The state of session `id` whose branch is at `tip`; with `signers`, an approval counts only
/// when its signature verifies.
pub fn state(
    reader: &Reader,
    id: &str,
    tip: ObjectId,
    signers: Option<&Signers>,
) -> anyhow::Result<ApprovalState> {
    if let Some(approval) = read(reader, &approval_ref(id))? {
        if let Some(signers) = signers
            && let Err(why) =
                signers.verify(&reader.raw_object(ObjectId::from_hex(approval.tag.as_bytes())?)?)
        {
            return Ok(ApprovalState::Unverified(approval, why));
        }
        // Exactly the approved commit: an older one of its history (the branch reset back)
        // was never shown as it is, and the gate refuses it alone.
        let approved = ObjectId::from_hex(approval.commit.as_bytes())?;
        if approved == tip {
            return Ok(ApprovalState::Approved(approval));
        }
        // A rejection of the tip outranks an approval of what landed before it.
        return Ok(match rejected_at(reader, id, tip)? {
            Some(rejection) => ApprovalState::Rejected(rejection),
            None => ApprovalState::Stale(approval),
        });
    }
    Ok(match rejected_at(reader, id, tip)? {
        Some(rejection) => ApprovalState::Rejected(rejection),
        None => ApprovalState::Pending,
    })
}

/// Whether session `id`'s approval is for a commit one of the `protected` branch tips holds
/// (it landed), and the branch has gone on past it to `tip`: a rejection of what came after
/// leaves such an approval, or the landed commits would count as unapproved where they are.
pub fn landed_before(
    reader: &Reader,
    id: &str,
    tip: ObjectId,
    protected: &[ObjectId],
) -> anyhow::Result<bool> {
    let Some(approved) = read(reader, &approval_ref(id))?.and_then(|v| v.commit_id()) else {
        return Ok(false);
    };
    Ok(!protected.is_empty()
        && reader.count_exclusive(approved, protected)? == 0
        && reader.count_exclusive(tip, &[approved])? > 0)
}

/// Session `id`'s rejection, when it is of `tip`.
fn rejected_at(reader: &Reader, id: &str, tip: ObjectId) -> anyhow::Result<Option<Verdict>> {
    Ok(read(reader, &rejection_ref(id))?.filter(|r| r.commit_id() == Some(tip)))
}

/// Who may sign approvals (`review.require_signed`, `review.allowed_signers`): git's
/// allowed-signers file, checked with `ssh-keygen -Y verify` for the tagger's email.
#[derive(Debug, Clone)]
pub struct Signers {
    /// Empty when `review.allowed_signers` is not set: then nothing verifies.
    pub file: Utf8PathBuf,
}

const SSH_SIGNATURE: &str = "-----BEGIN SSH SIGNATURE-----";

impl Signers {
    /// `None` unless `review.require_signed`. A relative `allowed_signers` starts at `top`
    /// (the main worktree, or a bare repository's directory); `~/` at the home directory.
    pub fn from_config(review: &ReviewConfig, top: &Utf8Path) -> Option<Signers> {
        if !review.require_signed {
            return None;
        }
        let path = review.allowed_signers.as_str();
        let file = if path.is_empty() {
            Utf8PathBuf::new()
        } else {
            crate::config::expand_path(path, top)
        };
        Some(Signers { file })
    }

    /// Whether the tag object `raw` carries an SSH signature by a key that the allowed
    /// signers file lists for the tag's tagger (by email). The reason when not.
    pub fn verify(&self, raw: &[u8]) -> Result<(), String> {
        let text =
            std::str::from_utf8(raw).map_err(|_| "the approval tag is not UTF-8".to_string())?;
        let start = text
            .match_indices(SSH_SIGNATURE)
            .map(|(i, _)| i)
            .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n');
        let Some(start) = start else {
            return Err(if text.contains("-----BEGIN PGP SIGNATURE-----") {
                "the approval is signed with OpenPGP, which an allowed-signers file cannot vouch for (sign with an SSH key: gpg.format = ssh)".to_string()
            } else {
                "the approval is not signed".to_string()
            });
        };
        let (payload, signature) = text.split_at(start);
        let header = payload.split("\n\n").next().unwrap_or_default();
        let email = header
            .lines()
            .find_map(|l| l.strip_prefix("tagger "))
            .and_then(|t| Some(&t[t.find('<')? + 1..t.find('>')?]))
            .filter(|e| !e.is_empty())
            .ok_or_else(|| "the approval names no tagger".to_string())?;
        if self.file.as_str().is_empty() {
            return Err("review.allowed_signers is not set".to_string());
        }
        if !self.file.is_file() {
            return Err(format!(
                "the allowed signers file {} does not exist",
                self.file
            ));
        }
        let sig_file = scratch_file(signature.as_bytes())
            .map_err(|err| format!("cannot write a temporary file: {err}"))?;
        let result = ssh_verify(&self.file, email, &sig_file, payload.as_bytes());
        let _ = std::fs::remove_file(&sig_file);
        result
    }
}

/// A new file in the temporary directory holding `bytes`.
fn scratch_file(bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "git-codex-{}-{n}-{}.sig",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(bytes)?;
                return Ok(path);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}

fn ssh_verify(
    allowed: &Utf8Path,
    email: &str,
    signature: &std::path::Path,
    payload: &[u8],
) -> Result<(), String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "git",
            "-f",
            allowed.as_str(),
            "-I",
            email,
            "-s",
        ])
        .arg(signature)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run ssh-keygen to check the signature: {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(payload)
            .map_err(|err| format!("cannot feed ssh-keygen: {err}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|err| format!("ssh-keygen failed: {err}"))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.lines().next().unwrap_or("").trim();
    Err(format!(
        "its signature does not verify for {email} against {allowed}{}",
        if said.is_empty() {
            String::new()
        } else {
            format!(" ({said})")
        }
    ))
}
