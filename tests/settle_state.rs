//! What a confined run leaves behind (SPEC §7a), as the person finds it after the run.
//!
//! An operation the agent left in progress (a rebase stopped at `break`, an `am`, a
//! cherry-pick or revert sequence, a merge) is not kept: the person's git would go on with
//! it, running what the agent wrote there (an `exec` line), unconfined. And git as agents use
//! it elsewhere works: a rebase or an amend of the session branch inside a run moves the
//! branch to the agent's HEAD, the commits it left behind stay the session's (the ledger),
//! and review works. Only the session's own branch ever moves.

mod common;

use std::path::{Path, PathBuf};

use common::sandbox::{can_confine, script};
use common::{TestEnv, each_git, json, run};

/// `session run <id> -- <script>`: (exit code, stdout, stderr).
fn agent(t: &TestEnv, id: &str, name: &str, body: &str) -> (i32, String, String) {
    let path = script(t, name, &format!("#!/bin/sh\n{body}"));
    run(t.codex(&["session", "run", id, "--", &path]))
}

fn agent_ok(t: &TestEnv, id: &str, name: &str, body: &str) -> String {
    let (code, out, err) = agent(t, id, name, body);
    assert_eq!(code, 0, "{name}: {out}{err}");
    err
}

fn admin(t: &TestEnv, id: &str) -> PathBuf {
    t.repo.join(".git/worktrees").join(format!("wt-{id}"))
}

fn subjects(t: &TestEnv, rev: &str, count: usize) -> Vec<String> {
    let n = format!("-{count}");
    t.git(&["log", &n, "--format=%s", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether the session's ledger reaches `commit`.
fn in_ledger(t: &TestEnv, id: &str, commit: &str) -> bool {
    let ledger = format!("refs/codex/ledger/{id}");
    t.git_output(&t.repo, &["merge-base", "--is-ancestor", commit, &ledger])
        .status
        .success()
}

/// The commits `session review <id>` lists, by subject.
fn reviewed(t: &TestEnv, id: &str) -> Vec<String> {
    let (code, out, err) = run(t.codex(&["session", "review", id, "--format", "json"]));
    assert_eq!(code, 0, "review: {err}");
    json(&out)["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["subject"].as_str().expect("subject").to_string())
        .collect()
}

/// `git status` in the worktree: on its branch, no operation in progress.
fn clean_on_branch(t: &TestEnv, wt: &Path, branch: &str) {
    let status = t.git_in(wt, &["status"]);
    assert!(
        status.starts_with(&format!("On branch {branch}")),
        "{status}"
    );
    for word in [
        "rebas",
        "cherry-pick",
        "revert",
        "merg",
        "am session",
        "bisect",
    ] {
        assert!(!status.contains(word), "{word}: {status}");
    }
}

/// A landing of `commit` onto main is refused by the gate, as a session commit.
fn refused_on_main(t: &TestEnv, commit: &str, id: &str) {
    let main = t.git(&["rev-parse", "main"]);
    let (code, _, err) = run(t.codex(&["verify", &format!("{main}..{commit}"), "--ref", "main"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("session '{id}'")), "{err}");
}

#[test]
fn a_rebase_onto_main_inside_a_run_moves_the_branch_and_review_works() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let wt = t.add("s");
        agent_ok(
            t,
            "s",
            "one.sh",
            "echo 1 > one && git add one && git commit -qm S1\n",
        );
        let old = t.git(&["rev-parse", "codex/s"]);
        t.commit_in(&t.repo, "m.txt", "the person's work on main\n");
        let err = agent_ok(t, "s", "rebase.sh", "git rebase -q main\n");
        assert_eq!(
            subjects(t, "codex/s", 3),
            ["S1", "add m.txt", "initial"],
            "{err}"
        );
        assert_eq!(
            t.git_in(&wt, &["rev-parse", "HEAD"]),
            t.git(&["rev-parse", "codex/s"])
        );
        clean_on_branch(t, &wt, "codex/s");
        for pseudo in ["CHERRY_PICK_HEAD", "AUTO_MERGE", "REBASE_HEAD"] {
            assert!(!admin(t, "s").join(pseudo).exists(), "{pseudo} is cleared");
        }
        assert!(in_ledger(t, "s", &old), "the commit the rebase left behind");
        assert_eq!(reviewed(t, "s"), ["S1"]);
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        t.codex(&["session", "merge", "s"]).assert().success();
        let (code, _, err) = run(t.codex(&["verify"]));
        assert_eq!(code, 0, "{err}");
    });
}

#[test]
fn an_amend_or_a_reset_inside_a_later_run_moves_the_branch_and_keeps_the_old_commits() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let wt = t.add("s");
        agent_ok(
            t,
            "s",
            "two.sh",
            "echo a > a && git add a && git commit -qm A\necho b > b && git add b && git commit -qm B\n",
        );
        let b = t.git(&["rev-parse", "codex/s"]);
        agent_ok(
            t,
            "s",
            "amend.sh",
            "echo c > b && git commit -q --amend -am 'B amended'\n",
        );
        assert_eq!(subjects(t, "codex/s", 2), ["B amended", "A"]);
        clean_on_branch(t, &wt, "codex/s");
        assert!(in_ledger(t, "s", &b));
        assert_eq!(reviewed(t, "s"), ["B amended", "A"]);
        refused_on_main(t, &b, "s");
        let amended = t.git(&["rev-parse", "codex/s"]);
        agent_ok(t, "s", "reset.sh", "git reset -q --hard HEAD~1\n");
        assert_eq!(subjects(t, "codex/s", 1), ["A"]);
        clean_on_branch(t, &wt, "codex/s");
        assert_eq!(reviewed(t, "s"), ["A"]);
        refused_on_main(t, &amended, "s");
    });
}

/// A checkout (to look at an older commit, or at the person's work) leaves the branch where it
/// was, as git does elsewhere; so does a reset onto a commit of another branch of the person's.
/// The worktree stays where the agent left it, and the warning says how to go back.
#[test]
fn a_checkout_or_a_reset_onto_the_persons_branch_leaves_the_session_branch() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["branch", "feature"]);
        t.git(&["checkout", "-q", "feature"]);
        t.commit_in(&t.repo, "f.txt", "the person's feature\n");
        t.git(&["checkout", "-q", "main"]);
        let feature = t.git(&["rev-parse", "feature"]);
        let wt = t.add("s");
        agent_ok(
            t,
            "s",
            "two.sh",
            "echo a > a && git add a && git commit -qm A\necho b > b && git add b && git commit -qm B\n",
        );
        let tip = t.git(&["rev-parse", "codex/s"]);
        let err = agent_ok(t, "s", "look.sh", "git checkout -q HEAD~1\n");
        assert_eq!(t.git(&["rev-parse", "codex/s"]), tip);
        assert!(err.contains("switch codex/s"), "{err}");
        t.git_in(&wt, &["switch", "-q", "codex/s"]);
        let err = agent_ok(
            t,
            "s",
            "theirs.sh",
            &format!("git reset -q --hard {feature}\n"),
        );
        assert_eq!(t.git(&["rev-parse", "codex/s"]), tip, "{err}");
        assert_eq!(t.git(&["rev-parse", "feature"]), feature);
        // The person's feature is not the session's: it lands on main without an approval.
        t.git(&["merge", "-q", "--ff-only", "feature"]);
    });
}

/// The attack: an interactive rebase stopped at `break`, an `exec` line queued after the
/// picks. The person's `git rebase --continue` in the worktree would run it as the person.
#[test]
fn a_rebase_the_agent_left_stopped_runs_nothing_for_the_person() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let wt = t.add("s");
        agent_ok(
            t,
            "s",
            "commits.sh",
            "for i in 1 2 3 4; do echo $i > f$i; git add f$i; git commit -qm c$i; done\n",
        );
        let marker = t.root().join("PWNED");
        let body = format!(
            "GIT_SEQUENCE_EDITOR=\"sed -i -e '1i break' -e '\\$a exec touch {}'\" git rebase -qi HEAD~3\n\
             test -d \"$(git rev-parse --git-dir)/rebase-merge\" && echo RESULT stopped=yes\n",
            marker.display()
        );
        let (code, out, err) = agent(t, "s", "rebase.sh", &body);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("RESULT stopped=yes"), "{out}{err}");
        assert!(err.contains("rebase-merge"), "the warning names it: {err}");
        assert!(!admin(t, "s").join("rebase-merge").exists());
        let resumed = t.git_output(&wt, &["rebase", "--continue"]);
        assert!(!resumed.status.success(), "no rebase to continue");
        assert!(!marker.exists(), "the agent's exec ran as the person");
        // Its commits and files are kept: the branch at c4 (the rebase stopped midway, so the
        // branch stays), the worktree at c1 where the agent left it.
        assert_eq!(subjects(t, "codex/s", 1), ["c4"]);
        assert!(wt.join("f1").exists() && !wt.join("f2").exists());
        assert!(err.contains("switch codex/s"), "{err}");
    });
}

/// Each kind of operation state git keeps in a worktree's admin dir, left by the agent: none
/// of it comes back to the person's admin dir; the warning names it; git says nothing is in
/// progress there.
#[test]
fn no_operation_the_agent_left_in_progress_is_kept() {
    if !can_confine() {
        return;
    }
    // Each leaves its operation stopped at a conflict on `x`.
    let setup = "echo base > x && git add x && git commit -qm base\n\
                 echo ours > x && git commit -qam ours\n\
                 git checkout -q HEAD~1 && echo theirs > x && git commit -qam theirs\n\
                 T=$(git rev-parse HEAD) && git checkout -q HEAD@{2}\n";
    let cases = [
        ("sequencer", "git cherry-pick $T $T~1 >/dev/null 2>&1\n"),
        ("MERGE_HEAD", "git merge -q --no-ff $T >/dev/null 2>&1\n"),
        (
            "REVERT_HEAD",
            "git revert --no-edit HEAD~1 >/dev/null 2>&1\n",
        ),
        (
            "rebase-apply",
            "P=${TMPDIR:-/tmp}/p && git format-patch -q -1 $T -o $P && git am -q $P/*.patch >/dev/null 2>&1\n",
        ),
    ];
    for (state, body) in cases {
        each_git(|t| {
            let wt = t.add("s");
            let body = format!(
                "{setup}{body}ls \"$(git rev-parse --git-dir)\" | sed 's/^/RESULT left=/'\n"
            );
            let (code, out, err) = agent(t, "s", "op.sh", &body);
            assert_eq!(code, 0, "{state}: {out}{err}");
            assert!(
                out.contains(&format!("RESULT left={state}")),
                "{state}: {out}{err}"
            );
            assert!(err.contains(state), "{state}: the warning names it: {err}");
            assert!(!admin(t, "s").join(state).exists(), "{state}");
            let status = t.git_in(&wt, &["status"]);
            for word in [
                "rebas",
                "cherry-pick",
                "revert",
                "All conflicts fixed",
                "am session",
            ] {
                assert!(!status.contains(word), "{state}: {word}: {status}");
            }
        });
    }
}

/// A rebase the person left stopped in the session's worktree stays the person's: the agent
/// appends an `exec` line to its copy of the todo, and the person's `git rebase --continue`
/// goes on with the person's own todo alone.
#[test]
fn the_persons_own_rebase_in_progress_is_not_the_agents_to_change() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "p1.txt", "one\n");
        t.commit_in(&wt, "p2.txt", "two\n");
        let mut rebase = std::process::Command::new(&t.git);
        rebase.env_clear().envs(t.vars()).current_dir(&wt);
        rebase.env("GIT_SEQUENCE_EDITOR", "sed -i -e '1i break'");
        let out = rebase
            .args(["rebase", "-qi", "HEAD~1"])
            .output()
            .expect("git");
        assert!(out.status.success(), "{out:?}");
        let todo = admin(t, "s").join("rebase-merge/git-rebase-todo");
        let before = std::fs::read(&todo).expect("the person's todo");
        let marker = t.root().join("PWNED");
        let body = format!(
            "echo 'exec touch {}' >> \"$(git rev-parse --git-dir)/rebase-merge/git-rebase-todo\"\n",
            marker.display()
        );
        let err = agent_ok(t, "s", "todo.sh", &body);
        assert!(err.contains("rebase-merge"), "{err}");
        assert_eq!(std::fs::read(&todo).expect("todo"), before);
        t.git_in(&wt, &["rebase", "--continue"]);
        assert!(!marker.exists());
        assert_eq!(subjects(t, "codex/s", 2), ["add p2.txt", "add p1.txt"]);
        clean_on_branch(t, &wt, "codex/s");
    });
}
