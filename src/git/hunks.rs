//! What a commit changes, hunk by hunk and without context lines (`diff-tree -U0`): the unit
//! the gate compares to find copies of a session's change wherever they land (SPEC §6).

use std::process::Stdio;

use anyhow::Context as _;
use camino::Utf8Path;
use gix::ObjectId;

use super::Git;

/// A diff asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOf {
    /// From `from` to `to` (two commits).
    Pair { from: ObjectId, to: ObjectId },
    /// A root commit against the empty tree.
    Root(ObjectId),
}

impl DiffOf {
    /// What `commit` changes against each of its `parents` (against the empty tree when it
    /// has none), one diff per parent.
    pub fn of_commit(commit: ObjectId, parents: &[ObjectId]) -> Vec<DiffOf> {
        if parents.is_empty() {
            return vec![DiffOf::Root(commit)];
        }
        parents
            .iter()
            .map(|&from| DiffOf::Pair { from, to: commit })
            .collect()
    }
}

/// One hunk: the lines a change removes and adds at one place in one file. Binary files
/// give one hunk naming the old and new blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hunk {
    /// The file, as git prints it (quoted the same way on both sides of a comparison).
    pub path: Vec<u8>,
    pub removed: Vec<Vec<u8>>,
    pub added: Vec<Vec<u8>>,
}

impl Hunk {
    /// Whether the hunk says anything: a hunk of blank lines and braces alone would match
    /// half the changes in the world, and is no copy of anything.
    pub fn significant(&self) -> bool {
        self.removed
            .iter()
            .chain(&self.added)
            .any(|line| line.iter().any(u8::is_ascii_alphanumeric) || !line.is_ascii())
    }

    /// Whether `other` (a hunk of a landing) carries this whole hunk: same file, and this
    /// hunk's removed and added lines each stand, in order and together, among `other`'s
    /// (a copy whose neighbourhood also changed shows as a larger hunk).
    /// A short hunk (a line or two of little text: `free(p);`, `import os`) must be the
    /// other's whole hunk: inside a larger one it would match a person's own code by chance.
    pub fn within(&self, other: &Hunk) -> bool {
        if self.path != other.path {
            return false;
        }
        if self.is_short() {
            return self.removed == other.removed && self.added == other.added;
        }
        contains_run(&other.removed, &self.removed) && contains_run(&other.added, &self.added)
    }

    fn is_short(&self) -> bool {
        let lines = self.removed.len() + self.added.len();
        let text: usize = self
            .removed
            .iter()
            .chain(&self.added)
            .map(|l| l.iter().filter(|b| !b.is_ascii_whitespace()).count())
            .sum();
        lines < 3 && text < 40
    }
}

fn contains_run(haystack: &[Vec<u8>], needle: &[Vec<u8>]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl Git {
    /// The hunks of each diff of `items`, in order, from one `git diff-tree --stdin` process.
    /// History is read as stored: replace objects and grafts are off (see [`Git::command`]).
    pub fn hunks(&self, cwd: &Utf8Path, items: &[DiffOf]) -> anyhow::Result<Vec<Vec<Hunk>>> {
        let out = self.diff_tree(
            cwd,
            items,
            &[
                "-p",
                "-U0",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                // Never `diff.submodule=log|diff` from the person's config: both open the
                // nested repository at that path, which may be the agent's.
                "--submodule=short",
                "--full-index",
                "--src-prefix=a/",
                "--dst-prefix=b/",
            ],
        )?;
        let parsed = parse(&out);
        answered(parsed, items.len())
    }

    /// The paths each diff of `items` changes (as stored, not quoted), in order, from one
    /// `git diff-tree --stdin` process: what the gate's cache keeps of a session's change.
    pub fn paths_changed(
        &self,
        cwd: &Utf8Path,
        items: &[DiffOf],
    ) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
        let out = self.diff_tree(cwd, items, &["--raw", "-z"])?;
        answered(parse_raw(&out), items.len())
    }

    /// `git diff-tree --stdin` of `items` with `format` (renames off, every diff answered).
    fn diff_tree(
        &self,
        cwd: &Utf8Path,
        items: &[DiffOf],
        format: &[&str],
    ) -> anyhow::Result<Vec<u8>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = items
            .iter()
            .map(|item| match item {
                // "<commit> <parent>": the commit against the parent given.
                DiffOf::Pair { from, to } => format!("{to} {from}\n"),
                DiffOf::Root(id) => format!("{id}\n"),
            })
            .collect();
        let mut cmd = self.command(cwd);
        cmd.args([
            "diff-tree",
            "--stdin",
            "--always",
            "--root",
            "-r",
            "--no-renames",
        ])
        .args(format)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let child = cmd.spawn().context("cannot run git diff-tree")?;
        let output = super::feed_and_wait(child, input.as_bytes())?;
        if !output.status.success() {
            anyhow::bail!(
                "git diff-tree failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }
}

/// `parsed`, when git answered each of the `asked` diffs.
fn answered<T>(parsed: Vec<T>, asked: usize) -> anyhow::Result<Vec<T>> {
    if parsed.len() != asked {
        anyhow::bail!(
            "git diff-tree answered {} diffs for {asked} asked",
            parsed.len()
        );
    }
    Ok(parsed)
}

/// Splits `diff-tree --stdin --always --raw -z` output into the paths of each diff: a
/// header is an object id alone, an entry is `:<modes ids status>` then its path (renames
/// are off: one path), so a path that looks like an object id is still a path.
fn parse_raw(out: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut diffs: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(field) = fields.next() {
        if field.starts_with(b":") {
            if let (Some(path), Some(current)) = (fields.next(), diffs.last_mut()) {
                current.push(path.to_vec());
            }
        } else {
            diffs.push(Vec::new());
        }
    }
    diffs
}

/// Splits `diff-tree --stdin --always -p -U0` output into one list of hunks per header line.
fn parse(out: &[u8]) -> Vec<Vec<Hunk>> {
    let mut diffs: Vec<Vec<Hunk>> = Vec::new();
    let mut old_path: Vec<u8> = Vec::new();
    let mut path: Vec<u8> = Vec::new();
    let mut blobs: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut in_hunk = false;
    for line in out.split(|b| *b == b'\n') {
        if is_header(line) {
            diffs.push(Vec::new());
            in_hunk = false;
            continue;
        }
        let Some(current) = diffs.last_mut() else {
            continue;
        };
        if line.starts_with(b"diff --git ") {
            in_hunk = false;
            old_path.clear();
            path.clear();
            blobs = None;
        } else if !in_hunk && let Some(ids) = line.strip_prefix(b"index ") {
            let ids = ids.split(|b| *b == b' ').next().unwrap_or_default();
            if let Some(at) = ids.windows(2).position(|w| w == b"..") {
                blobs = Some((ids[..at].to_vec(), ids[at + 2..].to_vec()));
            }
        } else if !in_hunk && let Some(name) = line.strip_prefix(b"--- ") {
            old_path = strip_prefix(name, b"a/");
        } else if !in_hunk && let Some(name) = line.strip_prefix(b"+++ ") {
            path = if name == b"/dev/null" {
                old_path.clone()
            } else {
                strip_prefix(name, b"b/")
            };
        } else if !in_hunk && line.starts_with(b"Binary files ") {
            let (old, new) = blobs.take().unwrap_or_default();
            let name = binary_path(line);
            current.push(Hunk {
                path: name,
                removed: vec![[b"\0blob ".as_slice(), &old].concat()],
                added: vec![[b"\0blob ".as_slice(), &new].concat()],
            });
        } else if line.starts_with(b"@@ ") {
            in_hunk = true;
            current.push(Hunk {
                path: path.clone(),
                removed: Vec::new(),
                added: Vec::new(),
            });
        } else if in_hunk && let Some(hunk) = current.last_mut() {
            match line.first() {
                Some(b'-') => hunk.removed.push(line[1..].to_vec()),
                Some(b'+') => hunk.added.push(line[1..].to_vec()),
                _ => {}
            }
        }
    }
    diffs
}

/// The line `diff-tree --stdin` prints above each diff: an object id alone.
fn is_header(line: &[u8]) -> bool {
    (line.len() == 40 || line.len() == 64) && line.iter().all(u8::is_ascii_hexdigit)
}

/// `a/name` → `name`; `"a/na\tme"` → `"na\tme"` (still quoted, as git prints it).
fn strip_prefix(name: &[u8], prefix: &[u8]) -> Vec<u8> {
    if let Some(rest) = name.strip_prefix(b"\"")
        && let Some(rest) = rest.strip_prefix(prefix)
    {
        return [b"\"".as_slice(), rest].concat();
    }
    name.strip_prefix(prefix).unwrap_or(name).to_vec()
}

/// The new path of a `Binary files a/x and b/y differ` line (the old one for a deletion).
fn binary_path(line: &[u8]) -> Vec<u8> {
    let body = line
        .strip_prefix(b"Binary files ")
        .and_then(|l| l.strip_suffix(b" differ"))
        .unwrap_or_default();
    let at = body
        .windows(5)
        .rposition(|w| w == b" and ")
        .unwrap_or(body.len());
    let (old, new) = (&body[..at], body.get(at + 5..).unwrap_or_default());
    if new == b"/dev/null" {
        strip_prefix(old, b"a/")
    } else {
        strip_prefix(new, b"b/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hunks_per_header_in_order() {
        let out = b"1111111111111111111111111111111111111111\n\
diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -2 +2 @@ a\n-b\n+B\n@@ -3,0 +4 @@ c\n+d\n\
2222222222222222222222222222222222222222\n\
3333333333333333333333333333333333333333\n\
diff --git a/g b/g\ndeleted file mode 100644\nindex 3..0\n--- a/g\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n\
diff --git a/h b/h\nindex 4..5\nBinary files a/h and b/h differ\n";
        let diffs = parse(out);
        assert_eq!(diffs.len(), 3);
        assert_eq!(diffs[0].len(), 2);
        assert_eq!(diffs[0][0].removed, vec![b"b".to_vec()]);
        assert_eq!(diffs[0][1].added, vec![b"d".to_vec()]);
        assert!(diffs[1].is_empty());
        assert_eq!(diffs[2][0].path, b"g".to_vec());
        assert_eq!(diffs[2][0].removed, vec![b"x".to_vec()]);
        assert_eq!(diffs[2][1].path, b"h".to_vec());
        assert_eq!(diffs[2][1].added, vec![b"\0blob 5".to_vec()]);
    }

    #[test]
    fn a_hunk_is_within_a_larger_one_in_the_same_file() {
        let line = |s: &str| s.as_bytes().to_vec();
        let small = Hunk {
            path: line("f"),
            removed: vec![line("old")],
            added: vec![line("new 1"), line("new 2")],
        };
        let short = Hunk {
            path: line("f"),
            removed: vec![],
            added: vec![line("  free(p);")],
        };
        let function = Hunk {
            path: line("f"),
            removed: vec![],
            added: vec![line("void b(char *p) {"), line("  free(p);"), line("}")],
        };
        assert!(!short.within(&function), "a short hunk matches only whole");
        assert!(short.within(&short.clone()));
        let large = Hunk {
            path: line("f"),
            removed: vec![line("x"), line("old")],
            added: vec![line("y"), line("new 1"), line("new 2"), line("z")],
        };
        assert!(small.within(&large));
        assert!(!large.within(&small));
        let elsewhere = Hunk {
            path: line("g"),
            ..large.clone()
        };
        assert!(!small.within(&elsewhere));
        let braces = Hunk {
            path: line("f"),
            removed: vec![],
            added: vec![line("}"), line("")],
        };
        assert!(!braces.significant());
        assert!(small.significant());
    }
}
