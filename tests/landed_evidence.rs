//! A session commit that landed on a protected branch past the gate is still the session's
//! (README, "Which commits are a session's"): removing the session, its expiry and prune, or
//! a new session under its id never forget the evidence the gate needs (the ledger and its
//! base). `verify` keeps failing and `pre-push` keeps refusing until an approval covers the
//! commit. A session that landed through the gate is forgotten as before, and its id is free.

mod common;

use common::sandbox::{can_confine, script};
use common::{TestEnv, each_git, run};

/// Session `s` (with `ttl`) with one unapproved commit; a bare `origin` that has main.
fn session(t: &TestEnv, ttl: &str) -> String {
    let remote = t.bare_clone("remote.git");
    t.git(&["remote", "add", "origin", remote.to_str().expect("utf-8")]);
    let out = t
        .codex(&["session", "add", "s", "--ttl", ttl])
        .assert()
        .success();
    let wt = std::path::PathBuf::from(common::stdout(&out.get_output().stdout).trim());
    t.commit_in(&wt, "evil.txt", "never reviewed\n");
    t.git(&["rev-parse", "codex/s"])
}

/// Each way a person's own bypass puts the session's commit on main without the gate.
const BYPASSES: [&str; 4] = ["branch-copy", "env-override", "no-hooks", "cherry-pick"];

fn land_past_gate(t: &TestEnv, how: &str) {
    let out = match how {
        // git runs no hook for a branch copy onto main (README: verify catches it).
        "branch-copy" => {
            t.git(&["checkout", "-q", "-b", "other"]);
            t.git_output(&t.repo, &["branch", "-C", "codex/s", "main"])
        }
        "env-override" => {
            let mut cmd = std::process::Command::new(&t.git);
            cmd.env_clear().envs(t.vars()).current_dir(&t.repo);
            cmd.env("GIT_CODEX_REVIEW_REQUIRE_APPROVAL", "false");
            cmd.args(["merge", "-q", "--ff-only", "codex/s"]);
            cmd.output().expect("git merge")
        }
        "no-hooks" => t.git_without_hooks(&["merge", "-q", "--ff-only", "codex/s"]),
        "cherry-pick" => {
            // Onto a main that moved on: a copy, not the session's commit itself.
            t.commit_in(&t.repo, "person.txt", "the person's own work\n");
            t.git_without_hooks(&["cherry-pick", "codex/s"])
        }
        other => panic!("unknown bypass {other}"),
    };
    assert!(out.status.success(), "{how}: {out:?}");
}

/// The evidence is there: the ledger, `verify` failing on the session's commit, `git push`
/// refused, and the id not taken by a new session.
fn still_gated(t: &TestEnv, what: &str) {
    let ledger = t.git_output(
        &t.repo,
        &["rev-parse", "-q", "--verify", "refs/codex/ledger/s"],
    );
    assert!(ledger.status.success(), "{what}: the ledger is kept");
    let (code, _, err) = run(t.codex(&["verify"]));
    assert_eq!(code, 3, "{what}: verify fails: {err}");
    assert!(err.contains("session 's'"), "{what}: {err}");
    let push = t.git_output(&t.repo, &["push", "-q", "origin", "main"]);
    let err = String::from_utf8_lossy(&push.stderr);
    assert!(!push.status.success(), "{what}: push refused");
    assert!(err.contains("session 's'"), "{what}: {err}");
    let (code, _, err) = run(t.codex(&["session", "add", "s"]));
    assert_eq!(code, 3, "{what}: the id is not reused: {err}");
    assert!(err.contains("without an approval"), "{what}: {err}");
    // Refusing the id forgot nothing either.
    let (code, _, err) = run(t.codex(&["verify"]));
    assert_eq!(code, 3, "{what}: verify after the refused add: {err}");
}

#[test]
fn a_commit_landed_past_the_gate_stays_gated_after_the_session_is_removed() {
    for how in BYPASSES {
        each_git(|t| {
            session(t, "never");
            land_past_gate(t, how);
            let (code, _, err) = run(t.codex(&["verify"]));
            assert_eq!(code, 3, "{how}: caught before removal: {err}");
            t.codex(&["session", "remove", "s"]).assert().success();
            if how == "cherry-pick" {
                // Its own commit is not on main: the branch was kept. Deleting it by hand
                // takes nothing out either.
                t.git(&["branch", "-D", "codex/s"]);
            }
            still_gated(t, &format!("{how}, remove"));
        });
    }
}

#[test]
fn a_commit_landed_past_the_gate_stays_gated_after_the_session_expires() {
    each_git(|t| {
        session(t, "1h");
        land_past_gate(t, "branch-copy");
        t.age("s", 2);
        // The person's checkout prunes the expired session (post-checkout).
        t.git(&["checkout", "-q", "main"]);
        assert!(!t.state_dir().join("sessions/s.json").exists(), "pruned");
        still_gated(t, "expiry, post-checkout prune");
    });
    each_git(|t| {
        session(t, "1h");
        land_past_gate(t, "no-hooks");
        t.age("s", 2);
        t.codex(&["session", "prune"]).assert().success();
        still_gated(t, "expiry, session prune");
    });
}

/// Once an approval covers the landed commit, the evidence goes with the session as before.
#[test]
fn an_approval_of_the_landed_commit_lets_the_ledger_go() {
    each_git(|t| {
        session(t, "never");
        land_past_gate(t, "no-hooks");
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        t.codex(&["session", "remove", "s"]).assert().success();
        let ledger = t.git_output(
            &t.repo,
            &["rev-parse", "-q", "--verify", "refs/codex/ledger/s"],
        );
        assert!(!ledger.status.success(), "the ledger is forgotten");
        let (code, _, err) = run(t.codex(&["verify"]));
        assert_eq!(code, 0, "{err}");
        t.codex(&["session", "add", "s"]).assert().success();
    });
}

/// A confined agent's commit, approved and merged through the gate: removing the session
/// forgets its ledger and frees the id (the hooks git fired inside the run, which could not
/// write the ledger, left no entry of their own behind for the run's end to take in).
#[test]
fn a_confined_sessions_landed_work_frees_its_id() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.add("c");
        let agent = script(
            t,
            "commit.sh",
            "#!/bin/sh\necho work > work.txt && git add work.txt && git commit -qm work\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "c", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let ledger = t.git(&["log", "--format=%T %s", "refs/codex/ledger/c"]);
        let empty = t.git(&["hash-object", "-t", "tree", "/dev/null"]);
        let entries = ledger.lines().filter(|l| l.starts_with(&empty)).count();
        let chain = t.git(&[
            "rev-list",
            "--first-parent",
            "--count",
            "refs/codex/ledger/c",
        ]);
        assert_eq!(
            entries.to_string(),
            chain,
            "every ledger entry is on the chain: {ledger}"
        );
        t.codex(&["session", "review", "c", "--approve"])
            .assert()
            .success();
        t.codex(&["session", "merge", "c", "--remove"])
            .assert()
            .success();
        let (code, _, err) = run(t.codex(&["session", "add", "c"]));
        assert_eq!(code, 0, "the id is free again: {err}");
    });
}
