use gix::ObjectId;

use super::diff::{Cell, Kind, Row, pairs, rows};
use super::page;
use crate::review::approval::{ApprovalState, Verdict};
use crate::review::diff::{FileStat, FileStatus};
use crate::review::hook::HookResult;
use crate::review::patch::{self, Hunk};
use crate::review::{CommitLine, Summary, Totals};

const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>.txt";
const HOSTILE_LINE: &str = "</script><script>alert(1)</script>";

fn id(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.repeat(40).get(..40).unwrap_or_default().as_bytes()).unwrap()
}

fn stat(path: &str, status: FileStatus, ins: u64, del: u64) -> FileStat {
    FileStat {
        path: path.into(),
        raw_path: path.as_bytes().to_vec(),
        old_path: None,
        status,
        binary: false,
        insertions: ins,
        deletions: del,
    }
}

/// A summary of a hostile agent's work: a file whose name is a tag, content that closes the
/// script, and the same in every other field it controls.
fn hostile() -> Summary {
    let patch_text = format!(
        "diff --git a/{HOSTILE_NAME} b/{HOSTILE_NAME}\nnew file mode 100644\nindex 0000000..1111111\n\
         --- /dev/null\n+++ b/{HOSTILE_NAME}\n@@ -0,0 +1,2 @@\n+{HOSTILE_LINE}\n+bidi \u{202E}txt\n\
         diff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n\
         @@ -3,4 +3,4 @@ fn <b>\n one\n-two\n+2\n three\n-four\n\\ No newline at end of file\n+4\n"
    );
    let verdict = Verdict {
        tag: "t".into(),
        commit: id("ab").to_string(),
        by: "<b>eve</b> <e@x>".into(),
        at: None,
        message: "<script>alert(2)</script>".into(),
    };
    Summary {
        session: "s1".into(),
        branch: "codex/s1".into(),
        base: id("12"),
        tip: id("cd"),
        staged: None,
        commits: vec![CommitLine {
            sha: id("cd").to_string(),
            subject: "add <script>alert(3)</script>".into(),
            author: "<i>mallory</i>".into(),
        }],
        files: vec![
            stat(HOSTILE_NAME, FileStatus::Added, 2, 0),
            stat("a.txt", FileStatus::Modified, 2, 2),
        ],
        totals: Totals {
            files: 2,
            insertions: 4,
            deletions: 2,
        },
        hook: Some(HookResult {
            command: "./review.sh".into(),
            exit_code: Some(1),
            timed_out: false,
            passed: false,
            duration_ms: 12,
            output: "<script>alert(4)</script>\n\x1b[31mred".into(),
        }),
        approval: ApprovalState::Stale(verdict),
        nested: vec!["<svg onload=alert(5)>/".into()],
        patches: patch::parse(patch_text.as_bytes()),
        max_patch_lines: usize::MAX,
        json_hunks: false,
    }
}

#[test]
fn agent_text_is_escaped_never_markup() {
    let html = page(&hostile());
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;.txt"),
        "{html}"
    );
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    for raw in [
        "<img",
        "<svg",
        "<b>eve",
        "<i>mallory",
        "fn <b>",
        "alert(1)</script>",
        "\x1b",
        "\u{202E}",
    ] {
        assert!(!html.contains(raw), "{raw:?} arrived raw");
    }
    // The page's own script is the only one; the agent's never opens one.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("add &lt;script&gt;alert(3)&lt;/script&gt;"));
    assert!(html.contains("&lt;script&gt;alert(4)&lt;/script&gt;"));
    assert!(
        html.contains("\\033[31mred"),
        "terminal escapes shown as text"
    );
    assert!(
        html.contains(
            "bidi <span class=\"ctl\" title=\"a control or invisible character\">\\342\\200\\256</span>txt"
        ),
        "bidi override shown as bytes, set apart: {html}"
    );
    assert!(html.contains("&lt;svg onload=alert(5)&gt;/"));
    assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
}

#[test]
fn the_page_fetches_nothing_and_names_the_command_that_approves_this_tip() {
    let s = hostile();
    let html = page(&s);
    assert!(html.contains(
        "content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\""
    ));
    for fetch in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    assert!(html.contains(&s.approve_command()));
    assert!(html.contains("href=\"#file-1\"") && html.contains("id=\"file-2\""));

    let mut approved = s.clone();
    approved.approval = ApprovalState::Approved(Verdict {
        commit: s.tip.to_string(),
        ..verdict_of(&s)
    });
    assert!(!page(&approved).contains(&s.approve_command()));
}

fn verdict_of(s: &Summary) -> Verdict {
    match &s.approval {
        ApprovalState::Stale(v) => v.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lines_are_numbered_from_the_hunk_starts() {
    let s = hostile();
    let hunk = &s.patches[1].hunks[0];
    let numbered: Vec<(Kind, Option<u64>, Option<u64>, &str)> = rows(hunk)
        .into_iter()
        .map(|r| (r.kind, r.old, r.new, r.text))
        .collect();
    assert_eq!(
        numbered,
        [
            (Kind::Context, Some(3), Some(3), "one"),
            (Kind::Del, Some(4), None, "two"),
            (Kind::Add, None, Some(4), "2"),
            (Kind::Context, Some(5), Some(5), "three"),
            (Kind::Del, Some(6), None, "four"),
            (Kind::Note, None, None, "No newline at end of file"),
            (Kind::Add, None, Some(6), "4"),
        ]
    );
}

#[test]
fn side_by_side_pairs_deletions_with_the_additions_after_them() {
    let hunk = Hunk {
        header: "@@ -1,4 +1,3 @@".into(),
        old_start: 1,
        old_lines: 4,
        new_start: 1,
        new_lines: 3,
        lines: [
            "-a",
            "-b",
            "+B",
            " c",
            "-d",
            "\\ No newline at end of file",
            "+D",
        ]
        .map(String::from)
        .to_vec(),
    };
    let rows: Vec<Row> = rows(&hunk);
    let nums: Vec<(Option<u64>, Option<u64>)> = pairs(&rows)
        .iter()
        .map(|(l, r)| (l.and_then(|c| c.num), r.and_then(|c| c.num)))
        .collect();
    assert_eq!(
        nums,
        [
            (Some(1), Some(1)),
            (Some(2), None),
            (Some(3), Some(2)),
            (Some(4), Some(3))
        ]
    );
    let last = pairs(&rows)[3];
    let note = Some("No newline at end of file");
    assert_eq!(
        last.0,
        Some(Cell {
            kind: Kind::Del,
            num: Some(4),
            text: "d",
            note
        })
    );
    assert_eq!(last.1.map(|c| c.note), Some(None));
}

#[test]
fn a_long_patch_is_cut_with_a_note_naming_the_full_diff() {
    let mut s = hostile();
    s.max_patch_lines = 7;
    let html = page(&s);
    assert!(
        html.contains("more line(s) of this file's patch are left out"),
        "{html}"
    );
    assert!(html.contains(&format!("git diff {} {}", s.base, s.tip)));
}

#[test]
fn binary_files_and_renames_say_so() {
    let mut s = hostile();
    let text = "diff --git a/old.bin b/new.bin\nsimilarity index 90%\nrename from old.bin\n\
                rename to new.bin\nindex 1..2 100644\nBinary files a/old.bin and b/new.bin differ\n";
    s.patches = patch::parse(text.as_bytes());
    s.files = vec![FileStat {
        old_path: Some("old.bin".into()),
        binary: true,
        ..stat("new.bin", FileStatus::Renamed, 0, 0)
    }];
    let html = page(&s);
    assert!(html.contains("Binary file: its content is not shown."));
    assert!(html.contains("old.bin → "));
    assert!(html.contains("rename from old.bin"));
}

#[test]
fn a_part_of_gits_patch_the_file_list_does_not_name_is_shown_too() {
    let mut s = hostile();
    // git paired the files otherwise than the list: a deletion only its patch names.
    s.patches.extend(patch::parse(
        b"diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\nindex 1..0\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-the deleted secret\n",
    ));
    let html = page(&s);
    assert!(html.contains("gone.txt"), "{html}");
    assert!(html.contains("the deleted secret"), "{html}");
}
