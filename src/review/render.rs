//! Reports: markdown for people, JSON (schema 1, camelCase) for tools.

use std::fmt::Write as _;

use serde_json::json;

use super::Summary;
use super::approval::ApprovalState;
use super::diff::FileStatus;
use crate::output::escape::{self, md_block, md_cell, md_code, md_fence, md_text};

pub fn json(summary: &Summary) -> serde_json::Value {
    let mut value = json!({
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
        "approveCommand": (!summary.approved_here()).then(|| summary.approve_command()),
    });
    if summary.json_hunks
        && let Some(files) = value.get_mut("files").and_then(|f| f.as_array_mut())
    {
        for (file, stat) in files.iter_mut().zip(&summary.files) {
            let mut hunks = Vec::new();
            let mut cut = 0;
            for patch in summary.patches_of(stat) {
                let (some, left_out) = patch.hunks_within(summary.max_patch_lines);
                hunks.extend(some);
                cut += left_out;
            }
            if let Some(object) = file.as_object_mut() {
                object.insert("hunks".into(), json!(hunks));
                object.insert("hunkLinesCut".into(), json!(cut));
            }
        }
    }
    value
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The markdown report: the summary, then each file's patch in a fenced `diff` block.
pub fn markdown(s: &Summary) -> String {
    let mut out = summary_markdown(s);
    out.push_str("\n## Changes\n\n");
    if s.patches.is_empty() {
        out.push_str("None.\n");
    }
    for patch in &s.patches {
        let _ = writeln!(out, "### {}\n", md_code(&patch.path));
        if patch.binary {
            out.push_str("Binary file: its content is not shown.\n\n");
        }
        let (lines, more) = patch.lines(s.max_patch_lines);
        let _ = writeln!(out, "{}\n", md_fence("diff", lines));
        if more > 0 {
            let _ = writeln!(
                out,
                "*{more} more line(s) of this file's patch are left out (review.max_patch_lines = {}); `git diff {} {}` shows all of it.*\n",
                s.max_patch_lines, s.base, s.tip
            );
        }
    }
    out
}

/// The summary alone: what the terminal shows above the patch, and `--stat` shows.
pub fn summary_markdown(s: &Summary) -> String {
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
    let content = s.content_warnings();
    if !content.is_empty() {
        out.push_str("## Not shown as it will be\n\n");
        for warning in content {
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
            "Stale: approved by {} for {}, but the branch is at another commit now.",
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
    if !s.approved_here() {
        let _ = writeln!(
            out,
            "\nTo approve exactly this tip, and nothing added after it:\n\n    {}",
            s.approve_command()
        );
    }
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

/// The patch as a terminal shows it: git's lines, each escaped as free text (a control
/// character or escape sequence in the agent's file shows as `\033`, never acts), coloured
/// afterwards with `colors` (`color.diff.<slot>` sequences) when given.
pub fn terminal_patch(s: &Summary, colors: Option<&[(&str, String)]>) -> String {
    let color = |slot: &str| -> &str {
        colors
            .and_then(|c| c.iter().find(|(name, _)| *name == slot))
            .map_or("", |(_, seq)| seq.as_str())
    };
    let paint = |out: &mut String, slot: &str, text: &str| {
        let seq = color(slot);
        if seq.is_empty() {
            out.push_str(text);
        } else {
            let _ = write!(out, "{seq}{text}\x1b[m");
        }
    };
    let mut out = String::new();
    for patch in &s.patches {
        for line in &patch.header {
            paint(&mut out, "meta", &escape::text(line));
            out.push('\n');
        }
        for hunk in &patch.hunks {
            let header = escape::line(&hunk.header);
            match header.find(" @@").map(|at| at + 3) {
                Some(end) if end < header.len() => {
                    paint(&mut out, "frag", &header[..end]);
                    out.push(' ');
                    paint(&mut out, "func", header[end..].trim_start_matches(' '));
                }
                _ => paint(&mut out, "frag", &header),
            }
            out.push('\n');
            for line in &hunk.lines {
                let text = marked(line, colors.is_some());
                let slot = match line.as_bytes().first() {
                    Some(b'+') => "new",
                    Some(b'-') => "old",
                    _ => "context",
                };
                paint(&mut out, slot, &text);
                out.push('\n');
            }
        }
    }
    out
}

/// A line of the agent's as [`escape::text`] shows it; in colour, each escape in reverse
/// video, so a real control character never reads as the backslash sequence a file may hold.
fn marked(line: &str, color: bool) -> std::borrow::Cow<'_, str> {
    if !color {
        return escape::text(line);
    }
    let parts = escape::text_parts(line);
    if parts.iter().all(|(escaped, _)| !escaped) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for (escaped, part) in parts {
        if escaped {
            let _ = write!(out, "\x1b[7m{part}\x1b[27m");
        } else {
            out.push_str(&part);
        }
    }
    std::borrow::Cow::Owned(out)
}
