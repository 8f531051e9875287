//! What a reviewer reads is what is there: names, subjects, authors, hook output and review
//! messages an agent wrote reach terminals and reports escaped (SPEC §6, issue 13 point 9).

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{TestEnv, each_git, json, write_file};

/// Characters that must never reach a terminal raw: controls other than newline (tab
/// included, it breaks tables, but for the patch after the summary, whose tabs are the
/// files' own, as `git diff` shows them), C1 controls, bidi overrides and isolates,
/// zero-width marks.
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let patch_at = text.find("\ndiff --git ").unwrap_or(text.len());
    text.char_indices()
        .filter(|&(at, c)| !(c == '\t' && at > patch_at))
        .map(|(_, c)| c)
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| format!("{:?}", c))
        .collect()
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let found = raw_controls(bytes);
    assert!(
        found.is_empty(),
        "{what} carries raw control characters {found:?}:\n{}",
        String::from_utf8_lossy(bytes)
    );
}

const ESC_NAME: &str = "evil\x1b[31mred.txt";
const PIPE_NAME: &str = "a|b|c.txt";
const NEWLINE_NAME: &str = "two\nlines.txt";
const HTML_NAME: &str = "<img src=x onerror=alert(1)>.txt";
const TICK_NAME: &str = "tick`s``.txt";
const BIDI_NAME: &str = "invoice\u{202E}txt.exe";
const SUBJECT: &str = "fix \x1b]8;;http://evil\x07click\x1b]8;;\x07 here\rFAKE: all approved";

/// An agent commits files with hostile names and a hostile subject, as a hostile author,
/// and the review hook prints escape sequences.
fn hostile_session(t: &TestEnv) -> std::path::PathBuf {
    let wt = t.add("agent");
    for name in [
        ESC_NAME,
        PIPE_NAME,
        NEWLINE_NAME,
        HTML_NAME,
        TICK_NAME,
        BIDI_NAME,
    ] {
        write_file(&wt.join(name), "x\n");
    }
    t.git_in(&wt, &["add", "-A"]);
    t.git_in(
        &wt,
        &[
            "-c",
            "user.name=Mal\x1b[2Jlory | <b>x</b>",
            "commit",
            "-q",
            "-m",
            SUBJECT,
        ],
    );
    let hook = t.repo.join("scripts/review.sh");
    write_file(
        &hook,
        "#!/bin/sh\nprintf 'checks \\033[32mPASSED\\033[0m\\033]8;;http://evil\\007here\\033]8;;\\007\\rOK\\n```\\n</details><script>x</script>\\n'\nexit 1\n",
    );
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.codex(&["config", "set", "review.hook", "./scripts/review.sh"])
        .assert()
        .success();
    wt
}

/// The rows of the markdown table under "## Files".
fn table_rows(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .skip_while(|l| !l.starts_with("| status |"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn review_shows_hostile_names_subjects_authors_and_hook_output_escaped() {
    each_git(|t| {
        hostile_session(t);
        let out = t
            .codex(&["session", "review", "agent"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        assert_clean("review stdout", &out.stdout);
        assert_clean("review stderr", &out.stderr);
        let md = String::from_utf8_lossy(&out.stdout).into_owned();

        // One row per file, each with exactly four cells: no `|` or newline split a row.
        let rows = table_rows(&md);
        assert_eq!(rows.len(), 6, "{md}");
        for row in &rows {
            let cells = row.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 5, "row broken: {row}\n{md}");
        }
        // Names shown as git quotes them, inside code spans.
        assert!(md.contains(r#"`"evil\033[31mred.txt"`"#), "{md}");
        assert!(md.contains(r#"`"two\nlines.txt"`"#), "{md}");
        assert!(md.contains(r#"`"invoice\342\200\256txt.exe"`"#), "{md}");
        assert!(md.contains(r"`a\|b\|c.txt`"), "{md}");
        assert!(
            md.contains("``tick`s``.txt``") || md.contains("```tick`s``.txt```"),
            "{md}"
        );
        assert!(md.contains("`<img src=x onerror=alert(1)>.txt`"), "{md}");
        // The subject and author are text, not markup, not terminal commands.
        assert!(
            md.contains(
                r"fix \\033\]8;;http://evil\\aclick\\033\]8;;\\a here\\rFAKE: all approved"
            ),
            "{md}"
        );
        assert!(md.contains(r"(Mal\\033\[2Jlory \| bx/b"), "{md}");
        // The hook output stays inside its code block, escaped.
        assert!(
            md.contains(r"checks \033[32mPASSED\033[0m\033]8;;http://evil\ahere"),
            "{md}"
        );
        assert!(md.contains("````text\n"), "{md}");
        let after_fence = md.split("````text\n").nth(1).unwrap();
        let block = after_fence.split("\n````").next().unwrap();
        assert!(block.contains("</details><script>x</script>"), "{md}");

        // The saved report is the same text.
        let tip = t.git(&["rev-parse", "codex/agent"]);
        let saved = std::fs::read(t.state_dir().join(format!("reviews/agent/{tip}.md"))).unwrap();
        assert_clean("saved report", &saved);

        // JSON stays exact data, and safe to print: escapes, not raw characters.
        let out = t
            .codex(&["session", "review", "agent", "--format", "json"])
            .output()
            .expect("run");
        assert_clean("review --format json", &out.stdout);
        let v = json(&String::from_utf8_lossy(&out.stdout));
        let paths: Vec<&str> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        for name in [ESC_NAME, NEWLINE_NAME, BIDI_NAME, PIPE_NAME, HTML_NAME] {
            assert!(paths.contains(&name), "{name:?} not in {paths:?}");
        }
        assert_eq!(v["commits"][0]["subject"], SUBJECT);
        assert!(v["hook"]["output"].as_str().unwrap().contains("\x1b[32m"));
    });
}

#[test]
fn review_messages_and_reviewer_names_are_escaped_everywhere() {
    each_git(|t| {
        hostile_session(t);
        t.codex(&["config", "set", "review.hook", ""])
            .assert()
            .success();
        let message = "looks bad\x1b[2J\x1b[H\rApproved by the boss\u{202E}";
        let out = t
            .codex(&["session", "review", "agent", "--reject", "-m", message])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_clean("reject stdout", &out.stdout);
        let md = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            md.contains(r"looks bad\033[2J\033[H\rApproved by the boss\342\200\256"),
            "{md}"
        );

        // merge names the rejecting person without letting their name drive the terminal.
        t.git(&["config", "user.name", "Rev\x1b]8;;http://evil\x07iewer"]);
        t.codex(&["session", "review", "agent", "--reject", "-m", "again"])
            .assert()
            .success();
        let out = t
            .codex(&["session", "merge", "agent"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3));
        assert_clean("merge stderr", &out.stderr);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(r"was rejected by Rev\033]8;;http://evil\aiewer"),
            "{err}"
        );
    });
}

#[test]
fn list_doctor_and_prune_quote_names_planted_in_the_state_dir_and_refs() {
    each_git(|t| {
        t.add("fine");
        // A corrupt record whose file name carries an OSC 8 hyperlink and a bidi override.
        let planted = "x\x1b]8;;evil\x07y\u{202E}z";
        write_file(
            &t.state_dir().join(format!("sessions/{planted}.json")),
            "{ not json",
        );
        let quoted = r#""x\033]8;;evil\ay\342\200\256z""#;
        for args in [
            &["session", "list"][..],
            &["doctor"][..],
            &["session", "prune", "--dry-run"][..],
        ] {
            let out = t.codex(args).output().expect("run");
            assert_clean(&format!("{args:?} stdout"), &out.stdout);
            assert_clean(&format!("{args:?} stderr"), &out.stderr);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if args[0] != "session" || args[1] == "list" {
                assert!(all.contains(quoted), "{args:?}: {all}");
            }
        }
        // An orphan session branch whose name reads backwards.
        t.git(&["branch", "codex/ab\u{202E}cd"]);
        let out = t
            .codex(&["session", "prune", "--dry-run"])
            .output()
            .expect("run");
        assert_clean("prune stdout", &out.stdout);
        assert_clean("prune stderr", &out.stderr);
        // JSON keeps the exact name, written with escapes.
        let out = t
            .codex(&["session", "list", "--json"])
            .output()
            .expect("run");
        assert_clean("list --json", &out.stdout);
        assert_eq!(
            json(&String::from_utf8_lossy(&out.stdout))["broken"][0]["id"],
            planted
        );
    });
}

#[test]
fn a_gate_refusal_quotes_a_protected_ref_whose_name_reads_backwards() {
    each_git(|t| {
        t.codex(&["config", "set", "review.protected", "release/*"])
            .assert()
            .success();
        let wt = t.add("s");
        t.commit_in(&wt, "a.txt", "a\n");
        let name = "release/ab\u{202E}cd";
        let out = t.git_output(&t.repo, &["branch", name, "codex/s"]);
        assert!(!out.status.success(), "the gate refuses");
        let err = String::from_utf8_lossy(&out.stderr);
        let ours: String = err
            .lines()
            .filter(|l| l.starts_with("error:") || l.starts_with("hint:"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_clean("the gate's refusal", ours.as_bytes());
        assert!(
            ours.contains(r#""refs/heads/release/ab\342\200\256cd""#),
            "{err}"
        );
        assert!(
            !t.git_output(&t.repo, &["rev-parse", "--verify", "-q", name])
                .status
                .success()
        );
    });
}

#[test]
fn completion_offers_no_planted_record_names() {
    let bash = std::path::Path::new("/bin/bash");
    if !bash.is_file() {
        eprintln!("skipping: no bash");
        return;
    }
    each_git(|t| {
        t.add("alpha");
        write_file(
            &t.state_dir().join("sessions/a\x1b]8;;evil\x07x.json"),
            "{}",
        );
        let script = format!(
            "source {}/completions/git-codex.bash && COMP_WORDS=(git-codex session show a) && COMP_CWORD=3 && _clap_complete_git_codex git-codex a && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            env!("CARGO_MANIFEST_DIR")
        );
        let out = std::process::Command::new(bash)
            .env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["--norc", "-c", &script])
            .output()
            .expect("bash");
        assert_clean("completions", &out.stdout);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), "alpha", "{text}");
    });
}
