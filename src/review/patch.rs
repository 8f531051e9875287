//! `git diff base tip` read back file by file: each file's section of the patch, its hunks,
//! and the path git names it by, so the reports can show each file's change under its name.

use serde::Serialize;

/// One file's part of the patch, from its `diff --git` line to the next.
#[derive(Debug, Clone, Default)]
pub struct FilePatch {
    /// The path the change is known by (the new one of a rename; the old one of a deletion),
    /// as text: a byte that is not UTF-8 as git writes it (`\377`).
    pub path: String,
    /// The path's bytes: what tells two files apart.
    pub raw_path: Vec<u8>,
    /// The source of a rename or copy.
    pub old_path: Option<String>,
    pub binary: bool,
    /// The lines before the first hunk: `diff --git`, `index`, modes, renames, `---`, `+++`.
    pub header: Vec<String>,
    pub hunks: Vec<Hunk>,
}

/// One `@@` hunk.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ context` line.
    pub header: String,
    pub old_start: u64,
    pub old_lines: u64,
    pub new_start: u64,
    pub new_lines: u64,
    /// The hunk's lines, each with its ` `, `+`, `-` or `\` prefix.
    pub lines: Vec<String>,
}

impl FilePatch {
    /// How many lines the section has in all.
    pub fn line_count(&self) -> usize {
        self.header.len() + self.hunks.iter().map(|h| 1 + h.lines.len()).sum::<usize>()
    }

    /// The section's lines as git printed them, the first `limit` of them, and how many more
    /// there were.
    pub fn lines(&self, limit: usize) -> (Vec<&str>, usize) {
        let all = self
            .header
            .iter()
            .map(String::as_str)
            .chain(self.hunks.iter().flat_map(|h| {
                std::iter::once(h.header.as_str()).chain(h.lines.iter().map(String::as_str))
            }));
        let lines: Vec<&str> = all.take(limit).collect();
        let more = self.line_count().saturating_sub(lines.len());
        (lines, more)
    }

    /// The hunks cut to `limit` lines of the section (its header counted), and how many
    /// lines were left out.
    pub fn hunks_within(&self, limit: usize) -> (Vec<Hunk>, usize) {
        let mut room = limit.saturating_sub(self.header.len());
        let mut out = Vec::new();
        let mut cut = 0;
        for hunk in &self.hunks {
            if room == 0 {
                cut += 1 + hunk.lines.len();
                continue;
            }
            room -= 1;
            let keep = hunk.lines.len().min(room);
            room -= keep;
            cut += hunk.lines.len() - keep;
            out.push(Hunk {
                lines: hunk.lines[..keep].to_vec(),
                ..hunk.clone()
            });
        }
        (out, cut)
    }
}

/// Reads a patch as `git diff` prints it (`a/` and `b/` prefixes, no colour).
pub fn parse(patch: &[u8]) -> Vec<FilePatch> {
    let text = String::from_utf8_lossy(patch);
    let mut files: Vec<FilePatch> = Vec::new();
    for line in text.split_terminator('\n') {
        if line.starts_with("diff --git ") || files.is_empty() {
            if let Some(done) = files.last_mut() {
                name_it(done);
            }
            files.push(FilePatch::default());
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if line.starts_with("@@ ")
            && let Some(hunk) = hunk_header(line)
        {
            file.hunks.push(hunk);
        } else if let Some(hunk) = file.hunks.last_mut() {
            hunk.lines.push(line.to_string());
        } else {
            if line.starts_with("Binary files ") || line == "GIT binary patch" {
                file.binary = true;
            }
            file.header.push(line.to_string());
        }
    }
    if let Some(last) = files.last_mut() {
        name_it(last);
    }
    files
}

/// Finds the section's path in its header: the rename or copy lines, else `+++`/`---`, else
/// the `diff --git a/X b/X` line (a binary file or a mode change), as `git apply` does.
fn name_it(file: &mut FilePatch) {
    let field = |prefix: &str| {
        file.header
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|name| unquote(name.strip_suffix('\t').unwrap_or(name)))
    };
    let renamed_to = field("rename to ").or_else(|| field("copy to "));
    let renamed_from = field("rename from ").or_else(|| field("copy from "));
    let new = field("+++ ").filter(|n| n != b"/dev/null");
    let old = field("--- ").filter(|n| n != b"/dev/null");
    let raw = if let Some(to) = renamed_to {
        file.old_path = renamed_from.as_deref().map(shown);
        to
    } else if let Some(new) = new {
        new.strip_prefix(b"b/").unwrap_or(&new).to_vec()
    } else if let Some(old) = old {
        old.strip_prefix(b"a/").unwrap_or(&old).to_vec()
    } else {
        file.header
            .first()
            .and_then(|l| l.strip_prefix("diff --git "))
            .map(git_line_name)
            .unwrap_or_default()
    };
    file.path = shown(&raw);
    file.raw_path = raw;
}

/// A name's bytes as text: UTF-8 as it is, any other byte as git writes it (`\377`).
fn shown(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\{byte:03o}"));
        }
    }
    out
}

/// The name in `a/X b/X` (both the same when the header alone names the file).
fn git_line_name(rest: &str) -> Vec<u8> {
    if rest.starts_with('"') {
        // `"a/x" "b/x"` or `"a/x" b/x`: the first quoted name ends at its closing quote.
        let mut escaped = false;
        for (at, c) in rest.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    let name = unquote(&rest[..=at]);
                    return name.strip_prefix(b"a/").unwrap_or(&name).to_vec();
                }
                _ => escaped = false,
            }
        }
        return Vec::new();
    }
    let len = rest.len();
    if len >= 5 && (len - 5).is_multiple_of(2) {
        let n = (len - 5) / 2;
        if let (Some(a), Some(b)) = (rest.get(2..2 + n), rest.get(n + 5..))
            && a == b
        {
            return a.as_bytes().to_vec();
        }
    }
    rest.strip_prefix("a/").unwrap_or(rest).as_bytes().to_vec()
}

/// A name's bytes, as git prints it: bare, or in double quotes with C escapes (`\t`, `\"`,
/// `\303`).
pub fn unquote(name: &str) -> Vec<u8> {
    let Some(inner) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) else {
        return name.as_bytes().to_vec();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut chars = inner.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match chars.next() {
            Some(b'a') => bytes.push(7),
            Some(b'b') => bytes.push(8),
            Some(b't') => bytes.push(b'\t'),
            Some(b'n') => bytes.push(b'\n'),
            Some(b'v') => bytes.push(11),
            Some(b'f') => bytes.push(12),
            Some(b'r') => bytes.push(b'\r'),
            Some(d @ b'0'..=b'7') => {
                let mut value = u32::from(d - b'0');
                for _ in 0..2 {
                    match chars.peek() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            chars.next();
                        }
                        _ => break,
                    }
                }
                bytes.push(u8::try_from(value).unwrap_or(b'?'));
            }
            Some(other) => bytes.push(other),
            None => bytes.push(b'\\'),
        }
    }
    bytes
}

/// `@@ -a,b +c,d @@ context`, with `,b` and `,d` optional (then 1).
fn hunk_header(line: &str) -> Option<Hunk> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(u64, u64)> {
        match r.split_once(',') {
            Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_lines) = range(old)?;
    let (new_start, new_lines) = range(new)?;
    Some(Hunk {
        header: line.to_string(),
        old_start,
        old_lines,
        new_start,
        new_lines,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_names_and_hunks() {
        let patch = concat!(
            "diff --git a/a b/a\n",
            "index 1..2 100644\n",
            "--- a/a\n",
            "+++ b/a\n",
            "@@ -1,2 +1,2 @@ fn x\n",
            " one\n",
            "-two\n",
            "+2\n",
            "diff --git a/my file b/my file\n",
            "new file mode 100644\n",
            "index 0..3\n",
            "Binary files /dev/null and b/my file differ\n",
            "diff --git a/old b/new\n",
            "similarity index 90%\n",
            "rename from old\n",
            "rename to new\n",
            "diff --git \"a/t\\tab\" \"b/t\\tab\"\n",
            "deleted file mode 100644\n",
            "--- \"a/t\\tab\"\n",
            "+++ /dev/null\n",
            "@@ -1 +0,0 @@\n",
            "-x\n",
            "\\ No newline at end of file\n",
        );
        let files = parse(patch.as_bytes());
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["a", "my file", "new", "t\tab"]);
        assert_eq!(files[0].hunks[0].lines, [" one", "-two", "+2"]);
        assert_eq!(files[0].hunks[0].old_start, 1);
        assert_eq!(files[0].hunks[0].new_lines, 2);
        assert!(files[1].binary);
        assert_eq!(files[2].old_path.as_deref(), Some("old"));
        assert_eq!(files[3].hunks[0].old_lines, 1);
        assert_eq!(files[3].hunks[0].new_lines, 0);
        assert_eq!(files[3].hunks[0].lines.len(), 2);
        let rebuilt: String = files
            .iter()
            .flat_map(|f| f.lines(usize::MAX).0)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(rebuilt, patch);
    }

    #[test]
    fn cuts_a_long_section_with_a_count() {
        let mut patch = String::from("diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -0,0 +1,10 @@\n");
        for i in 0..10 {
            patch.push_str(&format!("+{i}\n"));
        }
        let files = parse(patch.as_bytes());
        let (lines, more) = files[0].lines(6);
        assert_eq!(lines.len(), 6);
        assert_eq!(more, 8);
        let (hunks, cut) = files[0].hunks_within(6);
        assert_eq!(hunks[0].lines, ["+0", "+1"]);
        assert_eq!(cut, 8);
    }
}
