//! Issue 16: a landing killed halfway in the checkout of its target (files written, the
//! branch not moved, a merge or squash stopped in its commit, locks and leftovers of the
//! killed git): the next `session merge` finishes it, and a change of the person's among
//! those paths stops it, untouched.

mod common;
#[path = "common/crash.rs"]
mod crash;

use std::path::Path;

use common::{TestEnv, each_git, run, write_file};
use crash::{Plan, run_crashed};

/// Runs `session merge s --strategy STRATEGY` and kills git-codex just before the git call
/// that lands in the checkout: what that git writes before it is killed, the test writes.
fn killed_before_landing(t: &TestEnv, strategy: &str) {
    let args = match strategy {
        "merge" => "merge --no-ff",
        "squash" => "merge --squash",
        _ => "merge --ff-only",
    };
    let command: Vec<String> = ["session", "merge", "s", "--strategy", strategy]
        .map(String::from)
        .to_vec();
    let plan = Plan::Matching {
        args,
        after: false,
        group: false,
    };
    let out = run_crashed(t, &command, plan, None);
    assert!(
        out.killed,
        "{strategy}: never reached '{args}': {}",
        out.calls_log
    );
}

/// An approved session `s` adding `one.txt` and changing README.md, for merges into main.
fn approved_two_files(t: &TestEnv) {
    let wt = t.add("s");
    write_file(&wt.join("one.txt"), "one\n");
    write_file(&wt.join("README.md"), "changed by the session\n");
    t.codex(&["session", "review", "s"]).assert().success();
    t.codex(&["session", "review", "s", "--approve"])
        .assert()
        .success();
}

/// A landing killed in the main worktree after git wrote the landed files (all of them, index
/// included, or some on disk only, or one unlinked and not yet written) but before it moved
/// the branch: the next merge puts them
/// back and lands whole, every strategy; a change of the person's among them stops it, untouched.
#[test]
fn a_landing_killed_after_it_wrote_the_checkout_is_landed_whole_by_the_next_merge() {
    each_git(|t| {
        for (n, strategy) in ["rebase", "merge", "squash"].into_iter().enumerate() {
            let t = &TestEnv::new(&t.git);
            approved_two_files(t);
            killed_before_landing(t, strategy);
            let tip = t.git(&["rev-parse", "codex/s"]);
            if n == 0 {
                // The index written, the branch not moved (HEAD.lock and the ref's lock left).
                t.git(&["read-tree", "-m", "-u", "HEAD", &tip]);
                write_file(&t.repo.join(".git/HEAD.lock"), "");
                write_file(&t.repo.join(".git/refs/heads/main.lock"), "");
            } else if n == 1 {
                // Some files written on disk only, the last cut short (git writes in place).
                write_file(&t.repo.join("README.md"), "changed by the session\n");
                write_file(&t.repo.join("one.txt"), "on");
            } else {
                // Killed between unlinking a changed file and writing it again (attacker).
                write_file(&t.repo.join("one.txt"), "one\n");
                std::fs::remove_file(t.repo.join("README.md")).expect("unlink");
            }
            write_file(&t.repo.join("mine.txt"), "the person's untracked file\n");
            let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", strategy]));
            assert_eq!(code, 0, "{strategy}: {err}");
            assert!(err.contains("killed halfway"), "{strategy}: {err}");
            assert_eq!(t.git(&["show", "main:one.txt"]), "one", "{strategy}");
            assert_eq!(t.git(&["show", "main:README.md"]), "changed by the session");
            let status = t.git(&["status", "--porcelain"]);
            assert_eq!(status, "?? mine.txt", "{strategy}");
        }
        // The person's own change among the written files: nothing is touched.
        let t = &TestEnv::new(&t.git);
        approved_two_files(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("README.md"), "the person's edit\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 3, "{err}");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("README.md")).expect("readme"),
            "the person's edit\n"
        );
        assert!(t.repo.join("one.txt").is_file());
    });
}

/// Run as `git codex …`, the git that dispatched git-codex is no holder of a stale lock: a
/// killed git's `index.lock` is moved aside and the merge lands, as with `git-codex` itself.
#[test]
fn through_git_codex_the_dispatching_git_holds_no_lock() {
    each_git(|t| {
        approved_two_files(t);
        write_file(&t.repo.join(".git/index.lock"), "");
        let out = t.git_output(&t.repo, &["codex", "session", "merge", "s"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("moved the stale git lock"), "{err}");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
    });
}

/// A merge killed in its commit leaves the session's merge or squash staged (MERGE_HEAD or
/// SQUASH_MSG) and nothing else: the next merge drops it and lands whole.
#[test]
fn a_merge_killed_in_its_commit_is_landed_by_the_next_merge() {
    each_git(|t| {
        for (how, args) in [
            (
                "merge",
                &["merge", "-q", "--no-ff", "--no-commit", "codex/s"][..],
            ),
            ("squash", &["merge", "-q", "--squash", "codex/s"][..]),
        ] {
            let t = &TestEnv::new(&t.git);
            approved_two_files(t);
            let out = t.git_without_hooks(args);
            assert!(out.status.success(), "{out:?}");
            let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", how]));
            assert_eq!(code, 0, "{how}: {err}");
            assert!(err.contains("stopped before its commit"), "{how}: {err}");
            assert_eq!(t.git(&["show", "main:one.txt"]), "one", "{how}");
            assert_eq!(t.git(&["status", "--porcelain"]), "", "{how}");
        }
    });
}

/// A merge killed after git moved the branch, before it dropped `MERGE_HEAD` (crash sweep:
/// merge checked out after 160 ms): the re-run says it landed and drops the stale merge
/// state, which would make the person's next commit a second merge of the session.
#[test]
fn a_merge_killed_after_its_commit_leaves_no_merge_head_behind_the_rerun() {
    each_git(|t| {
        approved_two_files(t);
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "merge"]));
        assert_eq!(code, 0, "{err}");
        let tip = t.git(&["rev-parse", "codex/s"]);
        write_file(&t.repo.join(".git/MERGE_HEAD"), &format!("{tip}\n"));
        write_file(&t.repo.join(".git/MERGE_MSG"), "Merge session 's'\n");
        let landed = t.git(&["rev-parse", "main"]);
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "merge"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("already"), "{err}");
        assert!(!t.repo.join(".git/MERGE_HEAD").exists(), "{err}");
        assert_eq!(t.git(&["rev-parse", "main"]), landed);
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}

/// Outside attacker: a merge killed (git-codex alone) while git committed left `HEAD.lock`,
/// and the re-run a moment later failed on it: the killed git's hook (`git-codex hook`, which
/// no death signal reaches) still ran in the repository, so the lock counted as held. Here
/// a git of the killed git-codex (it carries that git-codex's mark) is still at work when
/// the merge starts: the merge waits for it to end, then moves the stale lock aside and lands.
#[test]
fn a_merge_waits_for_a_killed_commands_git_before_it_judges_a_lock() {
    each_git(|t| {
        approved_two_files(t);
        let mut gone = std::process::Command::new("true").spawn().expect("true");
        let dead = gone.id();
        gone.wait().expect("wait");
        // A real git of the dead git-codex, at work in the repository until its input ends.
        let mut orphan = std::process::Command::new(&t.git)
            .args(["cat-file", "--batch"])
            .current_dir(&t.repo)
            .env("GIT_CODEX_PID", dead.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("git cat-file");
        write_file(&t.repo.join(".git/HEAD.lock"), "");
        let input = orphan.stdin.take();
        let ender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            drop(input);
        });
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        ender.join().expect("ender");
        let _ = orphan.wait();
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("HEAD.lock"), "{err}");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
    });
}

/// Outside attacker (round 2): a landing that writes a symbolic link, killed halfway (the link
/// written, the branch not moved), was refused for good: a link never counted as the
/// landing's. Now it is compared by its text, as git stores it, and the merge lands whole.
#[test]
fn a_half_landing_that_wrote_a_link_is_landed_whole_by_the_next_merge() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("one.txt"), "one\n");
        std::os::unix::fs::symlink("one.txt", wt.join("link")).expect("symlink");
        t.codex(&["session", "review", "s"]).assert().success();
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        // git wrote the link and the file, then was killed before it moved the branch.
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("one.txt"), "one\n");
        std::os::unix::fs::symlink("one.txt", t.repo.join("link")).expect("symlink");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("killed halfway"), "{err}");
        assert_eq!(t.git(&["show", "main:link"]), "one.txt");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        // A link of the person's own (another target) is no half landing: nothing touched.
        let t = &TestEnv::new(&t.git);
        let wt = t.add("s");
        std::os::unix::fs::symlink("one.txt", wt.join("link")).expect("symlink");
        t.codex(&["session", "review", "s"]).assert().success();
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        killed_before_landing(t, "merge");
        std::os::unix::fs::symlink("elsewhere", t.repo.join("link")).expect("symlink");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_ne!(code, 0, "{err}");
        assert_eq!(
            std::fs::read_link(t.repo.join("link")).expect("link"),
            Path::new("elsewhere")
        );
    });
}

/// Changes in the checkout that hold exactly what the session's landing writes, with no
/// landing of it begun there (the person copied them, or merged by hand): git-codex cannot
/// prove they are its own, so nothing is put back and the merge refuses as for any change.
#[test]
fn the_same_changes_with_no_landing_begun_are_the_persons() {
    each_git(|t| {
        approved_two_files(t);
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("README.md"), "changed by the session\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("uncommitted changes"), "{err}");
        assert!(!err.contains("killed halfway"), "{err}");
        assert_eq!(
            t.git(&["status", "--porcelain"]),
            " M README.md\n?? one.txt"
        );
        assert_eq!(t.git(&["rev-parse", "main"]), t.git(&["rev-parse", "HEAD"]));
    });
}

/// Third outside attacker: after a landing killed halfway, the person edits one of the
/// landed files. The re-run refused with "commit or stash them first" and doctor was silent;
/// committing as told put the session's half-landed files in a commit of the person's. Now
/// the merge and doctor both name the half landing and the person's paths, touch nothing,
/// and the commands they give land the session whole and keep the person's edit.
#[test]
fn a_persons_edit_among_a_half_landing_is_named_and_the_given_repair_keeps_it() {
    each_git(|t| {
        let lines = |sixth: &str| format!("one\ntwo\nthree\nfour\nfive\n{sixth}\n");
        write_file(&t.repo.join("notes.txt"), &lines("six"));
        t.git(&["add", "notes.txt"]);
        t.git(&["commit", "-q", "-m", "notes"]);
        let wt = t.add("s");
        write_file(&wt.join("one.txt"), "one\n");
        write_file(&wt.join("README.md"), "changed by the session\n");
        write_file(&wt.join("notes.txt"), &lines("six").replace("two", "TWO"));
        t.codex(&["session", "review", "s"]).assert().success();
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        killed_before_landing(t, "merge");
        // git wrote the three files, then died; the person then edits one of them.
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("README.md"), "changed by the session\n");
        let edited = lines("SIX, the person's").replace("two", "TWO");
        write_file(&t.repo.join("notes.txt"), &edited);
        write_file(&t.repo.join("mine.txt"), "the person's untracked file\n");
        let before = t.git(&["status", "--porcelain"]);
        let main = t.git(&["rev-parse", "main"]);

        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("2 file(s) of a landing of session 's'"),
            "{err}"
        );
        assert!(err.contains("not the landing's: notes.txt"), "{err}");
        assert!(!err.contains("commit or stash"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), before);
        assert_eq!(
            std::fs::read_to_string(t.repo.join("notes.txt")).expect("notes"),
            edited
        );
        assert_eq!(t.git(&["rev-parse", "main"]), main);

        let merges = common::doctor_check(t, "merges");
        assert_eq!(merges["status"], "warn", "{merges}");
        let detail = merges["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("not the landing's: notes.txt"), "{merges}");
        let hint = merges["hint"].as_str().unwrap_or_default();
        assert!(
            hint.contains("stash push --include-untracked -- notes.txt"),
            "{merges}"
        );

        // The repair, word for word as given.
        let hint = err
            .lines()
            .find(|l| l.contains("stash push"))
            .expect("a hint");
        let commands: Vec<&str> = hint.split('\'').skip(1).step_by(2).collect();
        assert_eq!(commands.len(), 3, "{hint}");
        for command in commands {
            let words: Vec<&str> = command.split(' ').collect();
            let out = if words[0] == "git" && words[1] == "codex" {
                let (code, _, err) = run(t.codex(&words[2..]));
                assert_eq!(code, 0, "{command}: {err}");
                assert!(err.contains("killed halfway"), "{err}");
                continue;
            } else {
                t.git_output(&t.repo, &words[1..])
            };
            assert!(out.status.success(), "{command}: {out:?}");
        }
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(t.git(&["show", "main:README.md"]), "changed by the session");
        assert_eq!(
            t.git(&["show", "main:notes.txt"]),
            lines("six").replace("two", "TWO").trim_end()
        );
        assert_eq!(
            std::fs::read_to_string(t.repo.join("notes.txt")).expect("notes"),
            edited
        );
        assert_eq!(
            t.git(&["status", "--porcelain"]),
            " M notes.txt\n?? mine.txt"
        );
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "main"]),
            "Merge session 's' (codex/s)"
        );
        assert_eq!(common::doctor_check(t, "merges")["status"], "ok");
    });
}

/// A merge re-run the instant after a kill: the killed git, still dying, counted as the
/// holder of its `index.lock` when the locks were judged, so putting the half landing back
/// failed on the lock (attacker's script, 0 of 6 delays). Here the lock appears between the
/// judging and the putting back, as it did then: the merge finds it stale, clears it and
/// puts the landing back once more.
#[test]
fn a_lock_found_stale_after_putting_the_landing_back_failed_is_cleared_and_tried_again() {
    each_git(|t| {
        approved_two_files(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("README.md"), "changed by the session\n");
        let script = t.root().join("late-lock-git");
        write_file(
            &script,
            &format!(
                "#!/bin/sh\ncase \" $* \" in *\" checkout -q HEAD -- \"*)\n  [ -e '{flag}' ] || {{ : > '{flag}'; : > '{lock}'; }} ;;\nesac\nexec '{real}' \"$@\"\n",
                flag = t.root().join("lock-made").display(),
                lock = t.repo.join(".git/index.lock").display(),
                real = t.git.display(),
            ),
        );
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut merge = t.codex(&["session", "merge", "s"]);
        merge.env("GIT_CODEX_GIT", &script);
        let (code, _, err) = run(merge);
        assert!(t.root().join("lock-made").exists(), "{err}");
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("killed halfway"), "{err}");
        assert!(err.contains("index.lock"), "{err}");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}
