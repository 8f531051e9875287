//! The review page: one self-contained HTML file (inline CSS and script, nothing fetched).
//!
//! Everything an agent or a repository wrote (names, contents, subjects, hook output,
//! messages) goes through `output::escape` first, so no control, bidi or invisible character
//! arrives raw, then through maud's HTML escaping. Only the constant CSS and script below are
//! written unescaped; no data ever goes inside the `<script>`.

mod diff;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Summary;
use super::approval::{ApprovalState, Verdict};
use super::diff::{FileStat, FileStatus};
use super::hook::HookResult;
use crate::output::escape::{line, quote, text};

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");
/// Even a tag that got through could fetch nothing: no network, no frames, no plugins.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// The page for `s`.
pub fn page(s: &Summary) -> String {
    let tip = s.tip.to_string();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "Review of " (quote(&s.session)) " at " (short(&tip)) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (top(s))
                main.wrap {
                    (warnings(s))
                    div.grid { (approval(s)) (hook(s.hook.as_ref())) }
                    (commits(s))
                    (file_list(s))
                    (diff::changes(s))
                }
                (footer(s))
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// `1 commit`, `3 commits`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A commit id shown short, the full id on hover.
fn sha(full: &str) -> Markup {
    html! { code title=(line(full)) { (line(short(full))) } }
}

fn top(s: &Summary) -> Markup {
    let (base, tip) = (s.base.to_string(), s.tip.to_string());
    html! {
        header.top { div.wrap {
            div.eyebrow { "git codex · session review" }
            div.title-row {
                h1 { "Session " code { (quote(&s.session)) } }
                div.badges { (approval_pill(&s.approval)) (hook_pill(s.hook.as_ref())) }
            }
            div.refs {
                span { "branch " code { (quote(&s.branch)) } }
                span { "base " (sha(&base)) " → tip " (sha(&tip)) }
            }
            (totals(s))
        } }
    }
}

fn totals(s: &Summary) -> Markup {
    let t = &s.totals;
    let all = (t.insertions + t.deletions).max(1) as f64;
    let add = 100.0 * t.insertions as f64 / all;
    let del = 100.0 * t.deletions as f64 / all;
    html! {
        div.totals {
            span.stat { b { (s.commits.len()) } " " (if s.commits.len() == 1 { "commit" } else { "commits" }) }
            span.stat { b { (t.files) } " " (if t.files == 1 { "file changed" } else { "files changed" }) }
            span { span.add-n { "+" (t.insertions) } " " span.del-n { "−" (t.deletions) } }
            span.bar title=(format!("{} insertion(s), {} deletion(s)", t.insertions, t.deletions)) {
                span.a style=(format!("width:{add:.1}%")) {}
                span.d style=(format!("width:{del:.1}%")) {}
            }
        }
    }
}

fn hook_verdict(h: &HookResult) -> (&'static str, String) {
    match (h.timed_out, h.exit_code) {
        (true, _) => ("bad", "killed: it ran past review.hook_timeout".into()),
        (false, Some(0)) if h.passed => ("ok", "passed".into()),
        (false, Some(code)) => ("bad", format!("failed (exit {code})")),
        (false, None) => ("bad", "failed (no exit code)".into()),
    }
}

fn hook_pill(h: Option<&HookResult>) -> Markup {
    match h {
        None => html! { span.pill { "no review hook" } },
        Some(h) => {
            let (class, verdict) = hook_verdict(h);
            html! { span class={ "pill " (class) } { "hook " (verdict) } }
        }
    }
}

fn approval_pill(state: &ApprovalState) -> Markup {
    let (class, label) = match state {
        ApprovalState::Pending => ("wait", "not approved"),
        ApprovalState::Approved(_) => ("ok", "approved"),
        ApprovalState::Stale(_) => ("wait", "approval stale"),
        ApprovalState::Rejected(_) => ("bad", "rejected"),
        ApprovalState::Unverified(..) => ("bad", "approval does not count"),
    };
    html! { span class={ "pill " (class) } { (label) } }
}

fn warnings(s: &Summary) -> Markup {
    let all = s
        .nested_warnings()
        .into_iter()
        .chain(s.hook_config_warnings())
        .chain(s.content_warnings());
    html! {
        @for warning in all {
            div.callout { strong { "⚠ warning: " } (line(&warning)) }
        }
    }
}

fn approval(s: &Summary) -> Markup {
    html! {
        section.card {
            h2 { "Approval" }
            p.state { (approval_pill(&s.approval)) " " (approval_line(&s.approval)) }
            @if let Some(v) = verdict_of(&s.approval) { (verdict(v)) }
            @if s.approved_here() {
                p.muted { "This tip is approved: nothing is left to approve." }
            } @else {
                p.hint { "To approve exactly this tip, and nothing added after it:" }
                div.cmd {
                    code #approve-cmd { (line(&s.approve_command())) }
                    button.copy type="button" data-copy="approve-cmd" hidden { "Copy" }
                }
            }
        }
    }
}

fn verdict_of(state: &ApprovalState) -> Option<&Verdict> {
    match state {
        ApprovalState::Pending => None,
        ApprovalState::Approved(v)
        | ApprovalState::Stale(v)
        | ApprovalState::Rejected(v)
        | ApprovalState::Unverified(v, _) => Some(v),
    }
}

fn approval_line(state: &ApprovalState) -> Markup {
    match state {
        ApprovalState::Pending => html! { "Not approved yet." },
        ApprovalState::Approved(v) => {
            html! { "Approved by " (line(&v.by)) " for " (sha(&v.commit)) "." }
        }
        ApprovalState::Stale(v) => html! {
            "Stale: approved by " (line(&v.by)) " for " (sha(&v.commit)) ", but the branch is at another commit now."
        },
        ApprovalState::Rejected(v) => {
            html! { "Rejected by " (line(&v.by)) " at " (sha(&v.commit)) "." }
        }
        ApprovalState::Unverified(v, why) => html! {
            "Approved by " (line(&v.by)) " for " (sha(&v.commit)) ", but it does not count: " (line(why)) "."
        },
    }
}

fn verdict(v: &Verdict) -> Markup {
    html! {
        dl.facts {
            dt { "commit" } dd { code { (line(&v.commit)) } }
            @if let Some(at) = v.at { dt { "at" } dd { (at) } }
        }
        @if !v.message.trim().is_empty() {
            pre.message { (text(v.message.trim_end())) }
        }
    }
}

fn hook(h: Option<&HookResult>) -> Markup {
    let Some(h) = h else {
        return html! {
            section.card {
                h2 { "Review hook" }
                p.muted { "No review hook is configured (" code { "review.hook" } ")." }
            }
        };
    };
    let duration = if h.duration_ms < 1000 {
        format!("{} ms", h.duration_ms)
    } else {
        format!("{:.1} s", h.duration_ms as f64 / 1000.0)
    };
    let lines = h.output.lines().count();
    html! {
        section.card {
            h2 { "Review hook" }
            div.verdict { (hook_pill(Some(h))) code { (line(&h.command)) } }
            dl.facts {
                dt { "exit code" }
                dd { @if let Some(code) = h.exit_code { (code) } @else { "none" } }
                dt { "duration" } dd { (duration) }
            }
            @if h.output.is_empty() {
                p.muted { "It printed nothing." }
            } @else {
                details.output open {
                    summary { "Output · " (count(lines, "line", "lines")) }
                    pre.output { (text(h.output.trim_end())) }
                }
            }
        }
    }
}

fn commits(s: &Summary) -> Markup {
    html! {
        section.card {
            h2 { "Commits" span.count { (s.commits.len()) } }
            @if let Some(staged) = &s.staged {
                p { "The agent's uncommitted changes were committed as " (sha(staged))
                    " (" code { "codex(" (quote(&s.session)) "): snapshot" } ")." }
            }
            @if s.commits.is_empty() { p.muted { "None." } }
            table.list { @for c in &s.commits {
                tr {
                    td.sha { (sha(&c.sha)) }
                    td.subject {
                        (line(&c.subject))
                        @if s.staged.as_deref() == Some(c.sha.as_str()) { " " span.pill { "snapshot" } }
                    }
                    td.who { (line(&c.author)) }
                }
            } }
        }
    }
}

fn status_name(f: &FileStat) -> &'static str {
    match f.status {
        FileStatus::Added => "added",
        FileStatus::Modified => "modified",
        FileStatus::Deleted => "deleted",
        FileStatus::Renamed => "renamed",
        FileStatus::Copied => "copied",
    }
}

fn status(f: &FileStat) -> Markup {
    let name = status_name(f);
    html! {
        span class={ "pill st-" (name) } { (name) }
        @if f.binary { " " span.pill.st-binary { "binary" } }
    }
}

/// The file's name, `old → new` for a rename or copy.
fn path(f: &FileStat) -> Markup {
    html! {
        @if let Some(old) = &f.old_path { span.old { (quote(old)) " → " } }
        span.new { (quote(&f.path)) }
    }
}

/// `+3 −1`, or `binary`.
fn counts(f: &FileStat) -> Markup {
    html! {
        @if f.binary { span.muted { "binary" } }
        @else { span.add-n { "+" (f.insertions) } " " span.del-n { "−" (f.deletions) } }
    }
}

/// Five squares shared out between insertions and deletions, as a glance at the size.
fn blocks(f: &FileStat) -> Markup {
    let all = f.insertions.saturating_add(f.deletions);
    let shown = if f.binary { 0 } else { all.min(5) };
    let adds = (f.insertions.saturating_mul(shown))
        .saturating_add(all / 2)
        .checked_div(all)
        .unwrap_or(0);
    html! {
        span.blocks { @for at in 0..5u64 {
            @if at < adds { i.a {} } @else if at < shown { i.d {} } @else { i {} }
        } }
    }
}

fn file_list(s: &Summary) -> Markup {
    html! {
        section.card {
            h2 { "Files" span.count { (s.files.len()) } }
            @if s.files.is_empty() { p.muted { "No changes against the base." } }
            table.list { @for (n, f) in s.files.iter().enumerate() {
                tr {
                    td.st { (status(f)) }
                    td.path { a href=(format!("#file-{}", n + 1)) { (path(f)) } }
                    td.n { (counts(f)) }
                    td.n { (blocks(f)) }
                }
            } }
        }
    }
}

fn footer(s: &Summary) -> Markup {
    html! {
        footer.wrap {
            "Made by git-codex for session " code { (quote(&s.session)) }
            ": base " code { (s.base.to_string()) } ", tip " code { (s.tip.to_string()) }
            ". This page is self-contained: it fetches nothing."
        }
    }
}

#[cfg(test)]
mod tests;
