//! Approvals and rejections: annotated tag objects at `refs/codex/approvals/<id>` and
//! `refs/codex/rejections/<id>`, each naming the commit it judged (SPEC §3).

use gix::ObjectId;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

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
    /// Approved, and the approval contains the branch tip.
    Approved(Verdict),
    /// Approved once, but the branch has commits the approval does not contain.
    Stale(Verdict),
    /// Rejected at the current tip.
    Rejected(Verdict),
}

impl ApprovalState {
    pub fn name(&self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved(_) => "approved",
            ApprovalState::Stale(_) => "stale-approval",
            ApprovalState::Rejected(_) => "rejected",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ApprovalState::Pending => json!({"state": "pending"}),
            ApprovalState::Approved(v) | ApprovalState::Stale(v) | ApprovalState::Rejected(v) => {
                json!({"state": self.name(), "verdict": v})
            }
        }
    }
}

/// The state of session `id` whose branch is at `tip`.
pub fn state(reader: &Reader, id: &str, tip: ObjectId) -> anyhow::Result<ApprovalState> {
    if let Some(approval) = read(reader, &approval_ref(id))? {
        let approved = ObjectId::from_hex(approval.commit.as_bytes())?;
        return Ok(if reader.count_exclusive(tip, &[approved])? == 0 {
            ApprovalState::Approved(approval)
        } else {
            ApprovalState::Stale(approval)
        });
    }
    if let Some(rejection) = read(reader, &rejection_ref(id))?
        && rejection.commit_id() == Some(tip)
    {
        return Ok(ApprovalState::Rejected(rejection));
    }
    Ok(ApprovalState::Pending)
}
