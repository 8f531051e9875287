//! The one place where text from outside (file names, commit subjects, author names, branch
//! names, hook output, review messages, anything an agent or a repository wrote) is made safe
//! to show: on a terminal no control character or escape sequence arrives raw, and in markdown
//! nothing breaks a table row, a code span or a code block, or turns into HTML.
//!
//! Terminal forms follow git's `quote_c_style`: names are shown bare when harmless, else in
//! double quotes with C escapes (`"a\033[31m.txt"`); free text keeps its words and has only the
//! dangerous characters escaped. JSON never comes here: serde keeps it exact.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that must not reach a terminal or a rendered report raw: C0 controls, DEL, C1
/// controls (U+0080-U+009F), bidi embeddings, overrides and isolates, and the invisible
/// marks and separators that make text read differently from what it is.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Appends `c` as git writes it inside a quoted name: `\n`, `\t`, ... or octal bytes.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0B' => out.push_str("\\v"),
        '\x0C' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        _ => {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\{byte:03o}");
            }
        }
    }
}

/// Escapes the characters `keep` does not let through, leaving everything else as it is.
fn escape_where(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if text.chars().all(|c| !is_unsafe(c) || keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A name (file, branch, ref, path, id) as git quotes paths: bare when it holds nothing
/// unsafe, `"` or `\`; otherwise in double quotes with C escapes.
pub fn quote(name: &str) -> Cow<'_, str> {
    if !name.chars().any(|c| is_unsafe(c) || c == '"' || c == '\\') {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// One line of free text (a commit subject, an author, a message): every unsafe character
/// escaped, newlines and tabs included, so it stays one line.
pub fn line(text: &str) -> Cow<'_, str> {
    escape_where(text, |_| false)
}

/// Free text of several lines (hook output, git's stderr, messages): newlines and tabs kept,
/// every other unsafe character escaped (`\r` too: it would overwrite what came before).
pub fn text(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c == '\n' || c == '\t')
}

/// A name as a markdown code span, quoted as on a terminal. Code spans show HTML and
/// markdown as text; the fence is longer than any run of backticks inside.
pub fn md_code(name: &str) -> String {
    code_span(&quote(name))
}

/// A name as a code span in a markdown table cell: a `|` would end the cell, so it becomes
/// `\|`, which GFM shows as `|` inside a code span in a table.
pub fn md_cell(name: &str) -> String {
    code_span(&quote(name)).replace('|', "\\|")
}

/// Free text inline in markdown (a subject, an author): one line, with every character that
/// markdown or HTML would act on backslash-escaped, so it renders as written. Safe in table
/// cells too (`|` is escaped).
pub fn md_text(text: &str) -> String {
    let text = line(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' | '#' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Free text as a fenced markdown code block, with a fence no line inside can close.
pub fn md_block(text: &str) -> String {
    let body = self::text(text);
    let fence = "`".repeat(longest_run(&body, '`').max(2) + 1);
    format!("{fence}text\n{}\n{fence}", body.trim_end())
}

fn longest_run(text: &str, wanted: char) -> usize {
    let (mut longest, mut current) = (0, 0);
    for c in text.chars() {
        current = if c == wanted { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

fn code_span(content: &str) -> String {
    let fence = "`".repeat(longest_run(content, '`') + 1);
    // A space on each side keeps a leading or trailing backtick (or a pair of spaces, which
    // CommonMark strips) from changing the span.
    let pad = content.starts_with('`')
        || content.ends_with('`')
        || (content.starts_with(' ') && content.ends_with(' ') && !content.trim().is_empty());
    if pad {
        format!("{fence} {content} {fence}")
    } else {
        format!("{fence}{content}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_git_does() {
        assert_eq!(quote("plain name.txt"), "plain name.txt");
        assert_eq!(quote("a\x1b[31mred"), "\"a\\033[31mred\"");
        assert_eq!(quote("tab\there"), "\"tab\\there\"");
        assert_eq!(quote("q\"b\\"), "\"q\\\"b\\\\\"");
        assert_eq!(quote("\u{202E}txt.exe"), "\"\\342\\200\\256txt.exe\"");
        assert_eq!(quote("c1\u{9b}31m"), "\"c1\\302\\23331m\"");
        assert_eq!(quote("été"), "été");
    }

    #[test]
    fn text_keeps_lines_but_not_controls() {
        assert_eq!(text("a\nb\tc"), "a\nb\tc");
        assert_eq!(text("ok\rFAKE\x07\x7f"), "ok\\rFAKE\\a\\177");
        assert_eq!(line("a\nb"), "a\\nb");
    }

    #[test]
    fn markdown_cannot_be_broken() {
        assert_eq!(md_cell("a|b"), "`a\\|b`");
        assert_eq!(md_code("x`y"), "``x`y``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_text("<img src=x>|*"), "\\<img src=x\\>\\|\\*");
        assert_eq!(md_block("a\n```\nb"), "````text\na\n```\nb\n````");
    }
}
