//! Issue 16: a landing killed halfway in the checkout of its target (files written, the
//! branch not moved, a merge or squash stopped in its commit, locks and leftovers of the
//! killed git): the next `session merge` finishes it, and a change of the person's among
//! those paths stops it, untouched.

mod common;
#[path = "common/crash.rs"]
#[allow(dead_code)]
mod crash;

use std::path::Path;

use common::{TestEnv, each_git, run, write_file};
use crash::{Outcome, Plan, run_crashed};

/// Sets the modification time of `path` (a file or a directory) `secs` ahead: the person
/// touched it then, well after git was killed.
fn touched_later(path: &Path, secs: u64) {
    let then = std::time::SystemTime::now() + std::time::Duration::from_secs(secs);
    let file = if path.is_dir() {
        std::fs::File::open(path)
    } else {
        std::fs::File::options().write(true).open(path)
    };
    file.and_then(|f| f.set_modified(then)).expect("set mtime");
}

/// Runs `session merge s --strategy STRATEGY` and kills git-codex (alone) just before (or
/// after) its first git call whose arguments hold `call`; fails unless it got there.
fn merge_killed_at(t: &TestEnv, strategy: &str, call: &'static str, after: bool) -> Outcome {
    let command: Vec<String> = ["session", "merge", "s", "--strategy", strategy]
        .map(String::from)
        .to_vec();
    let plan = Plan::Matching {
        args: call,
        after,
        group: false,
    };
    let out = run_crashed(t, &command, plan, None);
    assert!(
        out.killed,
        "{strategy}: never reached '{call}': {}{}",
        out.stderr, out.calls_log
    );
    out
}

/// Runs `session merge s --strategy STRATEGY` and kills git-codex just before the git call
/// that lands in the checkout: what that git writes before it is killed, the test writes.
fn killed_before_landing(t: &TestEnv, strategy: &str) {
    let call = match strategy {
        "merge" => "merge --no-ff",
        "squash" => "merge --squash",
        _ => "merge --ff-only",
    };
    merge_killed_at(t, strategy, call, false);
}

/// Reviews and approves session `s` as its worktree is.
fn approve_s(t: &TestEnv) {
    t.codex(&["session", "review", "s"]).assert().success();
    t.codex(&["session", "review", "s", "--approve"])
        .assert()
        .success();
}

/// An approved session `s` adding `one.txt` and changing README.md, for merges into main.
fn approved_two_files(t: &TestEnv) {
    let wt = t.add("s");
    write_file(&wt.join("one.txt"), "one\n");
    write_file(&wt.join("README.md"), "changed by the session\n");
    approve_s(t);
}

/// A landing killed in the main worktree after git wrote the landed files (all of them, index
/// included, or some on disk only, the last cut short, or one unlinked and not yet written)
/// but before it moved the branch: the next merge puts them back and lands whole, every
/// strategy.
#[test]
fn a_landing_killed_after_it_wrote_the_checkout_is_landed_whole_by_the_next_merge() {
    each_git(|t| {
        for (n, strategy) in ["rebase", "merge", "squash"].into_iter().enumerate() {
            let t = &TestEnv::new(&t.git);
            approved_two_files(t);
            killed_before_landing(t, strategy);
            let tip = t.git(&["rev-parse", "codex/s"]);
            let left = "?? mine.txt";
            if n == 0 {
                // The index written, the branch not moved (HEAD.lock and the ref's lock left).
                t.git(&["read-tree", "-m", "-u", "HEAD", &tip]);
                write_file(&t.repo.join(".git/HEAD.lock"), "");
                write_file(&t.repo.join(".git/refs/heads/main.lock"), "");
            } else if n == 1 {
                // Some files written on disk only, the last cut short as git wrote it with
                // the others (git writes in place): the landing's.
                write_file(&t.repo.join("README.md"), "changed by the session\n");
                write_file(&t.repo.join("one.txt"), "on");
            } else {
                // Killed between unlinking a changed file and writing it again (its directory
                // was touched as the landing wrote: git's; a later deletion is the person's).
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
            assert_eq!(status, left, "{strategy}");
        }
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
        approve_s(t);
        // git wrote the link and the file, then was killed before it moved the branch.
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("one.txt"), "one\n");
        std::os::unix::fs::symlink("one.txt", t.repo.join("link")).expect("symlink");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("killed halfway"), "{err}");
        assert_eq!(t.git(&["show", "main:link"]), "one.txt");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        // A link of the person's own (another target) is no half landing: it is kept aside,
        // the session lands, and the link is written back as it was.
        let t = &TestEnv::new(&t.git);
        let wt = t.add("s");
        std::os::unix::fs::symlink("one.txt", wt.join("link")).expect("symlink");
        approve_s(t);
        killed_before_landing(t, "merge");
        std::os::unix::fs::symlink("elsewhere", t.repo.join("link")).expect("symlink");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:link"]), "one.txt");
        assert_eq!(
            std::fs::read_link(t.repo.join("link")).expect("link"),
            Path::new("elsewhere")
        );
        assert_eq!(t.git(&["status", "--porcelain"]), " M link");
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

/// Outside attackers (rounds 3 and 4): after a landing killed halfway, the person edits one of
/// the landed files (next to the session's own change), truncates a file the session never
/// touches, deletes one the landing changes, and adds an untracked file the session adds too.
/// The re-run refused with "commit or stash them first" (committing as told put the session's
/// files in a commit of the person's), or put the truncated and added files back as the
/// branch had them. Now doctor names the killed landing and the person's paths, and the
/// re-run keeps those aside, lands the session whole and writes them back byte for byte.
#[test]
fn the_persons_changes_among_a_half_landing_are_kept_as_they_are() {
    each_git(|t| {
        let lines = |second: &str| format!("one\n{second}\nthree\n");
        write_file(&t.repo.join("notes.txt"), &lines("two"));
        write_file(&t.repo.join("keep.txt"), "keep 1\nkeep 2\nold junk\n");
        write_file(&t.repo.join("gone.txt"), "old\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "the person's files"]);
        let wt = t.add("s");
        write_file(&wt.join("one.txt"), "one\n");
        write_file(&wt.join("README.md"), "changed by the session\n");
        write_file(&wt.join("notes.txt"), &lines("TWO"));
        write_file(&wt.join("gone.txt"), "new\n");
        write_file(&wt.join("todo.txt"), "TODO: one\nTODO: two\n");
        approve_s(t);
        killed_before_landing(t, "merge");
        // git wrote two files, then died; the person works on a minute later (and, later
        // still, saves one of git's files again, same bytes).
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("README.md"), "changed by the session\n");
        let edited = lines("TWO").replace("three", "three, said the person");
        write_file(&t.repo.join("notes.txt"), &edited);
        write_file(&t.repo.join("keep.txt"), "keep 1\nkeep 2\n");
        std::fs::remove_file(t.repo.join("gone.txt")).expect("rm");
        write_file(&t.repo.join("todo.txt"), "TODO: one\n");
        write_file(&t.repo.join("mine.txt"), "the person's untracked file\n");
        for path in ["notes.txt", "keep.txt", "todo.txt", "mine.txt", "."] {
            touched_later(&t.repo.join(path), 60);
        }
        touched_later(&t.repo.join("README.md"), 120);
        let main = t.git(&["rev-parse", "main"]);

        let merges = common::doctor_check(t, "merges");
        assert_eq!(merges["status"], "warn", "{merges}");
        let detail = merges["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("2 file(s) of a landing of session 's'"),
            "{merges}"
        );
        for path in ["notes.txt", "keep.txt", "gone.txt", "todo.txt"] {
            assert!(detail.contains(path), "{path}: {merges}");
        }
        let hint = merges["hint"].as_str().unwrap_or_default();
        assert!(
            hint.contains("'git codex session merge s --into main'"),
            "{merges}"
        );
        assert_eq!(t.git(&["rev-parse", "main"]), main);

        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--into", "main"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("kept 4 changed path(s) of yours aside"),
            "{err}"
        );
        assert!(err.contains("killed halfway"), "{err}");
        assert!(err.contains("wrote back 4 changed path(s)"), "{err}");
        for (path, session) in [
            ("one.txt", "one"),
            ("README.md", "changed by the session"),
            ("notes.txt", "one\nTWO\nthree"),
            ("gone.txt", "new"),
            ("todo.txt", "TODO: one\nTODO: two"),
            ("keep.txt", "keep 1\nkeep 2\nold junk"),
        ] {
            assert_eq!(t.git(&["show", &format!("main:{path}")]), session, "{path}");
        }
        let read = |path: &str| std::fs::read_to_string(t.repo.join(path)).expect(path);
        assert_eq!(read("notes.txt"), edited);
        assert_eq!(read("keep.txt"), "keep 1\nkeep 2\n");
        assert_eq!(read("todo.txt"), "TODO: one\n");
        assert!(!t.repo.join("gone.txt").exists());
        assert_eq!(
            t.git(&["status", "--porcelain"]),
            " D gone.txt\n M keep.txt\n M notes.txt\n M todo.txt\n?? mine.txt"
        );
        assert_eq!(
            t.git(&["log", "-1", "--format=%s%n%an", "main"]),
            "Merge session 's' (codex/s)\nTest User"
        );
        assert_eq!(t.git(&["rev-parse", "main^1"]), main);
        assert_eq!(common::doctor_check(t, "merges")["status"], "ok");
        assert!(t.git(&["for-each-ref", "refs/codex/kept"]).is_empty());
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
                "#!/bin/sh\ncase \" $* \" in *\" checkout -q HEAD --pathspec-from-file\"*)\n  [ -e '{flag}' ] || {{ : > '{flag}'; : > '{lock}'; }} ;;\nesac\nexec '{real}' \"$@\"\n",
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

/// The person's edit kept aside, the merge killed again: before it landed (the edit is only
/// in the kept commit, the file as the branch has it) or after (the session landed, the edit
/// not yet written back). doctor names it, and the next merge writes the edit back and lands
/// once.
#[test]
fn a_merge_killed_while_it_kept_the_persons_changes_aside_writes_them_back_next_time() {
    each_git(|t| {
        for after in [false, true] {
            let t = &TestEnv::new(&t.git);
            approved_two_files(t);
            killed_before_landing(t, "merge");
            write_file(&t.repo.join("one.txt"), "one\n");
            write_file(&t.repo.join("README.md"), "the person's edit\n");
            let out = merge_killed_at(t, "merge", "merge --no-ff", after);
            assert!(
                out.stderr.contains("kept 1 changed path(s)"),
                "{}",
                out.stderr
            );
            let kept = t.git(&["show", "refs/codex/kept/s:README.md"]);
            assert_eq!(kept, "the person's edit");
            let merges = common::doctor_check(t, "merges");
            assert_eq!(merges["status"], "warn", "{merges}");
            assert!(
                merges["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("kept aside"),
                "{merges}"
            );
            let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
            assert_eq!(code, 0, "after: {after}: {err}");
            assert!(err.contains("that a killed merge had kept aside"), "{err}");
            assert_eq!(t.git(&["show", "main:README.md"]), "changed by the session");
            assert_eq!(t.git(&["rev-list", "--count", "--merges", "main"]), "1");
            assert_eq!(
                std::fs::read_to_string(t.repo.join("README.md")).expect("readme"),
                "the person's edit\n"
            );
            assert_eq!(t.git(&["status", "--porcelain"]), " M README.md");
            assert!(t.git(&["for-each-ref", "refs/codex/kept"]).is_empty());
            assert_eq!(common::doctor_check(t, "merges")["status"], "ok");
        }
    });
}

/// Outside attacker (round 4): a squash killed before its commit, then the person edits the
/// squashed file. The hint ('git reset --merge') failed on the edit, for good. Now the merge
/// unstages the squash itself (`git reset -q`, every file as it is) and lands, keeping the edit.
#[test]
fn a_squash_stopped_before_its_commit_with_the_persons_edit_lands_and_keeps_it() {
    each_git(|t| {
        approved_two_files(t);
        merge_killed_at(t, "squash", "commit -q -m", false);
        assert!(t.repo.join(".git/SQUASH_MSG").exists());
        write_file(
            &t.repo.join("README.md"),
            "changed by the session\nand the person\n",
        );
        let args = ["session", "merge", "s", "--strategy", "squash"];
        let (code, _, err) = run(t.codex(&args));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("git reset -q"), "{err}");
        assert_eq!(t.git(&["show", "main:README.md"]), "changed by the session");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("README.md")).expect("readme"),
            "changed by the session\nand the person\n"
        );
        assert_eq!(t.git(&["status", "--porcelain"]), " M README.md");
        assert!(!t.repo.join(".git/SQUASH_MSG").exists());
    });
}

/// Outside attacker (round 4): a squash (or rebase) killed after it moved the branch, re-run
/// with another strategy, landed the session a second time as a merge commit.
#[test]
fn a_landing_killed_after_it_moved_the_branch_lands_nothing_twice_by_another_strategy() {
    each_git(|t| {
        for (first, call) in [("squash", "commit -q -m"), ("rebase", "merge --ff-only")] {
            let t = &TestEnv::new(&t.git);
            write_file(&t.repo.join("theirs.txt"), "the target moved on\n");
            let wt = t.add("s");
            t.git(&["add", "theirs.txt"]);
            t.git(&["commit", "-q", "-m", "theirs"]);
            write_file(&wt.join("one.txt"), "one\n");
            approve_s(t);
            merge_killed_at(t, first, call, true);
            let landed = t.git(&["rev-parse", "main"]);
            assert_eq!(t.git(&["show", "main:one.txt"]), "one", "{first}");
            let args = ["session", "merge", "s", "--strategy", "merge"];
            let (code, _, err) = run(t.codex(&args));
            assert_eq!(code, 0, "{first}: {err}");
            assert!(err.contains("nothing to land"), "{first}: {err}");
            assert_eq!(t.git(&["rev-parse", "main"]), landed, "{first}");
        }
    });
}

/// Outside attacker (round 4): a half landing with a name that is not UTF-8 failed every
/// re-run (the name was decoded lossily and matched nothing).
#[test]
fn a_half_landing_of_a_name_that_is_not_utf8_is_landed_whole() {
    use std::os::unix::ffi::OsStrExt as _;
    each_git(|t| {
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9 [x]*.txt");
        let wt = t.add("s");
        std::fs::write(wt.join(name), "cafe\n").expect("write");
        write_file(&wt.join("g.txt"), "g\n");
        approve_s(t);
        killed_before_landing(t, "merge");
        std::fs::write(t.repo.join(name), "cafe\n").expect("write");
        write_file(&t.repo.join("g.txt"), "g\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("2 file(s)"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        assert_eq!(t.git(&["show", "main:g.txt"]), "g");
    });
}

/// Outside attacker (round 4): with a landing of `s` killed halfway in main, a merge of `s`
/// into another branch wiped the note of it, and a merge of another session gave the plain
/// "commit or stash" hint (committing put s's files in the person's commit). Both now say
/// which landing to finish first, and touch nothing.
#[test]
fn a_half_landing_is_finished_before_another_landing_of_it_or_of_another_session() {
    each_git(|t| {
        t.git(&["branch", "other"]);
        approved_two_files(t);
        let wt = t.add("t");
        write_file(&wt.join("t.txt"), "t\n");
        t.codex(&["session", "review", "t"]).assert().success();
        t.codex(&["session", "review", "t", "--approve"])
            .assert()
            .success();
        killed_before_landing(t, "merge");
        // git wrote one.txt; the person then edited README.md (only theirs would do too).
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("README.md"), "the person's edit\n");
        let before = t.git(&["status", "--porcelain"]);
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--into", "other"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("finish it first: 'git codex session merge s --into main'"),
            "{err}"
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "t"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("finish it first: 'git codex session merge s --into main'"),
            "{err}"
        );
        assert_eq!(t.git(&["status", "--porcelain"]), before);
        assert_eq!(
            t.git(&["rev-parse", "other"]),
            t.git(&["rev-parse", "main"])
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        t.git(&["checkout", "README.md"]);
        let (code, _, err) = run(t.codex(&["session", "merge", "t"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}

/// The person's kept changes come back byte for byte, whatever the repository's filters: a
/// file they wrote with bare line ends where `.gitattributes` says `eol=crlf` stays as they
/// wrote it (git's own checkout would have turned its line ends).
#[test]
fn kept_changes_come_back_byte_for_byte_through_line_end_filters() {
    each_git(|t| {
        write_file(&t.repo.join(".gitattributes"), "*.txt text eol=crlf\n");
        write_file(&t.repo.join("keep.txt"), "keep\r\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "attributes"]);
        approved_two_files(t);
        killed_before_landing(t, "merge");
        std::fs::write(t.repo.join("keep.txt"), "mine\nas I wrote it\n").expect("write");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("wrote back 1 changed path(s)"), "{err}");
        assert_eq!(
            std::fs::read(t.repo.join("keep.txt")).expect("keep"),
            b"mine\nas I wrote it\n"
        );
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
    });
}

/// Outside attacker (round 5): killed again while the person's changes were kept aside, after
/// git had written a landed file over one of them (or while the person went on editing it):
/// the next merge refused for good. Now what the landing wrote is replaced by the kept
/// version, what the person wrote since stays, and the merge lands.
#[test]
fn killed_again_while_kept_aside_the_next_merge_still_lands_and_keeps_the_newest() {
    each_git(|t| {
        for newer in [false, true] {
            let t = &TestEnv::new(&t.git);
            approved_two_files(t);
            killed_before_landing(t, "merge");
            write_file(&t.repo.join("README.md"), "the person's edit\n");
            let call = if newer {
                "checkout -q HEAD --pathspec-from-file=- --pathspec-file-nul"
            } else {
                "merge --no-ff"
            };
            merge_killed_at(t, "merge", call, false);
            let mine = if newer {
                // The put-back never ran: the person goes on editing their file.
                "the person's edit\nand more\n"
            } else {
                // git wrote the landing's files over the put-back ones, then died.
                write_file(&t.repo.join("README.md"), "changed by the session\n");
                write_file(&t.repo.join("one.txt"), "one\n");
                "the person's edit\n"
            };
            if newer {
                write_file(&t.repo.join("README.md"), mine);
            }
            let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
            assert_eq!(code, 0, "newer: {newer}: {err}");
            assert_eq!(t.git(&["show", "main:README.md"]), "changed by the session");
            assert_eq!(
                std::fs::read_to_string(t.repo.join("README.md")).expect("readme"),
                mine
            );
            assert_eq!(t.git(&["status", "--porcelain"]), " M README.md");
            assert_eq!(common::doctor_check(t, "merges")["status"], "ok");
        }
    });
}

/// Outside attacker (round 5): the person's staged version of a file (`git add -p` work) was
/// lost when their changes were kept aside: only the worktree's was kept.
#[test]
fn what_the_person_staged_is_staged_again_after_the_landing() {
    each_git(|t| {
        write_file(&t.repo.join("c.txt"), "c\n");
        t.git(&["add", "c.txt"]);
        t.git(&["commit", "-q", "-m", "c"]);
        approved_two_files(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("one.txt"), "one\n");
        write_file(&t.repo.join("c.txt"), "c\nstaged\n");
        write_file(&t.repo.join("new.txt"), "a staged new file\n");
        t.git(&["add", "c.txt", "new.txt"]);
        write_file(&t.repo.join("c.txt"), "c\nstaged\nand not\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(t.git(&["show", ":c.txt"]), "c\nstaged");
        assert_eq!(t.git(&["show", ":new.txt"]), "a staged new file");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("c.txt")).expect("c"),
            "c\nstaged\nand not\n"
        );
        assert_eq!(t.git(&["status", "--porcelain"]), "MM c.txt\nA  new.txt");
    });
}

/// Outside attacker (round 5): a landing that conflicts, killed while git wrote the checkout
/// (conflict markers in one file, the session's new files beside it), went unrecognised, and
/// committing as the hint said put both in the person's commit. A merge or squash that does
/// not merge cleanly is now refused before it writes anything, so none is ever killed
/// halfway; after a killed clean landing, the person's own conflicting commit gets the same
/// refusal, and their file that equals the session's (taken for the landing's and deleted
/// before the failed landing) is untouched.
#[test]
fn a_landing_that_cannot_merge_cleanly_touches_nothing() {
    each_git(|t| {
        approved_two_files(t);
        write_file(&t.repo.join("README.md"), "changed on main\n");
        t.git(&["commit", "-q", "-a", "-m", "main moves on"]);
        write_file(&t.repo.join("mine.txt"), "mine\n");
        let main = t.git(&["rev-parse", "main"]);
        for strategy in ["merge", "squash"] {
            let args = ["session", "merge", "s", "--strategy", strategy];
            let (code, _, err) = run(t.codex(&args));
            assert_eq!(code, 1, "{strategy}: {err}");
            assert!(err.contains("conflicts in README.md"), "{err}");
            assert_eq!(t.git(&["status", "--porcelain"]), "?? mine.txt");
            assert_eq!(t.git(&["rev-parse", "main"]), main);
            assert_eq!(common::doctor_check(t, "merges")["status"], "ok");
        }
        // A clean landing killed before it wrote anything; the person then commits a change
        // that conflicts with the session and makes a file equal to the session's.
        let t = &TestEnv::new(&t.git);
        approved_two_files(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("README.md"), "changed on main\n");
        t.git(&["commit", "-q", "-a", "-m", "main moves on"]);
        write_file(&t.repo.join("one.txt"), "one\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("conflicts in README.md"), "{err}");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("one.txt")).expect("one"),
            "one\n"
        );
        assert_eq!(t.git(&["status", "--porcelain"]), "?? one.txt");
    });
}

/// Outside attacker (round 6): after a landing killed halfway, the person committed a file of
/// their own by its path (`git commit -- theirs.txt`), leaving the landing's files staged;
/// doctor said nothing and the re-run said "commit or stash them first". The landing's files
/// are still proven against what it makes on the branch as it is now, and land whole.
#[test]
fn a_commit_of_the_persons_own_after_a_half_landing_leaves_it_to_finish() {
    each_git(|t| {
        approved_two_files(t);
        killed_before_landing(t, "merge");
        let tip = t.git(&["rev-parse", "codex/s"]);
        t.git(&["read-tree", "-m", "-u", "HEAD", &tip]);
        write_file(&t.repo.join("theirs.txt"), "theirs\n");
        t.git(&["add", "theirs.txt"]);
        t.git(&["commit", "-q", "-m", "the person's own", "--", "theirs.txt"]);
        assert_eq!(common::doctor_check(t, "merges")["status"], "warn");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("killed halfway"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(t.git(&["show", "main^1:theirs.txt"]), "theirs");
        let leaked = t.git_output(&t.repo, &["cat-file", "-e", "main^1:one.txt"]);
        assert!(
            !leaked.status.success(),
            "the session's file is in the person's commit"
        );
    });
}

/// Outside attacker (round 5): removing (or pruning) a session while a killed merge held the
/// person's changes aside left them in a ref no record names, and a later merge deleted it.
/// Now the removal writes them back first.
#[test]
fn removing_a_session_writes_back_what_its_killed_merge_kept_aside() {
    each_git(|t| {
        approved_two_files(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("README.md"), "the person's edit\n");
        killed_before_landing(t, "merge");
        assert_eq!(
            t.git(&["show", "refs/codex/kept/s:README.md"]),
            "the person's edit"
        );
        let (code, _, err) = run(t.codex(&["session", "remove", "s", "--force"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("wrote back 1 changed path(s)"), "{err}");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("README.md")).expect("readme"),
            "the person's edit\n"
        );
        assert!(t.git(&["for-each-ref", "refs/codex/kept"]).is_empty());
    });
}

/// Outside attacker (round 6): the person edits a file the killed landing added (staged by
/// git, so index, file and HEAD all differ): putting it back failed on every re-run.
#[test]
fn the_persons_edit_of_a_file_the_landing_added_is_kept() {
    each_git(|t| {
        approved_two_files(t);
        killed_before_landing(t, "merge");
        let tip = t.git(&["rev-parse", "codex/s"]);
        t.git(&["read-tree", "-m", "-u", "HEAD", &tip]);
        write_file(&t.repo.join("one.txt"), "the person's\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("one.txt")).expect("one"),
            "the person's\n"
        );
        assert_eq!(t.git(&["status", "--porcelain"]), " M one.txt");
    });
}

/// Outside attacker (round 6): with `eol=crlf`, a file of the person's with bare line ends
/// and the session's text was taken for the landing's (compared through the filters) and
/// replaced. A file is the landing's only when it holds the very bytes git writes.
#[test]
fn a_file_equal_to_the_landings_only_through_filters_is_the_persons() {
    each_git(|t| {
        write_file(&t.repo.join(".gitattributes"), "*.txt text eol=crlf\n");
        t.git(&["add", ".gitattributes"]);
        t.git(&["commit", "-q", "-m", "attributes"]);
        approved_two_files(t);
        killed_before_landing(t, "merge");
        std::fs::write(t.repo.join("one.txt"), "one\n").expect("write");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("killed halfway"), "{err}");
        assert_eq!(
            std::fs::read(t.repo.join("one.txt")).expect("one"),
            b"one\n"
        );
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
    });
}

/// Outside attacker (round 6): in a sparse checkout, a landed path kept out of the worktree
/// was taken for the person's (not on disk), and the re-run failed, then left it deleted.
#[test]
fn a_half_landing_in_a_sparse_checkout_is_landed_whole() {
    each_git(|t| {
        write_file(&t.repo.join("far/x.txt"), "far\n");
        write_file(&t.repo.join("near/n.txt"), "near\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "two dirs"]);
        let wt = t.add("s");
        write_file(&wt.join("far/x.txt"), "far, by the session\n");
        write_file(&wt.join("near/y.txt"), "new\n");
        approve_s(t);
        t.git(&["sparse-checkout", "set", "near"]);
        assert!(!t.repo.join("far/x.txt").exists());
        killed_before_landing(t, "merge");
        let tip = t.git(&["rev-parse", "codex/s"]);
        t.git(&["read-tree", "-m", "-u", "HEAD", &tip]);
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("2 file(s) of an earlier landing"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        assert_eq!(t.git(&["show", "main:far/x.txt"]), "far, by the session");
        assert_eq!(t.git(&["ls-files", "-t", "far/x.txt"]), "S far/x.txt");
        assert!(!t.repo.join("far/x.txt").exists());
    });
}

/// Outside attacker (round 6): a session that adds a submodule (a gitlink, whose directory
/// git makes empty): its path was taken for the person's directory, and following the hint
/// left the submodule's deletion staged for the person's next commit.
#[test]
fn a_half_landing_that_adds_a_submodule_is_landed_whole() {
    each_git(|t| {
        let wt = t.add("s");
        let head = t.git(&["rev-parse", "HEAD"]);
        let link = format!("160000,{head},sub");
        t.git_in(&wt, &["update-index", "--add", "--cacheinfo", &link]);
        write_file(&wt.join("one.txt"), "one\n");
        approve_s(t);
        assert_eq!(
            t.git(&["ls-tree", "codex/s", "sub"]),
            format!("160000 commit {head}\tsub")
        );
        killed_before_landing(t, "merge");
        let tip = t.git(&["rev-parse", "codex/s"]);
        t.git(&["read-tree", "-m", "-u", "HEAD", &tip]);
        assert!(t.repo.join("sub").is_dir());
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("2 file(s) of an earlier landing"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        assert_eq!(
            t.git(&["ls-tree", "main", "sub"]),
            format!("160000 commit {head}\tsub")
        );
    });
}

/// Crash sweep (squash killed 80 ms in, alone): git was killed in the first file it wrote,
/// leaving it cut short and nothing else: it is git's (written moments after the landing
/// began) and is put back. The same file cut later is the person's, and stays.
#[test]
fn a_first_file_cut_short_is_the_landings_only_moments_after_it_began() {
    each_git(|t| {
        for later in [false, true] {
            let t = &TestEnv::new(&t.git);
            approved_two_files(t);
            killed_before_landing(t, "squash");
            write_file(&t.repo.join("one.txt"), "on");
            if later {
                let then = std::time::SystemTime::now() + std::time::Duration::from_secs(30);
                std::fs::File::options()
                    .write(true)
                    .open(t.repo.join("one.txt"))
                    .and_then(|f| f.set_modified(then))
                    .expect("set mtime");
            }
            let args = ["session", "merge", "s", "--strategy", "squash"];
            let (code, _, err) = run(t.codex(&args));
            assert_eq!(code, 0, "{err}");
            assert_eq!(t.git(&["show", "main:one.txt"]), "one");
            let left = if later { " M one.txt" } else { "" };
            assert_eq!(
                t.git(&["status", "--porcelain"]),
                left,
                "later: {later}: {err}"
            );
        }
    });
}

/// Crash sweep (squash killed 120 ms in, with its group): git was killed while it wrote
/// SQUASH_MSG, which then named no commit, and the squash it had staged was refused as the
/// person's for good. The record says this squash began here, and the index is exactly it.
#[test]
fn a_squash_killed_while_it_wrote_its_message_is_landed_by_the_next_merge() {
    each_git(|t| {
        approved_two_files(t);
        merge_killed_at(t, "squash", "commit -q -m", false);
        write_file(
            &t.repo.join(".git/SQUASH_MSG"),
            "Squashed commit of the following:\n\nco",
        );
        let args = ["session", "merge", "s", "--strategy", "squash"];
        let (code, _, err) = run(t.codex(&args));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:one.txt"]), "one");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
        assert!(!t.repo.join(".git/SQUASH_MSG").exists());
    });
}

/// Outside attacker (round 7): a landing that makes a file a directory (`a` -> `a/b`), or a
/// directory a file (`d/x` -> `d`), killed halfway: the first was refused for good as the
/// person's directory, the second failed once on `git rm` taking `d` for a directory.
#[test]
fn a_half_landing_that_turns_a_file_into_a_directory_or_back_is_landed_whole() {
    each_git(|t| {
        for file_to_dir in [true, false] {
            let t = &TestEnv::new(&t.git);
            if file_to_dir {
                write_file(&t.repo.join("a"), "a\n");
            } else {
                write_file(&t.repo.join("d/x"), "x\n");
            }
            t.git(&["add", "."]);
            t.git(&["commit", "-q", "-m", "base"]);
            let wt = t.add("s");
            if file_to_dir {
                std::fs::remove_file(wt.join("a")).expect("rm");
                write_file(&wt.join("a/b"), "inner\n");
            } else {
                std::fs::remove_dir_all(wt.join("d")).expect("rm");
                write_file(&wt.join("d"), "file\n");
            }
            approve_s(t);
            killed_before_landing(t, "merge");
            // What git wrote before it was killed: the new shape, the index not yet.
            if file_to_dir {
                std::fs::remove_file(t.repo.join("a")).expect("rm");
                write_file(&t.repo.join("a/b"), "inner\n");
            } else {
                std::fs::remove_dir_all(t.repo.join("d")).expect("rm");
                write_file(&t.repo.join("d"), "file\n");
            }
            let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
            assert_eq!(code, 0, "file to dir: {file_to_dir}: {err}");
            assert!(err.contains("killed halfway"), "{err}");
            assert_eq!(t.git(&["status", "--porcelain"]), "");
            if file_to_dir {
                assert_eq!(t.git(&["show", "main:a/b"]), "inner");
            } else {
                assert_eq!(t.git(&["show", "main:d"]), "file");
            }
        }
    });
}

/// Outside attacker (round 7): a landing overwrote an untracked file of the person's that
/// git ignores (git takes those for expendable), with or without a kill. It is refused now,
/// naming the file, which stays as it was.
#[test]
fn a_landing_never_overwrites_an_ignored_file_of_the_persons() {
    each_git(|t| {
        write_file(&t.repo.join(".gitignore"), "*.local\n");
        t.git(&["add", ".gitignore"]);
        t.git(&["commit", "-q", "-m", "ignore"]);
        let wt = t.add("s");
        write_file(&wt.join("cfg.local"), "the session's\n");
        t.git_in(&wt, &["add", "-f", "cfg.local"]);
        approve_s(t);
        write_file(&t.repo.join("cfg.local"), "the person's secret\n");
        let main = t.git(&["rev-parse", "main"]);
        for strategy in ["merge", "squash", "rebase", "ff"] {
            let args = ["session", "merge", "s", "--strategy", strategy];
            let (code, _, err) = run(t.codex(&args));
            assert_eq!(code, 3, "{strategy}: {err}");
            assert!(err.contains("cfg.local"), "{err}");
            assert_eq!(
                std::fs::read_to_string(t.repo.join("cfg.local")).expect("cfg"),
                "the person's secret\n"
            );
            assert_eq!(t.git(&["rev-parse", "main"]), main);
        }
        std::fs::rename(t.repo.join("cfg.local"), t.root().join("cfg.local")).expect("mv");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:cfg.local"]), "the session's");
    });
}

/// Outside attacker (round 7): with `core.autocrlf=true` every file a killed landing wrote
/// (with CRLF line ends, as git writes them there) was taken for the person's: git's
/// `cat-file --batch --filters` tells the unfiltered size of the filtered bytes, so the
/// bytes git writes were read wrong. They are read file by file through the filters now.
#[test]
fn a_half_landing_under_autocrlf_is_recognised_as_the_landings() {
    each_git(|t| {
        t.git(&["config", "core.autocrlf", "true"]);
        approved_two_files(t);
        killed_before_landing(t, "merge");
        std::fs::write(t.repo.join("one.txt"), "one\r\n").expect("write");
        std::fs::write(t.repo.join("README.md"), "changed by the session\r\n").expect("write");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("held 2 file(s) of an earlier landing"),
            "{err}"
        );
        assert!(!err.contains("kept"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}

/// Outside attacker (round 8): the person replaced a half-landed file with a directory of
/// theirs; doctor's one command then failed. The directory is not kept aside (a directory
/// may hold anything, a repository among it): the merge refuses, touching nothing, and doctor
/// names the directory to move first. Then the merge lands and keeps the rest.
#[test]
fn a_directory_of_the_persons_where_the_landing_has_a_file_is_named_by_doctor() {
    each_git(|t| {
        approved_two_files(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("README.md"), "changed by the session\n");
        write_file(&t.repo.join("one.txt/p"), "the person's\n");
        let hint = common::doctor_check(t, "merges")["hint"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            hint.starts_with("move one.txt (yours, where the landing adds a path)"),
            "{hint}"
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(t.repo.join("one.txt/p").is_file());
        std::fs::rename(t.repo.join("one.txt"), t.root().join("moved")).expect("mv");
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--into", "main"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}

/// Outside attacker (round 9): git killed while it wrote a big file, more than a second after
/// its previous one: the file cut short was taken for the person's and written back, cut. A
/// file made while the landing wrote and written on since at a pace git keeps is git's.
#[test]
fn a_big_file_git_was_still_writing_when_killed_is_the_landings() {
    each_git(|t| {
        let wt = t.add("s");
        let big: String = (0..4_000_000).map(|n| format!("{n}\n")).collect();
        write_file(&wt.join("big.txt"), &big);
        write_file(&wt.join("README.md"), "changed by the session\n");
        approve_s(t);
        killed_before_landing(t, "merge");
        write_file(&t.repo.join("README.md"), "changed by the session\n");
        write_file(&t.repo.join("big.txt"), &big[..big.len() - 1000]);
        // git wrote README.md, then big.txt (30 MB) for 3 s more before it was killed.
        touched_later(&t.repo.join("big.txt"), 3);
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("held 2 file(s)"), "{err}");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}
