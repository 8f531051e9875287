//! The gate matrix: every way git can move a protected branch is refused while the session
//! is unapproved or its approval stale, and allowed once approved, for the approved commit
//! (with its history) and nothing older of it alone. Real hooks, real git.

mod common;

use common::{TestEnv, each_git};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Approval {
    None,
    Stale,
    Approved,
}

/// A repository with session `s` (commits a.txt, b.txt) in the given approval state, and a
/// bare remote `remote.git` holding main.
fn setup(t: &TestEnv, approval: Approval) {
    let wt = t.add("s");
    t.commit_in(&wt, "a.txt", "a.txt\n");
    t.commit_in(&wt, "b.txt", "b.txt\n");
    if approval != Approval::None {
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
    }
    if approval == Approval::Stale {
        t.commit_in(&wt, "c.txt", "c.txt\n");
    }
    t.bare_clone("remote.git");
    t.git(&[
        "remote",
        "add",
        "remote",
        t.root().join("remote.git").to_str().unwrap(),
    ]);
}

fn git_ok(t: &TestEnv, args: &[&str]) -> bool {
    t.git_output(&t.repo, args).status.success()
}

/// What a vector needs first: a branch on the remote, a commit of main's own, another
/// checkout.
fn prepare(t: &TestEnv, name: &str) {
    match name {
        "pull" => t.git(&["push", "-q", "remote", "codex/s"]),
        "rebase" => {
            t.commit_in(&t.repo, "main-only.txt", "main-only.txt\n");
            String::new()
        }
        "branch-f" => t.git(&["switch", "-q", "-c", "elsewhere"]),
        _ => String::new(),
    };
}

/// Runs one vector; returns whether git said yes.
fn vector(t: &TestEnv, name: &str) -> bool {
    match name {
        "merge-ff" => git_ok(t, &["merge", "-q", "codex/s"]),
        "merge-ff-only" => git_ok(t, &["merge", "-q", "--ff-only", "codex/s"]),
        "merge-no-ff" => git_ok(t, &["merge", "-q", "--no-ff", "-m", "m", "codex/s"]),
        "merge-no-verify" => git_ok(
            t,
            &[
                "merge",
                "-q",
                "--no-ff",
                "--no-verify",
                "-m",
                "m",
                "codex/s",
            ],
        ),
        "squash" => {
            git_ok(t, &["merge", "-q", "--squash", "codex/s"])
                && git_ok(t, &["commit", "-q", "-m", "squashed"])
        }
        "pull" => git_ok(t, &["pull", "-q", "--no-rebase", "remote", "codex/s"]),
        "rebase" => git_ok(t, &["rebase", "-q", "codex/s"]),
        "reset" => git_ok(t, &["reset", "-q", "--hard", "codex/s"]),
        "update-ref" => git_ok(t, &["update-ref", "refs/heads/main", "codex/s"]),
        "branch-f" => git_ok(t, &["branch", "-f", "main", "codex/s"]),
        "push" => git_ok(t, &["push", "-q", "remote", "codex/s:main"]),
        "cherry-pick" => git_ok(t, &["cherry-pick", "codex/s"]),
        "intermediate" => git_ok(t, &["merge", "-q", "codex/s~1"]),
        other => panic!("no vector {other}"),
    }
}

/// Whether the session's work reached main (the remote's main for a push).
fn landed(t: &TestEnv, name: &str) -> bool {
    let (dir, rev) = match name {
        "push" => (t.root().join("remote.git"), "main"),
        _ => (t.repo.clone(), "main"),
    };
    let file = match name {
        "cherry-pick" => "b.txt",
        _ => "a.txt",
    };
    let out = t.git_output(&dir, &["cat-file", "-e", &format!("{rev}:{file}")]);
    out.status.success()
}

const VECTORS: &[&str] = &[
    "merge-ff",
    "merge-ff-only",
    "merge-no-ff",
    "merge-no-verify",
    "squash",
    "pull",
    "rebase",
    "reset",
    "update-ref",
    "branch-f",
    "push",
    "cherry-pick",
    "intermediate",
];

fn run_matrix(approval: Approval) {
    for name in VECTORS {
        // The approved commit lands with its history; an older commit of it alone does not
        // (it was never shown as it is): `intermediate` lands the approved commit when the
        // approval is stale (approved, then one more commit), an older one when approved.
        let expect_allowed = (approval == Approval::Approved && *name != "intermediate")
            || (approval == Approval::Stale && *name == "intermediate");
        each_git(|t| {
            setup(t, approval);
            prepare(t, name);
            let main_before = t.git(&["rev-parse", "main"]);
            let ok = vector(t, name);
            if expect_allowed {
                assert!(ok, "{name} must be allowed when {approval:?}");
                assert!(landed(t, name), "{name}: the work landed");
            } else {
                assert!(!ok, "{name} must be refused when {approval:?}");
                assert!(!landed(t, name), "{name}: nothing landed");
                if *name != "push" {
                    assert_eq!(
                        t.git(&["rev-parse", "main"]),
                        main_before,
                        "{name}: main did not move"
                    );
                }
            }
        });
    }
}

#[test]
fn every_vector_is_refused_without_approval() {
    run_matrix(Approval::None);
}

#[test]
fn every_vector_is_refused_with_a_stale_approval() {
    run_matrix(Approval::Stale);
}

#[test]
fn every_vector_is_allowed_once_approved() {
    run_matrix(Approval::Approved);
}

#[test]
fn ordinary_work_and_unprotected_branches_are_never_refused() {
    each_git(|t| {
        setup(t, Approval::None);
        t.commit_in(&t.repo, "human.txt", "human.txt\n");
        t.git(&["commit", "-q", "--amend", "-m", "human, amended"]);
        t.git(&["switch", "-q", "-c", "feature"]);
        t.git(&["merge", "-q", "codex/s"]);
        t.commit_in(&t.repo, "feature-only.txt", "feature-only.txt\n");
        t.git(&["reset", "-q", "--hard", "HEAD"]);
        t.git(&["switch", "-q", "main"]);
        t.git(&["cherry-pick", "feature"]);
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "main"]),
            "add feature-only.txt"
        );
        t.git(&["branch", "-q", "scratch", "codex/s"]);
        t.git(&["tag", "v1", "codex/s"]);
        t.git(&["push", "-q", "remote", "codex/s", "feature"]);
        t.git(&["push", "-q", "remote", "main"]);
    });
}

#[test]
fn copies_are_traced_to_the_right_session_among_many() {
    each_git(|t| {
        for id in ["one", "two", "three"] {
            let wt = t.add(id);
            t.commit_in(&wt, &format!("{id}.txt"), &format!("{id}\n"));
        }
        t.codex(&["session", "review", "one", "--approve"])
            .assert()
            .success();
        // A copy of session two's commit is refused, and named as two's.
        let out = t.git_output(&t.repo, &["cherry-pick", "codex/two"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("session 'two'") && !err.contains("session 'three'"),
            "{err}"
        );
        t.git(&["cherry-pick", "--abort"]);
        // A squash of session three lands its whole range as one patch: refused too.
        t.git(&["merge", "--squash", "codex/three"]);
        let out = t.git_without_hooks(&["commit", "-q", "-m", "squash"]);
        assert!(out.status.success());
        let squash = t.git(&["rev-parse", "HEAD"]);
        assert!(
            t.git_without_hooks(&["reset", "-q", "--hard", "HEAD~1"])
                .status
                .success()
        );
        let out = t.git_output(&t.repo, &["update-ref", "refs/heads/main", &squash]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("session 'three'"));
        // Session one is approved: its copy lands.
        t.git(&["cherry-pick", "codex/one"]);
    });
}
