//! `session list`, `session show`, `session touch`: states, dirty, ahead/behind, expiry.

mod common;

use common::{each_git, json, run, write_file};

fn list(t: &common::TestEnv) -> serde_json::Value {
    let (code, out, err) = run(t.codex(&["session", "list", "--json"]));
    assert_eq!(code, 0, "{err}");
    json(&out)
}

#[test]
fn list_reports_state_dirty_and_ahead_behind() {
    each_git(|t| {
        let a = t.add("clean");
        let b = t.add("busy");
        let _ = a;
        // busy: one commit of its own, then an uncommitted file.
        write_file(&b.join("feature.txt"), "x\n");
        t.git_in(&b, &["add", "feature.txt"]);
        t.git_in(&b, &["commit", "-q", "-m", "feature"]);
        write_file(&b.join("scratch.txt"), "wip\n");
        // main moves on by two commits.
        for n in 0..2 {
            t.write(&format!("main{n}.txt"), "m\n");
            t.git(&["add", "."]);
            t.git(&["commit", "-q", "-m", "main"]);
        }
        let sessions = list(t)["sessions"].as_array().unwrap().clone();
        let busy = sessions.iter().find(|s| s["id"] == "busy").unwrap();
        let clean = sessions.iter().find(|s| s["id"] == "clean").unwrap();
        assert_eq!(busy["state"], "review-pending", "a commit awaits review");
        assert_eq!(busy["dirty"], true);
        assert_eq!(busy["ahead"], 1);
        assert_eq!(busy["behind"], 2);
        assert_eq!(clean["dirty"], false);
        assert_eq!(clean["ahead"], 0);
        assert_eq!(clean["behind"], 2);
        assert!(clean["expiresInSeconds"].as_i64().unwrap() > 3500);

        let (code, table, _) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("ID"), "{table}");
        let busy_line = lines.iter().find(|l| l.starts_with("busy")).unwrap();
        let cols: Vec<&str> = busy_line.split_whitespace().collect();
        assert_eq!(cols[1], "codex/busy");
        assert_eq!(cols[2], "review-pending");
        assert_eq!(&cols[cols.len() - 3..], &["1", "2", "yes"]);
    });
}

#[test]
fn an_old_session_is_expired_and_a_never_session_is_not() {
    each_git(|t| {
        t.add("old");
        t.codex(&["session", "add", "forever", "--ttl", "never"])
            .assert()
            .success();
        t.age("old", 5);
        t.age("forever", 500);
        let sessions = list(t)["sessions"].as_array().unwrap().clone();
        let old = sessions.iter().find(|s| s["id"] == "old").unwrap();
        let forever = sessions.iter().find(|s| s["id"] == "forever").unwrap();
        assert_eq!(old["state"], "expired");
        assert!(old["expiresInSeconds"].as_i64().unwrap() < -3 * 3600);
        assert_eq!(forever["state"], "active");
        assert_eq!(forever["expiresAt"], serde_json::Value::Null);
        let (_, table, _) = run(t.codex(&["session", "list"]));
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("old") && l.contains("expired") && l.contains("ago")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("forever") && l.contains("never")),
            "{table}"
        );
    });
}

#[test]
fn an_expired_session_does_not_count_against_the_limit() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 1\n");
        t.add("old");
        t.age("old", 5);
        t.add("new");
    });
}

#[test]
fn touch_brings_an_expired_session_back_and_sets_a_new_ttl() {
    each_git(|t| {
        t.add("s");
        t.age("s", 5);
        t.codex(&["session", "touch", "s", "--ttl", "2d"])
            .assert()
            .success();
        let s = &list(t)["sessions"][0];
        assert_eq!(s["state"], "active");
        assert_eq!(s["ttlSeconds"], 172_800);
        let left = s["expiresInSeconds"].as_i64().unwrap();
        assert!(left > 172_000 && left <= 172_800, "{left}");
        let meta =
            json(&std::fs::read_to_string(t.worktree("s").join(".codex-session.json")).unwrap());
        assert_eq!(
            meta["expiresAt"], s["expiresAt"],
            "metadata follows the touch"
        );

        let (code, _, err) = run(t.codex(&["session", "touch", "s", "--ttl", "soon"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--ttl") && err.contains("soon"), "{err}");
    });
}

#[test]
fn a_worktree_deleted_by_hand_shows_as_missing() {
    each_git(|t| {
        let wt = t.add("gone");
        std::fs::remove_dir_all(&wt).unwrap();
        let s = &list(t)["sessions"][0];
        assert_eq!(s["state"], "missing");
        assert_eq!(s["dirty"], serde_json::Value::Null);
        let (code, out, _) = run(t.codex(&["session", "show", "gone"]));
        assert_eq!(code, 0);
        assert!(out.contains("missing"), "{out}");
    });
}

/// A session whose branch was deleted by hand says so (issue 15, point 7): state
/// `branch-missing` in `list` and `show`, text and JSON alike, with the keys JSON always has.
#[test]
fn a_branch_deleted_by_hand_shows_as_branch_missing() {
    each_git(|t| {
        let wt = t.add("nobranch");
        t.commit_in(&wt, "work.txt", "work\n");
        t.add("fine");
        let keys = |s: &serde_json::Value| {
            let mut keys: Vec<String> = s.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let before = keys(&list(t)["sessions"][0]);
        t.git(&["update-ref", "-d", "refs/heads/codex/nobranch"]);
        let listed = list(t);
        let s = listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "nobranch")
            .unwrap();
        assert_eq!(s["state"], "branch-missing", "{s}");
        assert_eq!(keys(s), before, "the same keys as ever");
        assert_eq!(s["tip"], serde_json::Value::Null);
        assert!(
            s["problems"][0]
                .as_str()
                .unwrap()
                .contains("branch codex/nobranch does not exist"),
            "{s}"
        );
        let fine = listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "fine")
            .unwrap();
        assert_eq!(fine["state"], "active");
        let (code, out, _) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0);
        let row = out.lines().find(|l| l.starts_with("nobranch")).unwrap();
        assert!(row.contains("branch-missing"), "{out}");
        let (code, out, err) = run(t.codex(&["session", "show", "nobranch"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("branch-missing"), "{out}");
        assert!(
            err.contains("git codex doctor"),
            "show says where the fix is: {err}"
        );
        assert_eq!(t.show("nobranch")["state"], "branch-missing");
    });
}

#[test]
fn a_corrupt_record_is_reported_and_list_still_works() {
    each_git(|t| {
        t.add("good");
        t.add("bad");
        std::fs::write(t.state_dir().join("sessions/bad.json"), "{ not json").unwrap();
        let (code, out, err) = run(t.codex(&["session", "list", "--json"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("warning:") && err.contains("bad.json"),
            "{err}"
        );
        let value = json(&out);
        assert_eq!(value["sessions"][0]["id"], "good");
        assert_eq!(value["broken"][0]["id"], "bad");
        let (code, table, _) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("bad") && l.contains("corrupt")),
            "{table}"
        );
        let (code, _, err) = run(t.codex(&["session", "show", "bad"]));
        assert_eq!(code, 1);
        assert!(err.contains("corrupt"), "{err}");
    });
}

#[test]
fn show_prints_the_record_paths_and_port() {
    each_git(|t| {
        let wt = t.add("s");
        let (code, out, err) = run(t.codex(&["session", "show", "s", "--json"]));
        assert_eq!(code, 0, "{err}");
        let v = json(&out);
        assert_eq!(v["schema"], 1);
        assert_eq!(v["id"], "s");
        assert_eq!(v["worktree"], wt.display().to_string());
        assert_eq!(v["port"], 20000);
        assert_eq!(
            v["paths"]["tmp"],
            t.state_dir().join("tmp/s").display().to_string()
        );
        assert!(t.state_dir().join("tmp/s").is_dir());
        let (code, text, _) = run(t.codex(&["session", "show", "s"]));
        assert_eq!(code, 0);
        assert!(
            text.contains("branch") && text.contains("codex/s") && text.contains("20000"),
            "{text}"
        );
    });
}

#[test]
fn unknown_sessions_exit_4() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        for args in [
            vec!["session", "show", "nope"],
            vec!["session", "touch", "nope"],
            vec!["session", "remove", "nope"],
        ] {
            let before = t.disk();
            let (code, _, err) = run(t.codex(&args));
            assert_eq!(code, 4, "{args:?}: {err}");
            assert!(err.contains("no session 'nope'"), "{err}");
            common::assert_disk_unchanged(&before, &t.disk(), "an unknown id");
        }
    });
}

#[test]
fn state_is_found_from_a_session_worktree_a_subdirectory_and_git_dash_c() {
    each_git(|t| {
        let wt = t.add("s");
        std::fs::create_dir_all(wt.join("deep/er")).unwrap();
        let from_session = run(t.codex_in(&wt.join("deep/er"), &["session", "list", "--json"]));
        assert_eq!(
            json(&from_session.1)["sessions"][0]["id"],
            "s",
            "{}",
            from_session.2
        );
        let elsewhere = t.root();
        let out = t.git_output(
            &elsewhere,
            &[
                "-C",
                t.repo.to_str().unwrap(),
                "codex",
                "session",
                "list",
                "--json",
            ],
        );
        assert!(out.status.success());
        assert_eq!(
            json(&String::from_utf8_lossy(&out.stdout))["sessions"][0]["id"],
            "s"
        );
        // A session added from inside another session lands in the same state dir.
        let (code, path, err) = run(t.codex_in(&wt, &["session", "add", "nested"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(path.trim(), t.worktree("nested").display().to_string());
        assert!(t.state_dir().join("sessions/nested.json").is_file());
    });
}

/// Moves every file's mtime in `worktree` 30 s into the past and refreshes the index, as an
/// hour of ordinary use would leave it: no entry is racily clean, so `session list` can tell a
/// clean worktree by stat alone.
fn settle(t: &common::TestEnv, worktree: &std::path::Path) {
    fn walk(dir: &std::path::Path, when: filetime::FileTime) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            if meta.is_dir() {
                walk(&path, when);
            }
            filetime::set_symlink_file_times(&path, when, when).expect("set times");
        }
    }
    let past = filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() - 30, 0);
    walk(worktree, past);
    t.git_in(worktree, &["update-index", "-q", "--refresh"]);
}

type Change = fn(&common::TestEnv, &std::path::Path);

#[test]
fn dirty_agrees_with_git_status_in_every_case() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    fn chmod_x(path: &std::path::Path) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 20\n");
        t.write("src/lib/a.txt", "a\n");
        t.write("src/b.txt", "b\n");
        t.write("run.sh", "#!/bin/sh\n");
        chmod_x(&t.repo.join("run.sh"));
        symlink("src/b.txt", t.repo.join("link")).expect("symlink");
        t.write(".gitignore", "target/\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "a tree with depth, modes and a link"]);
        let cases: &[(&str, Change)] = &[
            ("clean", |_, _| {}),
            ("edited-same-size", |_, w| {
                write_file(&w.join("src/lib/a.txt"), "A\n")
            }),
            ("appended", |_, w| {
                write_file(&w.join("src/b.txt"), "b\nmore\n")
            }),
            ("untracked", |_, w| write_file(&w.join("new.txt"), "n\n")),
            ("untracked-deep", |_, w| {
                write_file(&w.join("src/lib/new.txt"), "n\n")
            }),
            ("ignored", |_, w| write_file(&w.join("target/out.o"), "o\n")),
            ("staged", |t, w| {
                write_file(&w.join("src/b.txt"), "staged\n");
                t.git_in(w, &["add", "src/b.txt"]);
            }),
            ("deleted", |_, w| {
                std::fs::remove_file(w.join("src/b.txt")).expect("rm")
            }),
            ("made-executable", |_, w| chmod_x(&w.join("src/b.txt"))),
            ("empty-dir", |_, w| {
                std::fs::create_dir(w.join("empty")).expect("mkdir")
            }),
            ("link-retargeted", |_, w| {
                std::fs::remove_file(w.join("link")).expect("rm link");
                symlink("run.sh", w.join("link")).expect("symlink");
            }),
            ("file-became-dir", |_, w| {
                std::fs::remove_file(w.join("src/b.txt")).expect("rm");
                write_file(&w.join("src/b.txt/inner"), "i\n");
            }),
        ];
        for (id, change) in cases {
            let worktree = t.add(id);
            settle(t, &worktree);
            change(t, &worktree);
        }
        let compare = |what: &str| {
            let sessions = list(t)["sessions"].as_array().unwrap().clone();
            for (id, _) in cases {
                let ours = sessions.iter().find(|s| s["id"] == *id).unwrap()["dirty"].clone();
                let status = t.git_in(&t.worktree(id), &["status", "--porcelain"]);
                assert_eq!(
                    ours,
                    !status.trim().is_empty(),
                    "{what}: session '{id}': git status says {status:?}"
                );
            }
        };
        compare("as made");
        let clean = list(t)["sessions"].as_array().unwrap().clone();
        let clean = clean.iter().find(|s| s["id"] == "clean").unwrap();
        assert_eq!(clean["dirty"], false, "the session file is excluded");

        // Without the exclude line, git sees the session file as untracked: so must we.
        let exclude = t.repo.join(".git/info/exclude");
        let text = std::fs::read_to_string(&exclude).expect("exclude");
        let kept: String = text
            .lines()
            .filter(|l| !l.contains("codex-session"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&exclude, kept).expect("write exclude");
        for (id, _) in cases {
            settle(t, &t.worktree(id));
        }
        compare("without the exclude line");
    });
}
