//! Reports: markdown for people, JSON (schema 1, camelCase) for tools.

use std::fmt::Write as _;

use serde_json::json;

use super::Summary;
use super::approval::ApprovalState;
use super::diff::FileStatus;
use crate::output::escape::{md_block, md_cell, md_code, md_text};

pub fn json(summary: &Summary) -> serde_json::Value {
    json!({
        "schema": 1,
        "session": summary.session,
        "branch": summary.branch,
        "base": summary.base.to_string(),
        "tip": summary.tip.to_string(),
        "stagedCommit": summary.staged,
        "commits": summary.commits,
        "files": summary.files,
        "totals": summary.totals,
        "hook": summary.hook,
        "approval": summary.approval.to_json(),
        "nestedRepositories": summary.nested,
    })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

pub fn markdown(s: &Summary) -> String {
    let base = s.base.to_string();
    let tip = s.tip.to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Review of session {}: {}..{}\n",
        md_code(&s.session),
        md_code(short(&base)),
        md_code(short(&tip))
    );
    let _ = writeln!(
        out,
        "Branch {} · {} commit(s) · {} file(s) changed, {} insertion(s)(+), {} deletion(s)(-)\n",
        md_code(&s.branch),
        s.commits.len(),
        s.totals.files,
        s.totals.insertions,
        s.totals.deletions
    );
    if let Some(staged) = &s.staged {
        let _ = writeln!(
            out,
            "Uncommitted changes were committed as {} (`codex({}): snapshot`).\n",
            md_code(short(staged)),
            s.session
        );
    }
    out.push_str("## Files\n\n");
    if s.files.is_empty() {
        out.push_str("No changes against the base.\n\n");
    } else {
        out.push_str("| status | file | + | - |\n|---|---|---:|---:|\n");
        for f in &s.files {
            let status = match f.status {
                _ if f.binary => "binary",
                FileStatus::Added => "added",
                FileStatus::Modified => "modified",
                FileStatus::Deleted => "deleted",
                FileStatus::Renamed => "renamed",
                FileStatus::Copied => "copied",
            };
            let name = match &f.old_path {
                Some(old) => format!("{} → {}", md_cell(old), md_cell(&f.path)),
                None => md_cell(&f.path),
            };
            let (plus, minus) = if f.binary {
                ("-".to_string(), "-".to_string())
            } else {
                (f.insertions.to_string(), f.deletions.to_string())
            };
            let _ = writeln!(out, "| {status} | {name} | {plus} | {minus} |");
        }
        let _ = writeln!(
            out,
            "\n**Totals:** {} file(s), +{} -{}\n",
            s.totals.files, s.totals.insertions, s.totals.deletions
        );
    }
    if !s.nested.is_empty() {
        out.push_str("## Nested repositories\n\n");
        for warning in s.nested_warnings() {
            let _ = writeln!(out, "- **warning:** {}", md_text(&warning));
        }
        out.push('\n');
    }
    out.push_str("## Commits\n\n");
    if s.commits.is_empty() {
        out.push_str("None.\n");
    }
    for c in &s.commits {
        let _ = writeln!(
            out,
            "- {} {} ({})",
            md_code(short(&c.sha)),
            md_text(&c.subject),
            md_text(&c.author)
        );
    }
    out.push_str("\n## Review hook\n\n");
    match &s.hook {
        None => out.push_str("No review hook is configured (review.hook).\n"),
        Some(h) => {
            let verdict = match (h.timed_out, h.exit_code) {
                (true, _) => "was killed: it ran past review.hook_timeout".to_string(),
                (false, Some(0)) => "passed (exit 0)".to_string(),
                (false, Some(code)) => format!("failed (exit {code})"),
                (false, None) => "failed (did not run to an exit code)".to_string(),
            };
            let _ = writeln!(
                out,
                "{} {verdict} in {} ms.\n",
                md_code(&h.command),
                h.duration_ms
            );
            if !h.output.is_empty() {
                let _ = writeln!(
                    out,
                    "<details><summary>hook output</summary>\n\n{}\n</details>",
                    md_block(&h.output)
                );
            }
        }
    }
    out.push_str("\n## Approval\n\n");
    let line = match &s.approval {
        ApprovalState::Pending => "Not approved yet.".to_string(),
        ApprovalState::Approved(v) => {
            format!(
                "Approved by {} for {}.",
                md_text(&v.by),
                md_code(short(&v.commit))
            )
        }
        ApprovalState::Stale(v) => format!(
            "Stale: approved by {} for {}, but the branch has moved on since.",
            md_text(&v.by),
            md_code(short(&v.commit))
        ),
        ApprovalState::Rejected(v) => {
            format!(
                "Rejected by {} at {}.",
                md_text(&v.by),
                md_code(short(&v.commit))
            )
        }
        ApprovalState::Unverified(v, why) => format!(
            "Approved by {} for {}, but it does not count: {}.",
            md_text(&v.by),
            md_code(short(&v.commit)),
            md_text(why)
        ),
    };
    let _ = writeln!(out, "{line}");
    if let ApprovalState::Approved(v)
    | ApprovalState::Stale(v)
    | ApprovalState::Rejected(v)
    | ApprovalState::Unverified(v, _) = &s.approval
        && !v.message.trim().is_empty()
    {
        let _ = writeln!(out, "\n{}", md_block(&v.message));
    }
    out
}
