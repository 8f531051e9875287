//! The one place where text from outside (file names, commit subjects, author names, branch
//! names, hook output, review messages, anything an agent or a repository wrote) is made safe
//! to show: on a terminal no control character or escape sequence arrives raw, and in markdown
//! nothing breaks a table row, a code span or a code block, or turns into HTML.
//!
//! Terminal forms follow git's `quote_c_style`: names are shown bare when harmless, else in
//! double quotes with C escapes (`"a\033[31m.txt"`); free text keeps its words and has only the
//! dangerous characters escaped. JSON stays exact data: what a terminal would act on is
//! written as a `\uXXXX` escape, which every JSON reader turns back into the same text.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use serde::Serialize as _;
use serde_json::ser::{Formatter, PrettyFormatter};

/// Characters that must not reach a terminal or a rendered report raw: C0 controls, DEL, C1
/// controls (U+0080-U+009F), bidi embeddings, overrides and isolates, and the invisible
/// marks, fillers, variation selectors and tag characters that make text read differently
/// from what it is (a soft hyphen, a Hangul filler, `U+E0041` hiding a word).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
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

/// Free text as [`text`] shows it, in parts: `(false, as written)` and `(true, an escape)`,
/// so a display can set escapes apart from a backslash the text itself holds (a real
/// carriage return from the two characters `\r`).
pub fn text_parts(text: &str) -> Vec<(bool, Cow<'_, str>)> {
    let keep = |c: char| c == '\n' || c == '\t';
    let mut parts = Vec::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if is_unsafe(c) && !keep(c) {
            if start < at {
                parts.push((false, Cow::Borrowed(&text[start..at])));
            }
            let mut escaped = String::new();
            push_escaped(&mut escaped, c);
            parts.push((true, Cow::Owned(escaped)));
            start = at + c.len_utf8();
        }
    }
    if start < text.len() {
        parts.push((false, Cow::Borrowed(&text[start..])));
    }
    parts
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

/// Lines kept line for line (a patch) as a fenced markdown code block tagged `lang`: each
/// line escaped as free text, its trailing whitespace kept, under a fence no line can close.
pub fn md_fence<'a>(lang: &str, lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::new();
    for l in lines {
        body.push_str(&self::text(l));
        body.push('\n');
    }
    let fence = "`".repeat(longest_run(&body, '`').max(2) + 1);
    format!("{fence}{lang}\n{body}{fence}")
}

/// Pretty JSON, exact, with no character a terminal would act on written raw: serde escapes
/// the C0 controls, and DEL, C1 controls, bidi and invisible marks become `\uXXXX` here.
pub fn json_pretty(value: &serde_json::Value) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, TerminalSafe(PrettyFormatter::new()));
    value.serialize(&mut serializer)?;
    Ok(String::from_utf8(out)?)
}

/// serde_json's pretty layout, with unsafe characters in strings escaped.
struct TerminalSafe<'a>(PrettyFormatter<'a>);

impl Formatter for TerminalSafe<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
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
        // Invisible characters that would hide or fake text.
        for hidden in [
            "soft\u{AD}hyphen",
            "tag\u{E0041}",
            "fill\u{3164}",
            "vs\u{FE0F}",
            "su\u{1BCA1}do",
            "con\u{1BCA0}fig.py",
            "glyph\u{13430}join",
        ] {
            assert!(quote(hidden).starts_with('"'), "{hidden:?} is quoted");
            assert!(!line(hidden).contains(|c: char| is_unsafe(c)));
        }
    }

    #[test]
    fn text_keeps_lines_but_not_controls() {
        assert_eq!(text("a\nb\tc"), "a\nb\tc");
        assert_eq!(text("ok\rFAKE\x07\x7f"), "ok\\rFAKE\\a\\177");
        assert_eq!(line("a\nb"), "a\\nb");
        // A real carriage return is an escape part; the two characters `\r` are text.
        let parts = text_parts("x\ry\\r");
        let escapes: Vec<&str> = parts
            .iter()
            .filter(|(e, _)| *e)
            .map(|(_, p)| p.as_ref())
            .collect();
        assert_eq!(escapes, ["\\r"]);
        let joined: String = parts.iter().map(|(_, p)| p.as_ref()).collect();
        assert_eq!(joined, text("x\ry\\r"));
    }

    #[test]
    fn markdown_cannot_be_broken() {
        assert_eq!(md_cell("a|b"), "`a\\|b`");
        assert_eq!(md_code("x`y"), "``x`y``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_text("<img src=x>|*"), "\\<img src=x\\>\\|\\*");
        assert_eq!(
            md_text("[x](http://e) ![i](s) `c` &amp;"),
            "\\[x\\](http://e) \\!\\[i\\](s) \\`c\\` \\&amp;"
        );
        assert_eq!(md_block("a\n```\nb"), "````text\na\n```\nb\n````");
    }

    #[test]
    fn json_is_exact_and_terminal_safe() {
        let value = serde_json::json!({"p\u{9b}": "a\x1b[31m\u{202E}\x7f é"});
        let text = json_pretty(&value).unwrap();
        assert_eq!(
            text,
            "{\n  \"p\\u009b\": \"a\\u001b[31m\\u202e\\u007f é\"\n}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}
