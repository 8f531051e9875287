//! `session add`: what a new session has, and every refusal and rollback.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{assert_disk_unchanged, each_git, json, run, stdout};

#[test]
fn add_creates_branch_worktree_metadata_record_and_prints_the_path() {
    each_git(|t| {
        t.write(".env", "TOKEN=1\n");
        std::fs::set_permissions(t.repo.join(".env"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let out = t.codex(&["session", "add", "fix-login"]).assert().success();
        let printed = stdout(&out.get_output().stdout);
        assert_eq!(
            printed,
            format!("{}\n", t.worktree("fix-login").display()),
            "stdout is the path alone"
        );

        let wt = t.worktree("fix-login");
        assert_eq!(
            t.git_in(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]),
            "codex/fix-login"
        );
        assert_eq!(
            t.git(&["rev-parse", "codex/fix-login"]),
            t.git(&["rev-parse", "main"])
        );
        // copy_files copied .env with its mode bits.
        assert_eq!(
            std::fs::read_to_string(wt.join(".env")).unwrap(),
            "TOKEN=1\n"
        );
        let mode = std::fs::metadata(wt.join(".env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);

        let meta = json(&std::fs::read_to_string(wt.join(".codex-session.json")).unwrap());
        for key in [
            "id",
            "created",
            "sandbox",
            "reviewHook",
            "isolationPath",
            "branch",
            "base",
            "expiresAt",
            "port",
        ] {
            assert!(meta.get(key).is_some(), "metadata lacks {key}: {meta}");
        }
        assert_eq!(meta["id"], "fix-login");
        assert_eq!(meta["sandbox"], "strict");
        assert_eq!(meta["port"], 20000);

        let record =
            json(&std::fs::read_to_string(t.state_dir().join("sessions/fix-login.json")).unwrap());
        assert_eq!(record["schema"], 1);
        assert_eq!(record["branch"], "codex/fix-login");
        assert_eq!(record["ttlSeconds"], 3600);

        // Neither the worktree base nor the metadata shows in git status.
        assert_eq!(
            t.git(&["status", "--porcelain", "--", ".codex-worktrees"]),
            ""
        );
        assert_eq!(
            t.git_in(&wt, &["status", "--porcelain", "--", ".codex-session.json"]),
            ""
        );
    });
}

#[test]
fn cd_into_the_printed_path_works_from_a_subdirectory_through_git() {
    each_git(|t| {
        std::fs::create_dir_all(t.repo.join("src/deep")).unwrap();
        // `git codex` dispatches to the binary on PATH, from any subdirectory.
        let out = t.git_output(
            &t.repo.join("src/deep"),
            &["codex", "session", "add", "sub"],
        );
        assert!(out.status.success(), "{}", stdout(&out.stderr));
        assert_eq!(
            stdout(&out.stdout).trim(),
            t.worktree("sub").display().to_string()
        );
        assert!(t.worktree("sub").join("README.md").is_file());
    });
}

#[test]
fn options_set_base_ttl_sandbox_and_ports_are_distinct() {
    each_git(|t| {
        let first = t.git(&["rev-parse", "HEAD"]);
        t.write("second.txt", "2\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "second"]);
        t.codex(&[
            "session",
            "add",
            "a",
            "--base",
            &first,
            "--ttl",
            "2h 30m",
            "--sandbox",
            "network-enabled",
        ])
        .assert()
        .success();
        t.add("b");
        t.write("third.txt", "3\n");
        t.git(&["add", "."]);
        t.git(&["commit", "-q", "-m", "third"]);
        assert_eq!(t.git(&["rev-parse", "codex/a"]), first);
        let (code, out, _) = run(t.codex(&["session", "list", "--json"]));
        assert_eq!(code, 0);
        let list = json(&out);
        let a = &list["sessions"][0];
        let b = &list["sessions"][1];
        assert_eq!(a["ttlSeconds"], 9000);
        assert_eq!(a["sandbox"], "network-enabled");
        assert_eq!(
            a["behind"], 0,
            "a was made from a commit, not a branch: counted against that commit"
        );
        assert_eq!(a["baseCommit"], first.as_str());
        assert_eq!(
            b["behind"], 1,
            "b is one commit behind main, its base branch"
        );
        assert_eq!(b["ahead"], 0);
        assert_ne!(a["port"], b["port"]);
    });
}

#[test]
fn setup_commands_run_in_the_new_worktree_as_argv() {
    each_git(|t| {
        t.set_config("[session]\nsetup = [\"touch 'made by setup'\", [\"sh\", \"-c\", \"echo $CODEX_SESSION_ID:$CODEX_PORT > env.txt\"]]\n");
        let wt = t.add("s1");
        assert!(
            wt.join("made by setup").is_file(),
            "quoted word is one argument"
        );
        assert_eq!(
            std::fs::read_to_string(wt.join("env.txt")).unwrap(),
            "s1:20000\n"
        );
    });
}

#[test]
fn bad_ids_are_refused_with_exit_2_and_nothing_changes() {
    each_git(|t| {
        t.add("a1");
        let long = "x".repeat(65);
        for bad in [
            "../x",
            "-rf",
            "a b",
            "x.lock",
            ".hidden",
            long.as_str(),
            "",
            "caf\u{e9}",
            "a..b",
        ] {
            let before = t.disk();
            let (code, out, err) = run(t.codex(&["session", "add", "--", bad]));
            assert_eq!(code, 2, "id {bad:?}: {err}");
            assert_eq!(out, "");
            assert!(err.starts_with("error: invalid session id"), "{err}");
            assert!(err.contains("hint:"), "{err}");
            assert_disk_unchanged(&before, &t.disk(), &format!("id {bad:?} changed the disk"));
        }
    });
}

#[test]
fn duplicate_ids_are_refused_ignoring_case() {
    each_git(|t| {
        t.add("a1");
        for dup in ["a1", "A1"] {
            let before = t.disk();
            let (code, _, err) = run(t.codex(&["session", "add", dup]));
            assert_eq!(code, 3, "{err}");
            assert!(err.contains("'a1'"), "{err}");
            assert_disk_unchanged(&before, &t.disk(), "the refusal");
        }
    });
}

#[test]
fn the_limit_refuses_with_exit_3_naming_the_live_sessions() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 2\n");
        t.add("one");
        t.add("two");
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "add", "three"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("limit of 2") && err.contains("one, two"),
            "{err}"
        );
        assert_disk_unchanged(&before, &t.disk(), "the refusal");
    });
}

/// Everything a failed add could leave behind.
fn assert_no_trace(t: &common::TestEnv, id: &str) {
    assert!(!t.worktree(id).exists(), "worktree dir left behind");
    assert!(
        !t.state_dir().join(format!("sessions/{id}.json")).exists(),
        "record left behind"
    );
    assert!(
        !t.state_dir().join(format!("tmp/{id}")).exists(),
        "tmp dir left behind"
    );
    assert!(
        !t.state_dir().join(format!("logs/{id}")).exists(),
        "log dir left behind"
    );
    assert_eq!(
        t.git(&["branch", "--list", &format!("codex/{id}")]),
        "",
        "branch left behind"
    );
    let worktrees = t.git(&["worktree", "list", "--porcelain"]);
    assert!(
        !worktrees.contains(&format!("wt-{id}")),
        "git admin entry left behind: {worktrees}"
    );
}

#[test]
fn a_bad_base_is_refused_before_anything_is_made() {
    each_git(|t| {
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "add", "x", "--base", "no-such-rev"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no-such-rev"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "a bad base");
    });
}

#[test]
fn a_failing_setup_rolls_everything_back_and_frees_the_port() {
    each_git(|t| {
        t.set_config("[session]\nsetup = [\"sh -c 'echo boom >&2; exit 7'\"]\n");
        let (code, out, err) = run(t.codex(&["session", "add", "x"]));
        assert_eq!(code, 1, "{err}");
        assert_eq!(out, "", "no path printed for a failed add");
        assert!(
            err.contains("boom") && err.contains("setup command"),
            "{err}"
        );
        assert_no_trace(t, "x");
        assert!(
            !t.repo.join(".codex-worktrees").exists(),
            "base dir created by this add is removed"
        );
        // The port goes back to the pool.
        t.set_config("");
        t.add("y");
        let record = json(&std::fs::read_to_string(t.state_dir().join("sessions/y.json")).unwrap());
        assert_eq!(record["port"], 20000);
    });
}

#[test]
fn a_setup_program_that_does_not_exist_rolls_back() {
    each_git(|t| {
        t.set_config("[session]\nsetup = [[\"/no/such/program\"]]\n");
        let (code, _, err) = run(t.codex(&["session", "add", "x"]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("could not start"), "{err}");
        assert_no_trace(t, "x");
    });
}

#[test]
fn an_existing_path_is_refused_and_left_alone() {
    each_git(|t| {
        let squatter = t.worktree("x").join("mine.txt");
        common::write_file(&squatter, "not yours\n");
        let (code, _, err) = run(t.codex(&["session", "add", "x"]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read_to_string(&squatter).unwrap(), "not yours\n");
        assert!(!t.state_dir().join("sessions/x.json").exists());
        assert_eq!(t.git(&["branch", "--list", "codex/x"]), "");
    });
}

#[test]
fn a_git_error_during_worktree_add_rolls_back() {
    each_git(|t| {
        // A dir where git takes the branch's lock makes git refuse to create the branch (a
        // stale lock *file* would be moved aside as a killed git's).
        std::fs::create_dir_all(t.repo.join(".git/refs/heads/codex/x.lock/held"))
            .expect("lock dir");
        let (code, out, err) = run(t.codex(&["session", "add", "x"]));
        assert_eq!(code, 1, "{err}");
        assert_eq!(out, "");
        assert!(err.contains("cannot create the worktree"), "{err}");
        assert_no_trace(t, "x");
    });
}

#[test]
fn an_existing_branch_is_refused() {
    each_git(|t| {
        t.git(&["branch", "codex/x"]);
        t.codex(&["init"]).assert().success();
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "add", "x"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("branch 'codex/x' already exists"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "the refusal");
    });
}

#[test]
fn head_means_the_head_of_the_worktree_the_command_runs_in() {
    each_git(|t| {
        let outer = t.add("outer");
        common::write_file(&outer.join("outer.txt"), "o\n");
        t.git_in(&outer, &["add", "outer.txt"]);
        t.git_in(&outer, &["commit", "-q", "-m", "outer work"]);
        let (code, _, err) = run(t.codex_in(&outer, &["session", "add", "inner"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            t.git(&["rev-parse", "codex/inner"]),
            t.git(&["rev-parse", "codex/outer"])
        );
        let record =
            json(&std::fs::read_to_string(t.state_dir().join("sessions/inner.json")).unwrap());
        assert_eq!(record["baseRef"], "refs/heads/codex/outer");
    });
}

#[test]
fn a_repository_without_commits_is_told_to_commit_first() {
    each_git(|t| {
        t.git_in(&t.root(), &["init", "-q", "-b", "main", "empty"]);
        let before = t.disk();
        let (code, _, err) = run(t.codex_in(&t.root().join("empty"), &["session", "add", "x"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no commits yet"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "a repository without commits");
    });
}

/// A setup command may start a server for the session and end: `add` ends with it, and what
/// it started in the background runs on (it ends only with git-codex while setup runs).
#[test]
fn a_setup_command_may_leave_a_background_process_running() {
    each_git(|t| {
        let stop = t.root().join("stop");
        let ended = t.root().join("bg-ended");
        let script = format!(
            "(n=0; while [ ! -e '{stop}' ] && [ $n -lt 1500 ]; do /bin/sleep 0.02; n=$((n+1)); done; touch '{ended}') >/dev/null 2>&1 &",
            stop = stop.display(),
            ended = ended.display()
        );
        t.set_config(&format!(
            "[session]\nsetup = [[\"/bin/sh\", \"-c\", {script:?}]]\n"
        ));
        t.add("x");
        assert!(!ended.exists(), "add waited for the background process");
        common::write_file(&stop, "");
        common::wait_until("the background process to end", || ended.exists());
    });
}
