//! The branch people actually protect is protected (issue 15, point 2): on a repository whose
//! default branch is `master` or `trunk`, `init` protects it, the gate holds there, `session
//! merge` lands on it, and a protected pattern that matches no branch is a warning.

mod common;

use common::{TestEnv, each_git, run};

/// The test repository with its branch renamed to `branch` (before `git codex init`).
fn on_branch(t: &TestEnv, branch: &str) {
    t.git(&["branch", "-m", "main", branch]);
}

#[test]
fn init_protects_the_repositorys_own_default_branch() {
    each_git(|t| {
        on_branch(t, "master");
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("protecting 'master'"), "{err}");
        let (_, out, _) = run(t.codex(&["config", "get", "review.protected"]));
        assert!(out.contains("master"), "{out}");
        // The gate holds on master: an unapproved session does not land.
        t.add("s");
        t.commit_in(&t.worktree("s"), "s.txt", "session\n");
        let refused = t.git_output(&t.repo, &["merge", "--ff-only", "codex/s"]);
        assert!(
            !refused.status.success(),
            "an unapproved session landed on master"
        );
        // git checks the files out before the ref update the gate refuses: put them back.
        t.git(&["reset", "-q", "--hard"]);
        // Approved, it lands on master by `session merge` (no --into).
        run(t.codex(&["session", "review", "s"]));
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "master:s.txt"]), "session");
        // Init again changes nothing.
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("protecting"), "{err}");
    });
}

#[test]
fn the_first_command_protects_the_default_branch_too() {
    // Whichever git-codex command runs first sets the repository up, and protects its branch.
    for first in [vec!["session", "add", "s"], vec!["hooks", "install"]] {
        each_git(|t| {
            on_branch(t, "master");
            // The person happens to be on another branch: master is still the default.
            t.git(&["switch", "-q", "-c", "feature"]);
            let (code, _, err) = run(t.codex(&first));
            assert_eq!(code, 0, "{first:?}: {err}");
            assert!(err.contains("protecting 'master'"), "{first:?}: {err}");
            let (_, out, _) = run(t.codex(&["config", "get", "review.protected"]));
            assert!(out.contains("master") && !out.contains("feature"), "{out}");
            let wt = if first[0] == "session" {
                t.worktree("s")
            } else {
                t.add("s")
            };
            t.commit_in(&wt, "s.txt", "session\n");
            let refused = t.git_output(&t.repo, &["branch", "-f", "master", "codex/s"]);
            assert!(
                !refused.status.success(),
                "an unapproved session landed on master"
            );
            let (code, _, _) = run(t.codex(&["verify", "master"]));
            assert_eq!(code, 0, "master holds no session commit");
        });
    }
}

#[test]
fn origin_head_names_the_default_branch() {
    each_git(|t| {
        on_branch(t, "trunk");
        t.git(&["branch", "develop"]);
        t.git(&["switch", "-q", "develop"]);
        // The remote says trunk; the main worktree happens to be on develop.
        t.git(&["update-ref", "refs/remotes/origin/trunk", "trunk"]);
        t.git(&[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/remotes/origin/trunk",
        ]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("protecting 'trunk'"), "{err}");
    });
}

#[test]
fn a_protected_pattern_that_matches_no_branch_is_a_warning() {
    each_git(|t| {
        on_branch(t, "master");
        t.codex(&["init"]).assert().success();
        t.codex(&["config", "set", "review.protected", "[\"main\"]"])
            .assert()
            .success();
        let check = common::doctor_check(t, "protected");
        assert_eq!(check["status"], "warn", "{check}");
        assert!(
            check["hint"].as_str().unwrap_or("").contains("master"),
            "{check}"
        );
        // A repository on main keeps the built-in default: nothing written, nothing to warn.
    });
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !err.contains("protecting") && !err.contains("no branch matches"),
            "{err}"
        );
    });
}
