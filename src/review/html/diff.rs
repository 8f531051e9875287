//! Each file's diff as tables: unified (old and new line numbers beside one column of code)
//! and side by side (each run of deletions paired with the additions that follow it). Both
//! are in the page; a CSS-only switch shows one.

use maud::{Markup, html};

use super::{counts, path, status};
use crate::output::escape::{line, quote, text_parts};
use crate::review::Summary;
use crate::review::patch::{FilePatch, Hunk};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Context,
    Del,
    Add,
    /// `\ No newline at end of file`: about the line before it, with no number of its own.
    Note,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Context => "ctx",
            Kind::Del => "del",
            Kind::Add => "add",
            Kind::Note => "note",
        }
    }
}

/// One line of a hunk with its numbers in the old and the new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Row<'a> {
    pub kind: Kind,
    pub old: Option<u64>,
    pub new: Option<u64>,
    /// The line without its prefix.
    pub text: &'a str,
}

/// The hunk's lines numbered from its `old_start` and `new_start`.
pub(super) fn rows(hunk: &Hunk) -> Vec<Row<'_>> {
    let (mut old, mut new) = (hunk.old_start, hunk.new_start);
    let mut out = Vec::with_capacity(hunk.lines.len());
    for l in &hunk.lines {
        // The prefix is one ASCII byte, so slicing after it stays on a char boundary.
        let rest = l.get(1..).unwrap_or("");
        let row = match l.as_bytes().first() {
            Some(b'+') => {
                new += 1;
                Row {
                    kind: Kind::Add,
                    old: None,
                    new: Some(new - 1),
                    text: rest,
                }
            }
            Some(b'-') => {
                old += 1;
                Row {
                    kind: Kind::Del,
                    old: Some(old - 1),
                    new: None,
                    text: rest,
                }
            }
            Some(b'\\') => Row {
                kind: Kind::Note,
                old: None,
                new: None,
                text: rest.trim_start(),
            },
            first => {
                old += 1;
                new += 1;
                let text = if first == Some(&b' ') {
                    rest
                } else {
                    l.as_str()
                };
                Row {
                    kind: Kind::Context,
                    old: Some(old - 1),
                    new: Some(new - 1),
                    text,
                }
            }
        };
        out.push(row);
    }
    out
}

/// One side of a side-by-side row; `note` is a `\ No newline` line about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell<'a> {
    pub kind: Kind,
    pub num: Option<u64>,
    pub text: &'a str,
    pub note: Option<&'a str>,
}

type Pair<'a> = (Option<Cell<'a>>, Option<Cell<'a>>);

/// The rows side by side: context on both sides, each run of deletions beside the run of
/// additions after it (the longer run's extra lines face an empty cell).
pub(super) fn pairs<'a>(rows: &[Row<'a>]) -> Vec<Pair<'a>> {
    let mut out: Vec<Pair<'a>> = Vec::new();
    let (mut dels, mut adds): (Vec<Cell<'a>>, Vec<Cell<'a>>) = (Vec::new(), Vec::new());
    let mut last = Kind::Context;
    for row in rows {
        let cell = |num| Cell {
            kind: row.kind,
            num,
            text: row.text,
            note: None,
        };
        match row.kind {
            Kind::Del => {
                if !adds.is_empty() {
                    flush(&mut out, &mut dels, &mut adds);
                }
                dels.push(cell(row.old));
            }
            Kind::Add => adds.push(cell(row.new)),
            Kind::Context => {
                flush(&mut out, &mut dels, &mut adds);
                out.push((Some(cell(row.old)), Some(cell(row.new))));
            }
            Kind::Note => note_on(last, row.text, &mut out, &mut dels, &mut adds),
        }
        if row.kind != Kind::Note {
            last = row.kind;
        }
    }
    flush(&mut out, &mut dels, &mut adds);
    out
}

fn note_on<'a>(
    last: Kind,
    note: &'a str,
    out: &mut [Pair<'a>],
    dels: &mut [Cell<'a>],
    adds: &mut [Cell<'a>],
) {
    let mark = |cell: Option<&mut Cell<'a>>| {
        if let Some(cell) = cell {
            cell.note = Some(note);
        }
    };
    match last {
        Kind::Del => mark(dels.last_mut()),
        Kind::Add => mark(adds.last_mut()),
        _ => {
            if let Some((left, right)) = out.last_mut() {
                mark(left.as_mut());
                mark(right.as_mut());
            }
        }
    }
}

fn flush<'a>(out: &mut Vec<Pair<'a>>, dels: &mut Vec<Cell<'a>>, adds: &mut Vec<Cell<'a>>) {
    let n = dels.len().max(adds.len());
    let mut left = dels.drain(..);
    let mut right = adds.drain(..);
    for _ in 0..n {
        out.push((left.next(), right.next()));
    }
}

/// The `Changes` section: the switch, then every file's diff in the file list's order.
pub(super) fn changes(s: &Summary) -> Markup {
    html! {
        section #changes {
            input.toggle #split type="checkbox" aria-label="Side by side";
            div.toolbar {
                h2 { "Changes" }
                label.switch for="split" { span.track { span.knob {} } "Side by side" }
            }
            @if s.files.is_empty() { p.muted { "No changes against the base." } }
            @for (n, file) in s.files.iter().enumerate() {
                details.file id=(format!("file-{}", n + 1)) open {
                    summary.file-head { (status(file)) span.path { (path(file)) } (counts(file)) }
                    div.file-body {
                        @for patch in s.patches_of(file) { (body(s, patch, file.binary)) }
                    }
                }
            }
            // What git's patch holds beyond the file list (its rename detection may pair
            // files otherwise): shown too, so no part of the change is left off the page.
            @for patch in s.patches.iter().filter(|p| !s.files.iter().any(|f| f.raw_path == p.raw_path)) {
                details.file open {
                    summary.file-head { span.path { code { (quote(&patch.path)) } } }
                    div.file-body { (body(s, patch, patch.binary)) }
                }
            }
        }
    }
}

fn body(s: &Summary, patch: &FilePatch, binary: bool) -> Markup {
    let (hunks, cut) = patch.hunks_within(s.max_patch_lines);
    html! {
        (meta(patch))
        @if patch.binary || binary {
            p.muted { "Binary file: its content is not shown." }
        } @else if hunks.is_empty() && cut == 0 {
            p.muted { "The content is unchanged." }
        } @else {
            (unified(&hunks))
            (split(&hunks))
        }
        @if cut > 0 {
            p.cut {
                (cut) " more line(s) of this file's patch are left out (review.max_patch_lines = "
                (s.max_patch_lines) "); " code { "git diff " (s.base.to_string()) " " (s.tip.to_string()) }
                " shows all of it."
            }
        }
    }
}

/// git's extended header lines worth reading: modes (but a plain file's), similarity, rename
/// and copy sources.
fn meta(patch: &FilePatch) -> Markup {
    const SAID_ELSEWHERE: [&str; 6] = [
        "diff --git ",
        "index ",
        "--- ",
        "+++ ",
        "Binary files ",
        "GIT binary patch",
    ];
    let shown: Vec<&String> = patch
        .header
        .iter()
        .filter(|l| !SAID_ELSEWHERE.iter().any(|p| l.starts_with(p)))
        .filter(|l| {
            !matches!(
                l.as_str(),
                "new file mode 100644" | "deleted file mode 100644"
            )
        })
        .collect();
    html! {
        @if !shown.is_empty() { div.meta { @for l in shown { div { (line(l)) } } } }
    }
}

/// `@@ -a,b +c,d @@` and the function context after it, set apart.
fn hunk_head(hunk: &Hunk) -> Markup {
    let header = line(&hunk.header);
    let (range, context) = match header.find(" @@") {
        Some(at) => header.split_at(at + 3),
        None => (header.as_ref(), ""),
    };
    html! { (range) @if !context.trim().is_empty() { span.func { (context.trim()) } } }
}

fn unified(hunks: &[Hunk]) -> Markup {
    html! {
        table.diff.unified {
            colgroup { col.num; col.num; col; }
            @for hunk in hunks {
                tbody {
                    tr.hunk { td.num {} td.num {} td.head { (hunk_head(hunk)) } }
                    @for row in rows(hunk) {
                        tr class=(row.kind.class()) {
                            td.num { @if let Some(n) = row.old { (n) } }
                            td.num { @if let Some(n) = row.new { (n) } }
                            td.code { (shown(row.text)) }
                        }
                    }
                }
            }
        }
    }
}

fn split(hunks: &[Hunk]) -> Markup {
    html! {
        table.diff.split {
            colgroup { col.num; col; col.num; col; }
            @for hunk in hunks {
                tbody {
                    tr.hunk { td.num {} td.head colspan="3" { (hunk_head(hunk)) } }
                    @for (left, right) in pairs(&rows(hunk)) {
                        tr { (side(left, "left")) (side(right, "right")) }
                    }
                }
            }
        }
    }
}

fn side(cell: Option<Cell<'_>>, which: &str) -> Markup {
    let Some(cell) = cell else {
        return html! { td class={ "num empty " (which) } {} td.empty {} };
    };
    let class = cell.kind.class();
    html! {
        td class={ "num " (class) " " (which) } { @if let Some(n) = cell.num { (n) } }
        td class={ "code " (class) } {
            (shown(cell.text))
            @if let Some(note) = cell.note { span.noeol { (line(note)) } }
        }
    }
}

/// A line of the agent's, escaped as `escape::text` does, each escape marked apart (`span.ctl`) so a
/// real control character never reads as the backslash sequence a file may hold.
fn shown(code: &str) -> Markup {
    html! {
        @for (escaped, part) in text_parts(code) {
            @if escaped { span.ctl title="a control or invisible character" { (part) } } @else { (part) }
        }
    }
}
