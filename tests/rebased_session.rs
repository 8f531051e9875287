//! A rebased session is still the same session (issue 15, point 6): when its branch is rebased
//! onto, or merges, a newer protected tip, its commits are those it made, not main's. Review
//! shows only those, approval and merge work every way, and `verify` stays green on main's
//! own history. The base moves only along what the person's protected branches hold: an agent
//! cannot move it to hide its own commits.

mod common;

use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, json, run, write_file};

/// Protected `main` and `release` (behind main, at the first commit), and session `a` landed
/// on main as a true merge: main has another session's merge in its history.
fn main_with_a_landed_session(t: &TestEnv) {
    t.set_config("[session]\nmax_parallel = 8\n[review]\nprotected = [\"main\", \"release\"]\n");
    t.git(&["branch", "release"]);
    let wt = t.add("a");
    t.commit_in(&wt, "a.txt", "session a's work\n");
    ok(t, &["session", "review", "a", "--approve"]);
    ok(t, &["session", "merge", "a", "--strategy", "merge"]);
}

fn ok(t: &TestEnv, args: &[&str]) -> String {
    let (code, out, err) = run(t.codex(args));
    assert_eq!(code, 0, "git codex {args:?}: {err}");
    out
}

/// `session review <id> --format json`.
fn review(t: &TestEnv, id: &str) -> serde_json::Value {
    json(&ok(t, &["session", "review", id, "--format", "json"]))
}

/// The subjects of the commits a review lists.
fn subjects(review: &serde_json::Value) -> Vec<String> {
    review["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["subject"].as_str().expect("subject").to_string())
        .collect()
}

fn files(review: &serde_json::Value) -> Vec<String> {
    review["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_string())
        .collect()
}

fn commit(t: &TestEnv, dir: &Path, file: &str, text: &str, subject: &str) -> String {
    write_file(&dir.join(file), text);
    t.git_in(dir, &["add", file]);
    t.git_in(dir, &["commit", "-q", "-m", subject]);
    t.git_in(dir, &["rev-parse", "HEAD"])
}

/// `git codex verify` (every protected branch's history): (exit code, stderr).
fn verify(t: &TestEnv) -> (i32, String) {
    let (code, _, err) = run(t.codex(&["verify"]));
    (code, err)
}

/// Session `b`, started before `a` landed, with one commit, then rebased onto the new main.
fn rebased_session(t: &TestEnv) -> PathBuf {
    let wt = t.add("b");
    main_with_a_landed_session(t);
    commit(t, &wt, "b.txt", "session b's work\n", "b's own work");
    t.git_in(&wt, &["rebase", "-q", "main"]);
    wt
}

#[test]
fn a_rebased_session_reviews_approves_merges_and_verifies_with_every_strategy() {
    for strategy in ["merge", "squash", "rebase", "ff"] {
        each_git(|t| {
            rebased_session(t);
            let main = t.git(&["rev-parse", "main"]);
            let report = review(t, "b");
            assert_eq!(
                subjects(&report),
                ["b's own work"],
                "{strategy}: the review lists the session's own commit, not main's: {report}"
            );
            assert_eq!(files(&report), ["b.txt"], "{strategy}: {report}");
            assert_eq!(report["base"], main.as_str(), "{strategy}: the base moved");
            let shown = t.show("b");
            assert_eq!(shown["baseCommit"], main.as_str(), "{strategy}: {shown}");

            ok(t, &["session", "review", "b", "--approve"]);
            ok(t, &["session", "merge", "b", "--strategy", strategy]);
            assert_eq!(t.git(&["show", "main:b.txt"]), "session b's work");
            if matches!(strategy, "merge" | "ff") {
                assert_eq!(t.show("b")["state"], "merged", "{strategy}");
            }
            let (code, err) = verify(t);
            assert_eq!(code, 0, "{strategy}: verify on main's own history: {err}");

            // Main (another session's merge and this one's work among it) goes to release.
            t.git(&["switch", "-q", "release"]);
            let out = t.git_output(&t.repo, &["merge", "-q", "--no-edit", "main"]);
            assert!(
                out.status.success(),
                "{strategy}: merging main into release: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.git(&["switch", "-q", "main"]);
            let (code, err) = verify(t);
            assert_eq!(code, 0, "{strategy}: verify with release: {err}");
        });
    }
}

#[test]
fn a_session_that_merged_a_newer_main_is_reviewed_from_there() {
    each_git(|t| {
        let wt = t.add("b");
        commit(t, &wt, "b.txt", "session b's work\n", "b's own work");
        main_with_a_landed_session(t);
        t.git_in(&wt, &["merge", "-q", "--no-edit", "main"]);
        let report = review(t, "b");
        let listed = subjects(&report);
        assert_eq!(listed.len(), 2, "{report}");
        assert!(listed.iter().any(|s| s == "b's own work"), "{report}");
        assert!(
            listed.iter().any(|s| s.starts_with("Merge branch")),
            "{report}"
        );
        assert_eq!(files(&report), ["b.txt"], "{report}");
        assert_eq!(report["base"], t.git(&["rev-parse", "main"]).as_str());
        ok(t, &["session", "review", "b", "--approve"]);
        ok(t, &["session", "merge", "b"]);
        let (code, err) = verify(t);
        assert_eq!(code, 0, "{err}");
    });
}

/// A session that landed and goes on: its next review starts at its landing, and a rejection
/// of what came after leaves what landed approved (main's history stays green).
#[test]
fn a_session_that_goes_on_after_landing_is_reviewed_from_its_landing() {
    each_git(|t| {
        t.set_config("[review]\nprotected = [\"main\"]\n");
        let wt = t.add("b");
        commit(t, &wt, "b.txt", "first part\n", "first part");
        ok(t, &["session", "review", "b", "--approve"]);
        ok(t, &["session", "merge", "b"]);
        t.git_in(&wt, &["merge", "-q", "--ff-only", "main"]);
        commit(t, &wt, "c.txt", "second part\n", "second part");
        let report = review(t, "b");
        assert_eq!(subjects(&report), ["second part"], "{report}");
        // Rejecting what came after does not make what landed unapproved.
        ok(t, &["session", "review", "b", "--reject"]);
        let (code, err) = verify(t);
        assert_eq!(code, 0, "main's own history after a rejection: {err}");
        assert_eq!(t.show("b")["state"], "rejected");
        let (code, _, err) = run(t.codex(&["session", "merge", "b"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("rejected"), "{err}");
        ok(t, &["session", "review", "b", "--approve"]);
        ok(t, &["session", "merge", "b"]);
        let (code, err) = verify(t);
        assert_eq!(code, 0, "{err}");
    });
}

/// The agent puts its own commit on main with the hooks off (what an unconfined agent can
/// do), then rebases onto main: its commit is still its own. The review still shows it, and
/// `verify` still flags main until a person approves what they were shown.
#[test]
fn an_agent_cannot_launder_its_commit_through_main_by_rebasing_onto_it() {
    each_git(|t| {
        t.set_config("[review]\nprotected = [\"main\"]\n");
        let wt = t.add("b");
        let evil = commit(
            t,
            &wt,
            "evil.txt",
            "the agent's unreviewed change\n",
            "evil",
        );
        let out = t.git_output(
            &wt,
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "update-ref",
                "refs/heads/main",
                &evil,
            ],
        );
        assert!(out.status.success());
        let (code, err) = verify(t);
        assert_eq!(code, 3, "main holds the agent's commit: {err}");
        assert!(err.contains(&evil[..12]), "{err}");
        t.git_in(&wt, &["rebase", "-q", "main"]);
        commit(t, &wt, "ok.txt", "innocent\n", "innocent");
        let report = review(t, "b");
        assert_eq!(
            subjects(&report),
            ["innocent", "evil"],
            "the review still shows the agent's commit on main: {report}"
        );
        assert!(files(&report).contains(&"evil.txt".to_string()), "{report}");
        let (code, err) = verify(t);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains(&evil[..12]), "{err}");
    });
}

/// A ref under refs/remotes (or any ref but a protected branch) does not move the base: the
/// agent's own commits below it stay in its review.
#[test]
fn a_protected_looking_ref_the_agent_made_does_not_move_the_base() {
    each_git(|t| {
        t.set_config("[review]\nprotected = [\"main\", \"origin/*\"]\n");
        let wt = t.add("b");
        let first = commit(t, &wt, "one.txt", "hidden change\n", "hidden");
        for name in ["refs/remotes/origin/main", "refs/tags/main"] {
            t.git_in(&wt, &["update-ref", name, &first]);
        }
        commit(t, &wt, "two.txt", "visible change\n", "visible");
        let report = review(t, "b");
        assert_eq!(subjects(&report), ["visible", "hidden"], "{report}");
        assert_eq!(files(&report), ["one.txt", "two.txt"], "{report}");
    });
}

/// An approval covers only what its review showed: a change the agent made and rebased away
/// is not approved by approving the rebased tip, and a copy of it is still refused.
#[test]
fn approving_the_rebased_tip_does_not_approve_what_the_rebase_dropped() {
    each_git(|t| {
        let wt = rebased_session(t);
        let dropped = commit(t, &wt, "evil.txt", "dropped by the rebase\n", "evil");
        t.git_in(&wt, &["reset", "-q", "--hard", "HEAD~1"]);
        let report = review(t, "b");
        assert_eq!(subjects(&report), ["b's own work"], "{report}");
        ok(t, &["session", "review", "b", "--approve"]);
        ok(t, &["session", "merge", "b"]);
        let before = t.git(&["rev-parse", "main"]);
        let out = t.git_output(&t.repo, &["cherry-pick", &dropped]);
        assert!(!out.status.success(), "a copy of the dropped commit landed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("session 'b'"), "{err}");
        t.git(&["cherry-pick", "--abort"]);
        assert_eq!(t.git(&["rev-parse", "main"]), before);
    });
}

/// Once a rebased session landed (its rebased commits, a squash or a rebase of them), the
/// commits the rebase left behind have landed too, as changes: removing the session forgets
/// its ledger and the id is free again (after a squash, once its kept branch is deleted). A left-behind change that did not land keeps the ledger and the id taken.
#[test]
fn a_landed_rebased_session_frees_its_id_and_an_unlanded_change_does_not() {
    for strategy in ["merge", "squash", "rebase"] {
        each_git(|t| {
            rebased_session(t);
            ok(t, &["session", "review", "b", "--approve"]);
            ok(
                t,
                &["session", "merge", "b", "--strategy", strategy, "--remove"],
            );
            let ledger = t.git_output(
                &t.repo,
                &["rev-parse", "-q", "--verify", "refs/codex/ledger/b"],
            );
            assert!(
                !ledger.status.success(),
                "{strategy}: the ledger is forgotten"
            );
            if strategy == "squash" {
                // Its own commit is not on main (a squash of it is): the branch was kept.
                t.git(&["branch", "-D", "codex/b"]);
            }
            let (code, _, err) = run(t.codex(&["session", "add", "b"]));
            assert_eq!(code, 0, "{strategy}: the id is free again: {err}");
            let (code, err) = verify(t);
            assert_eq!(code, 0, "{strategy}: {err}");
        });
    }
    each_git(|t| {
        let wt = rebased_session(t);
        commit(t, &wt, "evil.txt", "dropped, never landed\n", "evil");
        t.git_in(&wt, &["reset", "-q", "--hard", "HEAD~1"]);
        ok(t, &["session", "review", "b", "--approve"]);
        ok(t, &["session", "merge", "b", "--remove"]);
        let (code, _, err) = run(t.codex(&["session", "add", "b"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("have not landed"), "{err}");
    });
}

/// A session rebased onto a fetched upstream tip (`origin/main`, ahead of main): HEAD passed
/// through the upstream commit, which is not recorded as the session's own. Once main holds
/// it, it is main's: `verify` stays green on main's own history and the review shows only the
/// session's commit. (The gate still holds the upstream commit as the session's while main
/// lacks it: here the person brings it in past the gate, as another clone or CI would see it.)
#[test]
fn an_upstream_commit_a_session_rebased_onto_is_not_recorded_as_its_own() {
    each_git(|t| {
        t.set_config("[review]\nprotected = [\"main\"]\n");
        let remote = t.bare_clone("remote.git");
        let remote = remote.to_str().expect("utf-8");
        t.git(&["remote", "add", "origin", remote]);
        t.git_in(&t.root(), &["clone", "-q", remote, "other"]);
        let other = t.root().join("other");
        t.commit_in(&other, "up.txt", "someone else's work\n");
        t.git_in(&other, &["push", "-q", "origin", "main"]);
        let wt = t.add("s");
        commit(t, &wt, "s.txt", "the session's work\n", "s work");
        t.git(&["fetch", "-q", "origin"]);
        t.git_in(&wt, &["rebase", "-q", "origin/main"]);
        let out = t.git_without_hooks(&["merge", "-q", "--ff-only", "origin/main"]);
        assert!(out.status.success());
        let (code, err) = verify(t);
        assert_eq!(code, 0, "main holds only upstream's commit: {err}");
        assert_eq!(subjects(&review(t, "s")), ["s work"]);
        ok(t, &["session", "review", "s", "--approve"]);
        ok(t, &["session", "merge", "s"]);
        let (code, err) = verify(t);
        assert_eq!(code, 0, "{err}");
    });
}
