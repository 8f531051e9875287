//! `session merge` run again: after it landed, or after it was killed halfway, it says what
//! is there, lands nothing twice and leaves nothing behind (issue 16, classes 5 and 6).

mod common;

use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, run, write_file};

/// A session with one reviewed, approved commit adding `file`.
fn approved(t: &TestEnv, id: &str, file: &str) {
    let (code, out, err) = run(t.codex(&["session", "add", id, "--base", "main"]));
    assert_eq!(code, 0, "{err}");
    write_file(&PathBuf::from(out.trim()).join(file), id);
    t.codex(&["session", "review", id]).assert().success();
    t.codex(&["session", "review", id, "--approve"])
        .assert()
        .success();
}

/// What a re-run must leave alone: main's tip, the main worktree's index and its git dir's
/// merge state files.
fn assert_nothing_left(t: &TestEnv, what: &str) {
    let git_dir = t.repo.join(".git");
    for file in ["SQUASH_MSG", "MERGE_MSG", "MERGE_HEAD", "AUTO_MERGE"] {
        assert!(!git_dir.join(file).exists(), "{what}: {file} left behind");
    }
    assert_eq!(
        t.git(&["status", "--porcelain", "--untracked-files=no"]),
        "",
        "{what}: nothing staged or changed"
    );
    let list = t.git(&["worktree", "list", "--porcelain"]);
    assert!(!list.contains("replay-"), "{what}: {list}");
}

#[test]
fn a_merge_run_again_after_it_landed_says_so_and_lands_nothing() {
    for checked_out in [true, false] {
        each_git(|t| {
            t.set_config("[session]\nmax_parallel = 8\n");
            if !checked_out {
                t.git(&["switch", "-q", "-c", "elsewhere"]);
            }
            for strategy in ["merge", "squash", "rebase", "ff"] {
                let what = format!("{strategy} (checked out: {checked_out})");
                let id = format!("s-{strategy}");
                approved(t, &id, &format!("{strategy}.txt"));
                let merge = ["session", "merge", &id, "--strategy", strategy];
                let (code, _, err) = run(t.codex(&merge));
                assert_eq!(code, 0, "{what}: {err}");
                let landed = t.git(&["rev-parse", "main"]);
                let (code, _, err) = run(t.codex(&merge));
                assert_eq!(code, 0, "{what}, run again: {err}");
                assert!(err.contains("already"), "{what}: {err}");
                assert!(!err.contains("Landed"), "{what}: {err}");
                assert_eq!(
                    t.git(&["rev-parse", "main"]),
                    landed,
                    "{what}: no new commit"
                );
                assert_nothing_left(t, &what);
            }
        });
    }
}

#[test]
fn main_moved_on_after_a_squash_then_the_squash_runs_again() {
    each_git(|t| {
        approved(t, "s", "s.txt");
        let merge = ["session", "merge", "s", "--strategy", "squash"];
        t.codex(&merge).assert().success();
        // Someone edits the landed file on main: the session's change is no longer whole there.
        t.commit_in(&t.repo, "s.txt", "edited on main\n");
        let main = t.git(&["rev-parse", "main"]);
        let (code, _, err) = run(t.codex(&merge));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("already landed"), "{err}");
        assert_eq!(t.git(&["rev-parse", "main"]), main);
        assert_nothing_left(t, "squash after main moved on");
    });
}

/// A git that kills git-codex (its parent) right after the `nth` git call that contains
/// `marker` in its arguments has finished: the moment after a step, before the next.
fn killer_git(t: &TestEnv, marker: &str, nth: u32) -> PathBuf {
    let dir = t.root().join("killer");
    std::fs::create_dir_all(&dir).expect("killer dir");
    let script = dir.join("git");
    let count = dir.join("count");
    write_file(
        &script,
        &format!(
            "#!/bin/sh\n\"{real}\" \"$@\"\ncode=$?\ncase \" $* \" in *' {marker} '*)\n  \
             n=$(cat '{count}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{count}'\n  \
             [ $n -eq {nth} ] && kill -9 $PPID ;;\nesac\nexit $code\n",
            real = t.git.display(),
            count = count.display(),
        ),
    );
    set_executable(&script);
    script
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_merge_killed_after_it_landed_is_finished_by_the_next_merge_or_remove() {
    for (strategy, next) in [
        ("merge", "merge"),
        ("squash", "merge"),
        ("rebase", "merge"),
        ("merge", "remove"),
        ("squash", "remove"),
    ] {
        each_git(|t| {
            let what = format!("{strategy}, then {next}");
            approved(t, "k", "k.txt");
            // The landing's last git call is the rev-parse of the target: kill right after.
            let git = killer_git(t, "refs/heads/main", 1);
            let merge = ["session", "merge", "k", "--strategy", strategy, "--remove"];
            let mut cmd = t.codex(&merge);
            cmd.env("GIT_CODEX_GIT", &git);
            let (code, _, err) = run(cmd);
            assert_ne!(code, 0, "{what}: killed: {err}");
            assert_eq!(t.git(&["show", "main:k.txt"]), "k", "{what}: it landed");
            assert!(
                t.worktree("k").exists(),
                "{what}: killed before the removal"
            );
            let landed = t.git(&["rev-parse", "main"]);
            let (code, _, err) = if next == "merge" {
                run(t.codex(&merge))
            } else {
                run(t.codex(&["session", "remove", "k"]))
            };
            assert_eq!(code, 0, "{what}: {err}");
            if next == "merge" {
                assert!(err.contains("already"), "{what}: {err}");
            }
            assert!(err.contains("Removed session 'k'"), "{what}: {err}");
            assert_eq!(t.git(&["rev-parse", "main"]), landed, "{what}");
            assert!(!t.worktree("k").exists(), "{what}");
            assert_nothing_left(t, &what);
        });
    }
}

/// Kills `merge --strategy rebase` right after its replay, with the replay worktree still
/// registered with git; returns that worktree's path.
fn killed_replay(t: &TestEnv, id: &str) -> String {
    approved(t, id, &format!("{id}.txt"));
    let git = killer_git(t, "rebase", 1);
    let mut cmd = t.codex(&["session", "merge", id, "--strategy", "rebase"]);
    cmd.env("GIT_CODEX_GIT", &git);
    let (code, _, err) = run(cmd);
    assert_ne!(code, 0, "killed: {err}");
    std::fs::remove_file(t.root().join("killer/count")).expect("reset the count");
    let list = t.git(&["worktree", "list", "--porcelain"]);
    let replay = list
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .find(|p| p.contains("replay-"))
        .unwrap_or_else(|| panic!("the replay worktree is left: {list}"));
    replay.to_string()
}

#[test]
fn the_replay_worktree_of_a_killed_rebase_is_removed_by_the_next_merge_prune_or_doctor() {
    for next in ["merge", "prune", "doctor"] {
        each_git(|t| {
            let replay = killed_replay(t, "r");
            let (code, out, err) = match next {
                "merge" => run(t.codex(&["session", "merge", "r", "--strategy", "rebase"])),
                "prune" => run(t.codex(&["session", "prune"])),
                _ => run(t.codex(&["doctor"])),
            };
            assert!(next == "doctor" || code == 0, "{next}: {err}");
            let said = format!("{out}{err}");
            assert!(said.contains("replay worktree"), "{next}: {said}");
            assert!(said.contains(&replay), "{next}: {said}");
            let list = t.git(&["worktree", "list", "--porcelain"]);
            assert!(!list.contains("replay-"), "{next}: {list}");
            assert!(!std::path::Path::new(&replay).exists(), "{next}");
            if next == "merge" {
                assert_eq!(t.git(&["show", "main:r.txt"]), "r");
            }
            // The session itself is untouched by the clean-up.
            assert!(t.worktree("r").join("r.txt").exists(), "{next}");
        });
    }
}

#[test]
fn a_replay_worktree_of_a_person_is_never_removed() {
    each_git(|t| {
        // A person's own worktree whose name looks like a replay, outside the scratch dir.
        let theirs = t.root().join("replay-1");
        t.git(&[
            "worktree",
            "add",
            "-q",
            "--detach",
            theirs.to_str().unwrap(),
        ]);
        write_file(&theirs.join("notes.txt"), "mine\n");
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        run(t.codex(&["doctor"]));
        assert_eq!(
            std::fs::read_to_string(theirs.join("notes.txt")).unwrap(),
            "mine\n"
        );
        assert!(t.git(&["worktree", "list"]).contains("replay-1"));
    });
}

/// The main worktree as a merge killed between git's merge and its commit leaves it, made
/// with git itself: `--no-commit` stops exactly there.
fn stopped(t: &TestEnv, how: &str) {
    let args: &[&str] = match how {
        "merge" => &["merge", "-q", "--no-ff", "--no-commit", "codex/s"],
        _ => &["merge", "-q", "--squash", "codex/s"],
    };
    let out = t.git_without_hooks(args);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_merge_stopped_in_the_checkout_is_named_with_the_command_that_clears_it() {
    for (how, repair) in [
        ("merge", "git merge --abort"),
        ("squash", "git reset --merge"),
    ] {
        each_git(|t| {
            approved(t, "s", "s.txt");
            stopped(t, how);
            // The person's own unstaged edit, made after: nothing may lose it.
            t.write("README.md", "my edit\n");
            let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", how]));
            assert_eq!(code, 3, "{how}: {err}");
            assert!(err.contains("session 's'"), "{how}: {err}");
            assert!(err.contains("interrupted"), "{how}: {err}");
            assert!(err.contains(&format!("run '{repair}'")), "{how}: {err}");
            let check = common::doctor_check(t, "merges");
            assert_eq!(check["status"], "warn", "{how}: {check}");
            assert!(
                check["hint"].as_str().unwrap().contains(repair),
                "{how}: {check}"
            );
            let words: Vec<&str> = repair.split(' ').skip(1).collect();
            t.git(&words);
            assert_eq!(
                std::fs::read_to_string(t.repo.join("README.md")).unwrap(),
                "my edit\n"
            );
            assert!(!t.repo.join(".git/MERGE_HEAD").exists(), "{how}");
            assert!(!t.repo.join(".git/SQUASH_MSG").exists(), "{how}");
            assert_eq!(common::doctor_check(t, "merges")["status"], "ok", "{how}");
            t.git(&["checkout", "README.md"]);
            let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", how]));
            assert_eq!(code, 0, "{how}: {err}");
            assert_eq!(t.git(&["show", "main:s.txt"]), "s", "{how}");
        });
    }
}

#[test]
fn a_stopped_merge_mixed_with_the_persons_staged_changes_is_not_cleared_blindly() {
    for how in ["merge", "squash"] {
        each_git(|t| {
            approved(t, "s", "s.txt");
            stopped(t, how);
            t.write("mine.txt", "staged by me\n");
            t.git(&["add", "mine.txt"]);
            let seen = |t: &TestEnv| {
                let merging =
                    ["MERGE_HEAD", "SQUASH_MSG"].map(|f| t.repo.join(".git").join(f).exists());
                (
                    t.git(&["ls-files", "--stage"]),
                    t.git(&["status", "--porcelain"]),
                    merging,
                )
            };
            let before = seen(t);
            let (code, _, err) = run(t.codex(&["session", "merge", "s", "--strategy", how]));
            assert_eq!(code, 3, "{how}: {err}");
            assert!(
                err.contains("not the merge's") || err.contains("other staged"),
                "{how}: {err}"
            );
            assert!(
                err.contains("git diff --cached > mine.patch"),
                "{how}: {err}"
            );
            assert_eq!(seen(t), before, "{how}: the refusal touches nothing");
            assert_eq!(
                t.git(&["diff", "--cached", "--name-only", "--", "mine.txt"]),
                "mine.txt"
            );
        });
    }
}

#[test]
fn a_persons_own_merge_in_progress_is_not_a_leftover() {
    each_git(|t| {
        t.git(&["switch", "-q", "-c", "topic"]);
        t.commit_in(&t.repo, "topic.txt", "topic\n");
        t.git(&["switch", "-q", "main"]);
        t.git(&["merge", "-q", "--no-ff", "--no-commit", "topic"]);
        assert_eq!(common::doctor_check(t, "merges")["status"], "ok");
    });
}
