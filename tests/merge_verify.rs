//! `session merge` and `verify`: nothing unapproved lands; approved work lands every way.

mod common;

use common::{TestEnv, assert_disk_unchanged, each_git, json, run, write_file};

/// A session with one reviewed commit adding `file`.
fn reviewed(t: &TestEnv, id: &str, file: &str, text: &str) -> String {
    let (code, out, err) = run(t.codex(&["session", "add", id, "--base", "main"]));
    assert_eq!(code, 0, "{err}");
    let wt = std::path::PathBuf::from(out.trim());
    write_file(&wt.join(file), text);
    t.codex(&["session", "review", id]).assert().success();
    t.git(&["rev-parse", &format!("codex/{id}")])
}

fn approve(t: &TestEnv, id: &str) {
    t.codex(&["session", "review", id, "--approve"])
        .assert()
        .success();
}

#[test]
fn approved_sessions_land_with_every_strategy_checked_out_or_not() {
    for checked_out in [true, false] {
        each_git(|t| {
            t.set_config("[session]\nmax_parallel = 8\n");
            if !checked_out {
                t.git(&["switch", "-q", "-c", "elsewhere"]);
            }
            for strategy in ["merge", "squash", "rebase", "ff"] {
                let id = format!("s-{strategy}");
                let file = format!("{strategy}.txt");
                reviewed(t, &id, &file, strategy);
                approve(t, &id);
                // main moves on between sessions, except before ff which needs a straight line.
                let (code, _, err) =
                    run(t.codex(&["session", "merge", &id, "--strategy", strategy]));
                assert_eq!(code, 0, "{strategy} (checked out: {checked_out}): {err}");
                assert_eq!(
                    t.git(&["show", &format!("main:{file}")]),
                    strategy,
                    "{strategy}"
                );
                if checked_out {
                    assert_eq!(
                        std::fs::read_to_string(t.repo.join(&file)).unwrap(),
                        strategy,
                        "the checkout follows"
                    );
                }
            }
            let log = t.git(&["log", "--format=%s", "main"]);
            assert!(log.contains("Merge session 's-merge'"), "{log}");
            assert!(log.contains("Merge session 's-squash'"), "{log}");
            let parents = t.git(&["log", "-1", "--format=%P", "--grep=s-merge", "main"]);
            assert_eq!(parents.split(' ').count(), 2, "a true merge commit");
            assert_eq!(
                t.git(&["status", "--porcelain", "--untracked-files=no"]),
                ""
            );
        });
    }
}

#[test]
fn merge_refuses_without_approval_or_with_a_stale_one_and_touches_nothing() {
    each_git(|t| {
        reviewed(t, "s", "a.txt", "a");
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("has no approval"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "an unapproved merge");

        approve(t, "s");
        t.commit_in(&t.worktree("s"), "late.txt", "added after approval");
        let main_before = t.git(&["rev-parse", "main"]);
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "ff"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("approval is for"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "a stale merge");
        assert_eq!(t.git(&["rev-parse", "main"]), main_before);

        let (code, _, err) = run(t.codex(&["session", "review", "s", "--reject"]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("rejected"), "{err}");
    });
}

#[test]
fn a_conflict_aborts_cleanly_and_names_the_files() {
    for checked_out in [true, false] {
        each_git(|t| {
            reviewed(t, "c", "README.md", "session version\n");
            approve(t, "c");
            t.write("README.md", "main version\n");
            t.git(&["commit", "-q", "-am", "main edits README"]);
            if !checked_out {
                t.git(&["switch", "-q", "-c", "elsewhere"]);
            }
            let main_before = t.git(&["rev-parse", "main"]);
            for strategy in ["merge", "squash", "rebase"] {
                let (code, _, err) =
                    run(t.codex(&["session", "merge", "c", "--strategy", strategy]));
                assert_eq!(code, 1, "{strategy}: {err}");
                assert!(err.contains("conflicts in README.md"), "{strategy}: {err}");
                assert_eq!(t.git(&["rev-parse", "main"]), main_before, "{strategy}");
                assert_eq!(
                    t.git(&["status", "--porcelain"]),
                    "",
                    "{strategy}: main worktree as it was"
                );
                assert!(!t.repo.join(".git/MERGE_HEAD").exists());
                let wt_list = t.git(&["worktree", "list"]);
                assert_eq!(
                    wt_list.lines().count(),
                    2,
                    "no leftover temporary worktree: {wt_list}"
                );
            }
            let (code, _, err) = run(t.codex(&["session", "merge", "c", "--strategy", "ff"]));
            assert_eq!(code, 3, "{err}");
            assert!(err.contains("fast-forward"), "{err}");
        });
    }
}

#[test]
fn merge_with_remove_lands_then_removes_the_session() {
    each_git(|t| {
        reviewed(t, "r", "r.txt", "r");
        approve(t, "r");
        let (code, _, err) = run(t.codex(&["session", "merge", "r", "--remove"]));
        assert_eq!(code, 0, "{err}");
        assert!(!t.worktree("r").exists());
        assert_eq!(
            t.git(&["branch", "--list", "codex/r"]),
            "",
            "merged, so deleted"
        );
        assert_eq!(t.git(&["show", "main:r.txt"]), "r");
    });
}

#[test]
fn a_dirty_target_checkout_is_refused() {
    each_git(|t| {
        reviewed(t, "d", "d.txt", "d");
        approve(t, "d");
        t.write("README.md", "uncommitted edit\n");
        let (code, _, err) = run(t.codex(&["session", "merge", "d"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("uncommitted changes"), "{err}");
        assert_eq!(
            std::fs::read_to_string(t.repo.join("README.md")).unwrap(),
            "uncommitted edit\n"
        );
    });
}

fn verify(t: &TestEnv, args: &[&str]) -> (i32, String) {
    let mut full = vec!["verify"];
    full.extend_from_slice(args);
    let (code, _, err) = run(t.codex(&full));
    (code, err)
}

#[test]
fn verify_exit_codes_for_approved_unapproved_stale_and_intermediate_ranges() {
    each_git(|t| {
        let main = t.git(&["rev-parse", "main"]);
        let wt = t.add("v");
        t.commit_in(&wt, "one.txt", "1");
        t.commit_in(&wt, "two.txt", "2");
        let range = format!("{main}..codex/v");
        let (code, err) = verify(t, &[&range]);
        assert_eq!(code, 3, "unapproved: {err}");
        assert!(
            err.contains("session 'v'") && err.contains("no approval"),
            "{err}"
        );
        let (code, err) = verify(t, &[&format!("{main}..codex/v~1")]);
        assert_eq!(code, 3, "an intermediate commit: {err}");

        approve(t, "v");
        assert_eq!(verify(t, &[&range]).0, 0);
        // An older commit of the approved one alone was never shown as it is.
        let (code, err) = verify(t, &[&format!("{main}..codex/v~1")]);
        assert_eq!(code, 3, "only the approved commit, with its history: {err}");
        assert!(err.contains("approval is for another commit"), "{err}");

        t.commit_in(&wt, "three.txt", "3");
        let (code, err) = verify(t, &[&range]);
        assert_eq!(code, 3, "stale: {err}");
        assert!(err.contains("approval is for another commit"), "{err}");
        assert_eq!(
            verify(t, &[&format!("{main}..codex/v~1")]).0,
            0,
            "the approved part may still land"
        );

        // Not protected: never refused.
        assert_eq!(verify(t, &[&range, "--ref", "feature"]).0, 0);
        assert_eq!(verify(t, &[&range, "--ref", "main"]).0, 3);
        let (code, out, _) = run(t.codex(&["verify", &range, "--json"]));
        assert_eq!(code, 3);
        let v = json(&out);
        assert_eq!(v["ok"], false);
        assert_eq!(v["checks"][0]["violations"][0]["session"], "v");
    });
}

#[test]
fn verify_catches_a_session_whose_record_is_gone() {
    each_git(|t| {
        let main = t.git(&["rev-parse", "main"]);
        let wt = t.add("gone");
        t.commit_in(&wt, "g.txt", "g");
        t.codex(&["session", "remove", "gone"]).assert().success();
        assert!(!t.state_dir().join("sessions/gone.json").exists());
        let (code, err) = verify(t, &[&format!("{main}..codex/gone")]);
        assert_eq!(code, 3, "{err}");
        // The hooks refuse a plain merge; with hooks bypassed it lands, and verify of main's
        // history says so.
        let out = t.git_output(&t.repo, &["merge", "-q", "--ff-only", "codex/gone"]);
        assert!(
            !out.status.success(),
            "the reference-transaction hook refuses it"
        );
        assert!(
            t.git_without_hooks(&["merge", "-q", "--ff-only", "codex/gone"])
                .status
                .success()
        );
        let (code, err) = verify(t, &[]);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("refs/heads/main"), "{err}");
    });
}

#[test]
fn protected_globs_guard_every_matching_branch() {
    each_git(|t| {
        t.codex(&["config", "set", "review.protected", "main, release/*"])
            .assert()
            .success();
        let main = t.git(&["rev-parse", "main"]);
        let wt = t.add("g");
        t.commit_in(&wt, "g.txt", "g");
        let range = format!("{main}..codex/g");
        assert_eq!(verify(t, &[&range, "--ref", "release/2.0"]).0, 3);
        assert_eq!(verify(t, &[&range, "--ref", "refs/heads/release/2.0"]).0, 3);
        assert_eq!(verify(t, &[&range, "--ref", "releases"]).0, 0);
        assert_eq!(verify(t, &[&range, "--ref", "main"]).0, 3);
    });
}
