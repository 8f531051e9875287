//! `session remove`: snapshot first, never lose work, delete the branch only when merged.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{each_git, run, write_file};

#[test]
fn removing_a_dirty_session_keeps_every_byte_reachable() {
    each_git(|t| {
        t.write("tool.sh", "#!/bin/sh\necho v1\n");
        t.git(&["add", "tool.sh"]);
        t.git(&["commit", "-q", "-m", "tool"]);
        let wt = t.add("dirty");
        // A committed file on the branch, a modified tracked file, a staged new file,
        // an untracked file, a deleted file and an executable bit.
        write_file(&wt.join("committed.txt"), "on the branch\n");
        t.git_in(&wt, &["add", "committed.txt"]);
        t.git_in(&wt, &["commit", "-q", "-m", "agent work"]);
        write_file(&wt.join("README.md"), "changed by the agent\n");
        write_file(&wt.join("staged.txt"), "staged\n");
        t.git_in(&wt, &["add", "staged.txt"]);
        write_file(
            &wt.join("notes/untracked.txt"),
            "untracked \u{1F600} bytes\n",
        );
        write_file(&wt.join("run.sh"), "#!/bin/sh\necho run\n");
        std::fs::set_permissions(wt.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::remove_file(wt.join("tool.sh")).unwrap();
        let branch_before = t.git(&["rev-parse", "codex/dirty"]);

        let (code, _, err) = run(t.codex(&["session", "remove", "dirty"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("refs/codex/snapshots/dirty"), "{err}");
        assert!(err.contains("Kept branch codex/dirty"), "{err}");
        assert!(!wt.exists(), "worktree removed");
        assert!(
            !t.state_dir().join("sessions/dirty.json").exists(),
            "record removed"
        );

        // The branch is where it was, with its commit.
        assert_eq!(t.git(&["rev-parse", "codex/dirty"]), branch_before);
        // Every byte of the uncommitted work is in the snapshot.
        let snap = "refs/codex/snapshots/dirty";
        assert_eq!(
            t.git(&["show", &format!("{snap}:README.md")]),
            "changed by the agent"
        );
        assert_eq!(t.git(&["show", &format!("{snap}:staged.txt")]), "staged");
        assert_eq!(
            t.git(&["show", &format!("{snap}:notes/untracked.txt")]),
            "untracked \u{1F600} bytes"
        );
        assert_eq!(
            t.git(&["show", &format!("{snap}:committed.txt")]),
            "on the branch"
        );
        let mode = t.git(&["ls-tree", snap, "run.sh"]);
        assert!(mode.starts_with("100755"), "{mode}");
        assert_eq!(
            t.git(&["ls-tree", snap, "tool.sh"]),
            "",
            "the deletion is recorded"
        );
        assert!(
            !t.git(&["ls-tree", "-r", "--name-only", snap])
                .contains(".codex-session.json")
        );
        // The snapshot sits on top of the branch tip, which the branch never moved for.
        assert_eq!(t.git(&["rev-parse", &format!("{snap}^1")]), branch_before);
    });
}

#[test]
fn a_second_snapshot_keeps_the_first_reachable() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("first.txt"), "1\n");
        t.codex(&["session", "remove", "s"]).assert().success();
        let first = t.git(&["rev-parse", "refs/codex/snapshots/s"]);
        let wt = t.add("s");
        write_file(&wt.join("second.txt"), "2\n");
        t.codex(&["session", "remove", "s"]).assert().success();
        assert_eq!(t.git(&["rev-parse", "refs/codex/snapshots/s^2"]), first);
        assert_eq!(t.git(&["show", "refs/codex/snapshots/s^2:first.txt"]), "1");
    });
}

#[test]
fn a_locked_worktree_needs_force_and_is_snapshotted_first() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("untracked.txt"), "u\n");
        write_file(&wt.join("README.md"), "modified\n");
        let index = t.git_in(
            &wt,
            &["rev-parse", "--path-format=absolute", "--git-path", "index"],
        );
        let before = std::fs::read(&index).unwrap();
        // A locked worktree: removal is refused and nothing is touched, index included.
        t.git(&["worktree", "lock", wt.to_str().unwrap()]);
        let (code, _, err) = run(t.codex(&["session", "remove", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("locked"), "{err}");
        assert_eq!(std::fs::read(&index).unwrap(), before);
        assert!(wt.join("untracked.txt").exists());
        // --force removes a locked worktree, snapshot first.
        let (code, _, err) = run(t.codex(&["session", "remove", "s", "--force"]));
        assert_eq!(code, 0, "{err}");
        assert!(!wt.exists());
        assert_eq!(
            t.git(&["show", "refs/codex/snapshots/s:untracked.txt"]),
            "u"
        );
        assert!(!t.git(&["worktree", "list", "--porcelain"]).contains("wt-s"));
    });
}

#[test]
fn a_merged_branch_is_deleted_and_keep_branch_keeps_it() {
    each_git(|t| {
        let wt = t.add("merged");
        write_file(&wt.join("f.txt"), "f\n");
        t.git_in(&wt, &["add", "f.txt"]);
        t.git_in(&wt, &["commit", "-q", "-m", "f"]);
        // Approved, so the gate lets a plain merge land it.
        t.codex(&["session", "review", "merged", "--approve"])
            .assert()
            .success();
        t.git(&["merge", "-q", "--ff-only", "codex/merged"]);
        let (code, _, err) = run(t.codex(&["session", "remove", "merged"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Deleted branch codex/merged"), "{err}");
        assert_eq!(t.git(&["branch", "--list", "codex/merged"]), "");
        assert!(
            t.git_output(
                &t.repo,
                &["rev-parse", "--verify", "-q", "refs/codex/snapshots/merged"]
            )
            .stdout
            .is_empty(),
            "a clean worktree needs no snapshot"
        );

        t.add("kept");
        let (code, _, err) = run(t.codex(&["session", "remove", "kept", "--keep-branch"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["branch", "--list", "codex/kept"]), "  codex/kept");
    });
}

#[test]
fn a_session_whose_worktree_was_deleted_by_hand_is_removed_cleanly() {
    each_git(|t| {
        let wt = t.add("gone");
        std::fs::remove_dir_all(&wt).unwrap();
        let (code, _, err) = run(t.codex(&["session", "remove", "gone"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !t.git(&["worktree", "list", "--porcelain"])
                .contains("wt-gone"),
            "admin entry pruned"
        );
        assert!(!t.state_dir().join("sessions/gone.json").exists());
        // The id is free again.
        t.add("gone");
    });
}

#[test]
fn a_session_with_a_corrupt_record_can_still_be_removed() {
    each_git(|t| {
        let wt = t.add("bad");
        write_file(&wt.join("work.txt"), "keep me\n");
        std::fs::write(t.state_dir().join("sessions/bad.json"), "garbage").unwrap();
        let (code, _, err) = run(t.codex(&["session", "remove", "bad"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("warning:"), "{err}");
        assert!(!wt.exists());
        assert_eq!(
            t.git(&["show", "refs/codex/snapshots/bad:work.txt"]),
            "keep me"
        );
    });
}

#[test]
fn snapshots_work_without_a_configured_identity() {
    each_git(|t| {
        let wt = t.add("anon");
        write_file(&wt.join("work.txt"), "w\n");
        std::fs::write(t.home.join(".gitconfig"), "").unwrap();
        let mut cmd = t.codex(&["session", "remove", "anon"]);
        cmd.env_remove("GIT_AUTHOR_NAME").env("EMAIL", "");
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "refs/codex/snapshots/anon:work.txt"]), "w");
        assert_eq!(
            t.git(&["log", "-1", "--format=%an", "refs/codex/snapshots/anon"]),
            "git-codex"
        );
    });
}

/// Outside attacker: a session with a few thousand untracked files (a build's output) hung
/// `remove` for good, and every session command after it: git-codex wrote every path to
/// `git hash-object --stdin-paths` before reading the ids git wrote back, and both pipes
/// filled. Now it removes them, and restore brings back every one.
#[test]
fn a_session_with_thousands_of_untracked_files_is_removed_and_restored() {
    each_git(|t| {
        let wt = t.add("big");
        let dir = wt.join("build/generated/fixtures/snapshots/output");
        for i in 0..4000 {
            common::write_file(&dir.join(format!("generated-fixture-{i:05}.snap")), "x\n");
        }
        let mut remove = t
            .codex_process(&["session", "remove", "big"])
            .spawn()
            .expect("start git-codex");
        let mut status = None;
        let hung = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            common::wait_until("the remove to end", || {
                status = remove.try_wait().expect("wait");
                status.is_some()
            })
        }));
        if hung.is_err() {
            let _ = remove.kill();
            let _ = remove.wait();
            panic!("remove hung");
        }
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        assert!(!wt.exists());
        t.codex(&["session", "restore", "big"]).assert().success();
        assert_eq!(std::fs::read_dir(&dir).expect("restored").count(), 4000);
    });
}
