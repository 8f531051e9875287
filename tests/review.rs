//! `session review`: auto-stage, exact numbers, formats, the review hook, approvals.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{TestEnv, each_git, json, run, write_file};

fn make_executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A review hook script at `scripts/<name>` in the main worktree, configured.
fn hook(t: &TestEnv, body: &str) {
    let path = t.repo.join("scripts/review.sh");
    write_file(&path, &format!("#!/bin/sh\n{body}\n"));
    make_executable(&path);
    t.codex(&["config", "set", "review.hook", "./scripts/review.sh"])
        .assert()
        .success();
}

fn review_json(t: &TestEnv, id: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["session", "review", id, "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(t.codex(&args));
    let value = if out.trim().is_empty() {
        serde_json::Value::Null
    } else {
        json(&out)
    };
    (code, value, err)
}

#[test]
fn review_commits_everything_the_agent_changed_without_identity_or_user_hooks() {
    each_git(|t| {
        t.write("keep.txt", "keep\n");
        t.write("old-name.txt", "rename me\nline two\nline three\n");
        t.write("drop.txt", "drop\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "files"]);
        // A user hook that would refuse any commit.
        write_file(
            &t.repo.join(".git/hooks/pre-commit"),
            "#!/bin/sh\necho user hook ran >&2\nexit 1\n",
        );
        make_executable(&t.repo.join(".git/hooks/pre-commit"));
        t.write(".env", "SECRET=1\n");
        let wt = t.add("agent");
        write_file(&wt.join("keep.txt"), "keep\nmore\n");
        std::fs::rename(wt.join("old-name.txt"), wt.join("new-name.txt")).unwrap();
        std::fs::remove_file(wt.join("drop.txt")).unwrap();
        write_file(&wt.join("dir/new.txt"), "new\n");
        write_file(&wt.join("run.sh"), "#!/bin/sh\n");
        make_executable(&wt.join("run.sh"));
        std::fs::write(t.home.join(".gitconfig"), "").unwrap();

        let (code, v, err) = review_json(t, "agent", &[]);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("user hook ran"), "{err}");
        let staged = v["stagedCommit"]
            .as_str()
            .expect("a snapshot commit")
            .to_string();
        assert_eq!(t.git(&["rev-parse", "codex/agent"]), staged);
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "codex/agent"]),
            "codex(agent): snapshot"
        );
        assert_eq!(
            t.git_in(&wt, &["status", "--porcelain", "--untracked-files=no"]),
            "",
            "worktree clean"
        );
        let files: Vec<(String, String)> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for expected in [
            ("keep.txt", "modified"),
            ("new-name.txt", "renamed"),
            ("drop.txt", "deleted"),
            ("dir/new.txt", "added"),
            ("run.sh", "added"),
        ] {
            assert!(
                files.contains(&(expected.0.to_string(), expected.1.to_string())),
                "{expected:?} in {files:?}"
            );
        }
        assert!(
            !files.iter().any(|(p, _)| p == ".env"),
            "copied files are never committed: {files:?}"
        );
        assert!(
            t.git(&["ls-tree", "codex/agent", "run.sh"])
                .starts_with("100755")
        );

        // Nothing changed: no new commit.
        let (code, v, err) = review_json(t, "agent", &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["stagedCommit"], serde_json::Value::Null);
        assert_eq!(t.git(&["rev-parse", "codex/agent"]), staged);
    });
}

/// Parses `git diff --numstat -z` into (path, insertions, deletions), `None` for binary.
fn numstat(t: &TestEnv, base: &str, tip: &str) -> Vec<(String, Option<(u64, u64)>)> {
    let out = t.git_output(&t.repo, &["diff", "--numstat", "-z", "-M", base, tip]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split('\0');
    let mut rows = Vec::new();
    while let Some(head) = fields.next() {
        if head.is_empty() {
            break;
        }
        let mut parts = head.splitn(3, '\t');
        let ins = parts.next().unwrap();
        let del = parts.next().unwrap();
        let path = match parts.next().unwrap() {
            "" => {
                let _old = fields.next().unwrap();
                fields.next().unwrap().to_string()
            }
            p => p.to_string(),
        };
        let counts = match (ins.parse(), del.parse()) {
            (Ok(i), Ok(d)) => Some((i, d)),
            _ => None,
        };
        rows.push((path, counts));
    }
    rows.sort();
    rows
}

#[test]
fn per_file_numbers_equal_git_diff_numstat_on_hundreds_of_files() {
    each_git(|t| {
        for n in 0..320 {
            let body: String = (0..(n % 37 + 3))
                .map(|l| format!("file {n} line {l}\n"))
                .collect();
            t.write(&format!("src/m{}/f{n}.txt", n % 9), &body);
        }
        for n in 0..6 {
            std::fs::write(
                t.repo.join(format!("bin{n}.dat")),
                [0u8, 1, 2, n as u8, 0, 9],
            )
            .unwrap();
        }
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "many files"]);
        let wt = t.add("big");
        for n in 0..320 {
            let path = wt.join(format!("src/m{}/f{n}.txt", n % 9));
            match n % 8 {
                0 => std::fs::remove_file(&path).unwrap(),
                1 => {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let edited: String = text
                        .lines()
                        .enumerate()
                        .map(|(i, l)| {
                            if i % 3 == 0 {
                                format!("{l} changed\n")
                            } else {
                                format!("{l}\n")
                            }
                        })
                        .collect();
                    std::fs::write(&path, format!("{edited}appended\n")).unwrap();
                }
                2 => std::fs::rename(&path, wt.join(format!("moved/f{n}.txt"))).unwrap_or_else(
                    |_| {
                        std::fs::create_dir_all(wt.join("moved")).unwrap();
                        std::fs::rename(&path, wt.join(format!("moved/f{n}.txt"))).unwrap();
                    },
                ),
                3 => {
                    let text = std::fs::read_to_string(&path).unwrap();
                    std::fs::create_dir_all(wt.join("renamed")).unwrap();
                    std::fs::write(
                        wt.join(format!("renamed/g{n}.txt")),
                        format!("{text}one more line\n"),
                    )
                    .unwrap();
                    std::fs::remove_file(&path).unwrap();
                }
                4 => make_executable(&path),
                5 => {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let kept: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
                    std::fs::write(&path, format!("new first\n{kept}")).unwrap();
                }
                _ => {}
            }
        }
        for n in 0..40 {
            write_file(&wt.join(format!("added/a{n}.txt")), &"x\n".repeat(n + 1));
        }
        for n in 0..3 {
            std::fs::write(wt.join(format!("bin{n}.dat")), [0u8, 7, 7, 7, n as u8]).unwrap();
        }
        std::fs::write(wt.join("newbin.dat"), [0u8, 0, 1]).unwrap();

        let (code, v, err) = review_json(t, "big", &[]);
        assert_eq!(code, 0, "{err}");
        let ours: Vec<(String, Option<(u64, u64)>)> = {
            let mut rows: Vec<_> = v["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let counts = if f["binary"] == true {
                        None
                    } else {
                        Some((
                            f["insertions"].as_u64().unwrap(),
                            f["deletions"].as_u64().unwrap(),
                        ))
                    };
                    (f["path"].as_str().unwrap().to_string(), counts)
                })
                .collect();
            rows.sort();
            rows
        };
        let base = v["base"].as_str().unwrap();
        let tip = v["tip"].as_str().unwrap();
        let git = numstat(t, base, tip);
        assert!(
            git.len() > 250,
            "a diff of several hundred files: {}",
            git.len()
        );
        assert_eq!(ours.len(), git.len());
        for (a, b) in ours.iter().zip(git.iter()) {
            assert_eq!(a, b, "ours vs git diff --numstat");
        }
        let total_ins: u64 = git.iter().filter_map(|r| r.1).map(|c| c.0).sum();
        assert_eq!(v["totals"]["insertions"], total_ins);
        assert!(
            v["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["status"] == "renamed")
        );
    });
}

#[test]
fn formats_output_file_and_saved_reports() {
    each_git(|t| {
        let wt = t.add("fmt");
        write_file(&wt.join("a.txt"), "a\n");
        let (code, md, err) = run(t.codex(&["session", "review", "fmt"]));
        assert_eq!(code, 0, "{err}");
        assert!(md.starts_with("# Review of session `fmt`"), "{md}");
        assert!(md.contains("| added | `a.txt` | 1 | 0 |"), "{md}");
        assert!(
            md.contains("## Commits") && md.contains("## Approval"),
            "{md}"
        );
        let tip = t.git(&["rev-parse", "codex/fmt"]);
        let dir = t.state_dir().join("reviews/fmt");
        assert!(dir.join(format!("{tip}.md")).is_file());
        let saved = json(&std::fs::read_to_string(dir.join(format!("{tip}.json"))).unwrap());
        assert_eq!(saved["schema"], 1);
        assert_eq!(saved["tip"], tip.as_str());

        t.codex(&["config", "set", "review.summary_format", "json"])
            .assert()
            .success();
        let out_file = t.root().join("report.json");
        let (code, out, err) =
            run(t.codex(&["session", "review", "fmt", "-o", out_file.to_str().unwrap()]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "", "with -o nothing goes to stdout");
        let written = json(&std::fs::read_to_string(&out_file).unwrap());
        assert_eq!(written["session"], "fmt");
        assert_eq!(written["totals"]["files"], 1);

        // What --format json and markdown print is the report saved for the tip, byte for byte.
        for (format, ext) in [("json", "json"), ("markdown", "md")] {
            let (code, out, err) = run(t.codex(&["session", "review", "fmt", "--format", format]));
            assert_eq!(code, 0, "{err}");
            let saved = std::fs::read_to_string(dir.join(format!("{tip}.{ext}"))).unwrap();
            assert!(
                out == saved,
                "--format {format} printed what was not saved ({} vs {} bytes)",
                out.len(),
                saved.len()
            );
        }
    });
}

#[test]
fn the_hook_sees_the_review_and_a_failing_hook_blocks_approval() {
    each_git(|t| {
        hook(
            t,
            "env | grep '^CODEX_' | sort > \"$TMPDIR/hook-env.txt\"\necho checks failed\nexit 3",
        );
        let wt = t.add("h");
        write_file(&wt.join("x.txt"), "x\n");
        let (code, v, err) = review_json(t, "h", &["--approve"]);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("review hook failed"), "{err}");
        assert_eq!(v["hook"]["passed"], false);
        assert_eq!(v["hook"]["exitCode"], 3);
        assert!(
            v["hook"]["output"]
                .as_str()
                .unwrap()
                .contains("checks failed")
        );
        assert_eq!(
            t.git_output(
                &t.repo,
                &["rev-parse", "-q", "--verify", "refs/codex/approvals/h"]
            )
            .stdout
            .len(),
            0
        );
        let env = std::fs::read_to_string(t.state_dir().join("tmp/h/hook-env.txt")).unwrap();
        let tip = t.git(&["rev-parse", "codex/h"]);
        assert!(env.contains("CODEX_SESSION_ID=h\n"), "{env}");
        assert!(env.contains(&format!("CODEX_TIP={tip}\n")), "{env}");
        assert!(
            env.contains(&format!("CODEX_WORKTREE={}\n", wt.display())),
            "{env}"
        );
        assert!(
            env.contains("CODEX_BASE=") && env.contains("CODEX_REVIEW_REPORT="),
            "{env}"
        );

        let (code, v, err) = review_json(t, "h", &["--approve", "--force", "-m", "overridden"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["approval"]["state"], "approved");
        let tag = t.git(&["cat-file", "-p", "refs/codex/approvals/h"]);
        assert!(
            tag.contains(&format!("object {tip}")) && tag.contains("overridden"),
            "{tag}"
        );
        assert!(tag.contains("tagger Test User <test@example.com>"), "{tag}");
    });
}

#[test]
fn a_hook_past_its_timeout_is_killed() {
    each_git(|t| {
        hook(t, "echo started\nsleep 30 &\nwait");
        t.codex(&["config", "set", "review.hook_timeout", "PT1S"])
            .assert()
            .success();
        let wt = t.add("slow");
        write_file(&wt.join("x.txt"), "x\n");
        let (code, v, err) = review_json(t, "slow", &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["hook"]["timedOut"], true);
        assert_eq!(v["hook"]["passed"], false);
        assert!(
            v["hook"]["durationMs"].as_u64().unwrap() < 20_000,
            "killed, not waited for"
        );
        assert!(v["hook"]["output"].as_str().unwrap().contains("started"));
        let (_, md, _) = run(t.codex(&["session", "review", "slow", "--format", "markdown"]));
        assert!(md.contains("was killed"), "{md}");
    });
}

#[test]
fn two_approvers_racing_one_wins_the_other_is_told() {
    each_git(|t| {
        let wt = t.add("race");
        write_file(&wt.join("x.txt"), "x\n");
        t.codex(&["session", "review", "race"]).assert().success();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let results: Vec<(i32, String, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|n| {
                    let b = barrier.clone();
                    let cmd = t.codex(&[
                        "session",
                        "review",
                        "race",
                        "--approve",
                        "-m",
                        &format!("approver {n}"),
                    ]);
                    s.spawn(move || {
                        b.wait();
                        run(cmd)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let codes: Vec<i32> = results.iter().map(|r| r.0).collect();
        assert!(codes.contains(&0) && codes.contains(&3), "{results:?}");
        let loser = results.iter().find(|r| r.0 == 3).unwrap();
        assert!(loser.2.contains("already approved"), "{}", loser.2);
    });
}

#[test]
fn list_shows_review_states_and_the_pending_queue() {
    each_git(|t| {
        let states = |t: &TestEnv| -> Vec<(String, String)> {
            json(&run(t.codex(&["session", "list", "--json"])).1)["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["id"].as_str().unwrap().to_string(),
                        s["state"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        t.set_config("[session]\nmax_parallel = 8\n");
        let ids = ["idle", "waiting", "ok", "stale", "no"];
        for id in ids {
            let wt = t.add(id);
            if id != "idle" {
                write_file(&wt.join("w.txt"), id);
                t.codex(&["session", "review", id]).assert().success();
            }
        }
        t.codex(&["session", "review", "ok", "--approve"])
            .assert()
            .success();
        t.codex(&["session", "review", "stale", "--approve"])
            .assert()
            .success();
        write_file(&t.worktree("stale").join("more.txt"), "more");
        t.codex(&["session", "review", "stale"]).assert().success();
        t.codex(&[
            "session",
            "review",
            "no",
            "--reject",
            "-m",
            "wrong approach",
        ])
        .assert()
        .success();
        let got = states(t);
        for (id, state) in [
            ("idle", "active"),
            ("waiting", "review-pending"),
            ("ok", "approved"),
            ("stale", "stale-approval"),
            ("no", "rejected"),
        ] {
            assert!(
                got.contains(&(id.to_string(), state.to_string())),
                "{id} {state} in {got:?}"
            );
        }
        let queue = json(&run(t.codex(&["session", "list", "--pending", "--json"])).1);
        let queued: Vec<&str> = queue["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(queued, vec!["stale", "waiting"]);
        // An approval replaces a rejection.
        t.codex(&["session", "review", "no", "--approve"])
            .assert()
            .success();
        assert!(states(t).contains(&("no".to_string(), "approved".to_string())));
        assert!(
            t.git_output(
                &t.repo,
                &["rev-parse", "-q", "--verify", "refs/codex/rejections/no"]
            )
            .stdout
            .is_empty()
        );
    });
}

#[test]
fn approving_needs_a_person_identity() {
    each_git(|t| {
        let wt = t.add("who");
        write_file(&wt.join("x.txt"), "x\n");
        t.codex(&["session", "review", "who"]).assert().success();
        std::fs::write(
            t.home.join(".gitconfig"),
            "[user]\n\tuseConfigOnly = true\n",
        )
        .unwrap();
        let (code, _, err) = run(t.codex(&["session", "review", "who", "--approve"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("identity"), "{err}");
        assert!(
            t.git_output(
                &t.repo,
                &["rev-parse", "-q", "--verify", "refs/codex/approvals/who"]
            )
            .stdout
            .is_empty()
        );
    });
}
