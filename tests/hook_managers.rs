//! The gate through the hook managers people already use (husky 9, lefthook 2, pre-commit 4,
//! git-lfs), each driven for real, installed before and after `git codex init` and installed
//! again afterwards: the manager's own hooks still run, an unapproved merge and push are
//! refused, and where a manager took git-codex's hooks away every session command says so,
//! with the command that puts them back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestEnv, each_git, run};

/// A tool on the test's PATH, or a printed reason to skip (a failure with CI=true).
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have {name} (.ci/run installs it)"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

/// The Python that has pre-commit (pip's), or a printed reason to skip.
fn pre_commit_python() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys, pre_commit; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if out.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have pre-commit (.ci/run installs it)"
        );
        eprintln!("skipping: pre-commit is not installed for python3");
    }
    out.map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// `program args` in `dir` with the test's environment; panics when it fails.
fn tool_in(t: &TestEnv, dir: &Path, program: &Path, args: &[&str]) -> String {
    // The tool's own dir first: an npm tool's `env node` lives beside it.
    let mut vars = t.vars();
    if let (Some(bin), Some(path)) = (program.parent(), vars.iter_mut().find(|(k, _)| k == "PATH"))
    {
        path.1 = format!("{}:{}", bin.display(), path.1);
    }
    let out = Command::new(program)
        .env_clear()
        .envs(vars)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program:?} {args:?} failed: {text}");
    text
}

fn marker(t: &TestEnv) -> PathBuf {
    t.root().join("hooks-ran")
}

/// What the manager's own hooks wrote so far; emptied.
fn ran(t: &TestEnv) -> String {
    let text = std::fs::read_to_string(marker(t)).unwrap_or_default();
    let _ = std::fs::remove_file(marker(t));
    text
}

fn commit_file(t: &TestEnv, name: &str) {
    t.write(name, &format!("{name}\n"));
    t.git(&["add", name]);
    t.git(&["commit", "-q", "-m", name]);
}

/// A session `id` with one commit nobody approved, and a bare remote holding main.
fn unapproved_session(t: &TestEnv, id: &str) -> String {
    let wt = t.add(id);
    t.commit_in(&wt, &format!("{id}.txt"), "agent work\n");
    format!("codex/{id}")
}

/// The gate holds: merging and pushing the unapproved branch onto main are refused and move
/// nothing.
fn assert_gate_holds(t: &TestEnv, branch: &str, remote: &str, when: &str) {
    assert_merge_refused(t, branch, when);
    let bare = Path::new(remote.strip_prefix("file://").unwrap_or(remote));
    let remote_main = t.git_in(bare, &["rev-parse", "main"]);
    let push = t.git_output(&t.repo, &["push", "-q", remote, &format!("{branch}:main")]);
    assert!(!push.status.success(), "{when}: the unapproved push landed");
    assert_eq!(
        t.git_in(bare, &["rev-parse", "main"]),
        remote_main,
        "{when}: the remote's main moved"
    );
}

/// Merging the unapproved branch into main is refused and main stays (a refused fast-forward
/// leaves the files, as git says; they are put back).
fn assert_merge_refused(t: &TestEnv, branch: &str, when: &str) {
    let main = t.git(&["rev-parse", "main"]);
    let merge = t.git_output(&t.repo, &["merge", "-q", "--no-edit", branch]);
    assert!(
        !merge.status.success(),
        "{when}: the unapproved merge landed"
    );
    let _ = t.git_output(&t.repo, &["merge", "--abort"]);
    t.git(&["reset", "-q", "--merge"]);
    assert_eq!(t.git(&["rev-parse", "main"]), main, "{when}: main moved");
}

/// Every session command warns, naming the repair.
fn assert_session_commands_warn(t: &TestEnv, id: &str, says: &str) {
    let (code, _, err) = run(t.codex(&["session", "add", id]));
    assert_eq!(code, 0, "{err}");
    for args in [
        vec!["session", "review", id],
        vec!["session", "run", id, "--", "true"],
    ] {
        let (_, _, err2) = run(t.codex(&args));
        assert!(
            err2.contains("review gate is not in place"),
            "{args:?}: {err2}"
        );
    }
    assert!(err.contains("review gate is not in place"), "{err}");
    assert!(err.contains(says), "{err}");
    assert!(err.contains("git codex hooks install"), "{err}");
    let (code, _, _) = run(t.codex(&["session", "remove", id, "--force"]));
    assert_eq!(code, 0);
}

fn hooks_status(t: &TestEnv) -> serde_json::Value {
    let (code, out, err) = run(t.codex(&["hooks", "status", "--json"]));
    assert_eq!(code, 0, "{err}");
    common::json(&out)
}

fn hook_json<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["hooks"]
        .as_array()
        .and_then(|hooks| hooks.iter().find(|h| h["name"] == name))
        .expect("hook listed")
}

fn init(t: &TestEnv) -> String {
    let (code, out, err) = run(t.codex(&["init"]));
    assert_eq!(code, 0, "{err}");
    format!("{out}{err}")
}

fn husky_scripts(t: &TestEnv) {
    let mark = marker(t).display().to_string();
    t.write(
        ".husky/pre-commit",
        &format!("echo husky-pre-commit >> '{mark}'\n"),
    );
    t.write(
        ".husky/pre-push",
        &format!("echo husky-pre-push >> '{mark}'\n"),
    );
    t.git(&["add", ".husky/pre-commit", ".husky/pre-push"]);
    t.git(&["commit", "-q", "-m", "husky scripts"]);
}

#[test]
fn husky_installed_before_init_still_runs_and_the_gate_holds_through_npm_install() {
    let Some(husky) = tool("husky") else { return };
    each_git(|t| {
        let remote = t.bare_clone("remote.git").display().to_string();
        tool_in(t, &t.repo, &husky, &[]);
        husky_scripts(t);
        ran(t);
        let said = init(t);
        assert!(said.contains("husky's pre-commit"), "{said}");
        commit_file(t, "a.txt");
        assert_eq!(
            ran(t),
            "husky-pre-commit\n",
            "husky's own hook no longer runs"
        );
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &remote, "after init");
        t.git(&["push", "-q", &remote, "main"]);
        assert!(
            ran(t).contains("husky-pre-push"),
            "husky's pre-push no longer runs"
        );

        // npm install runs husky again (its prepare script): its stubs replace ours.
        tool_in(t, &t.repo, &husky, &[]);
        let status = hooks_status(t);
        assert_eq!(status["effective"], false);
        assert_eq!(hook_json(&status, "pre-push")["manager"], "husky");
        assert_eq!(hook_json(&status, "reference-transaction")["state"], "ours");
        assert_session_commands_warn(t, "s2", "husky");
        // The reference-transaction gate is not husky's to rewrite: merging is still refused.
        assert_merge_refused(t, &branch, "after husky ran again");

        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(hooks_status(t)["problems"], serde_json::json!([]));
        commit_file(t, "b.txt");
        assert_eq!(ran(t), "husky-pre-commit\n");
        assert_gate_holds(t, &branch, &remote, "after hooks install");
    });
}

#[test]
fn husky_adopted_after_init_is_named_and_one_command_puts_the_gate_back() {
    let Some(husky) = tool("husky") else { return };
    each_git(|t| {
        let remote = t.bare_clone("remote.git").display().to_string();
        init(t);
        tool_in(t, &t.repo, &husky, &[]);
        husky_scripts(t);
        ran(t);
        let (code, out, err) = run(t.codex(&["doctor"]));
        assert_ne!(code, 0);
        assert!(
            out.contains("core.hooksPath now points at") && out.contains("husky"),
            "{out}{err}"
        );
        assert_session_commands_warn(t, "s2", "core.hooksPath now points at");

        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        let status = hooks_status(t);
        assert_eq!(status["manager"], "husky");
        assert_eq!(status["problems"], serde_json::json!([]));
        commit_file(t, "a.txt");
        assert_eq!(ran(t), "husky-pre-commit\n");
        // In a session worktree, git runs the main worktree's hooks (husky's too).
        let branch = unapproved_session(t, "s1");
        assert_eq!(
            ran(t),
            "husky-pre-commit\n",
            "no hook ran in the session worktree"
        );
        assert_gate_holds(t, &branch, &remote, "after hooks install");
        // Uninstall leaves husky's hooks as husky wrote them, running.
        let (code, _, err) = run(t.codex(&["hooks", "uninstall"]));
        assert_eq!(code, 0, "{err}");
        commit_file(t, "b.txt");
        assert_eq!(ran(t), "husky-pre-commit\n");
    });
}

fn lefthook_config(t: &TestEnv) {
    let mark = marker(t).display().to_string();
    t.write(
        "lefthook.yml",
        &format!(
            "pre-commit:\n  jobs:\n    - run: echo lefthook-pre-commit >> '{mark}'\npre-push:\n  jobs:\n    - run: echo lefthook-pre-push >> '{mark}'\n"
        ),
    );
    t.git(&["add", "lefthook.yml"]);
    t.git(&["commit", "-q", "-m", "lefthook"]);
}

#[test]
fn lefthook_before_and_after_init_keeps_running_and_its_reinstall_is_named() {
    let Some(lefthook) = tool("lefthook") else {
        return;
    };
    each_git(|t| {
        let remote = t.bare_clone("remote.git").display().to_string();
        lefthook_config(t);
        tool_in(t, &t.repo, &lefthook, &["install"]);
        let said = init(t);
        assert!(said.contains("lefthook's pre-push"), "{said}");
        ran(t);
        commit_file(t, "a.txt");
        assert!(
            ran(t).contains("lefthook-pre-commit"),
            "lefthook's hook no longer runs"
        );
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &remote, "lefthook before init");
        t.git(&["push", "-q", &remote, "main"]);
        assert!(ran(t).contains("lefthook-pre-push"));

        // lefthook install again (or its auto-sync): ours become *.old, which it never runs.
        tool_in(t, &t.repo, &lefthook, &["install"]);
        assert!(t.repo.join(".git/hooks/pre-push.old").exists());
        let status = hooks_status(t);
        let pre_push = hook_json(&status, "pre-push");
        assert_eq!(pre_push["state"], "foreign");
        assert_eq!(pre_push["manager"], "lefthook");
        assert_eq!(pre_push["oursAt"], "pre-push.old");
        let (_, out, _) = run(t.codex(&["hooks", "status"]));
        assert!(
            out.contains("pre-push.old, which lefthook never runs"),
            "{out}"
        );
        assert_session_commands_warn(t, "s2", "lefthook");

        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        assert!(!t.repo.join(".git/hooks/pre-push.old").exists());
        assert_eq!(hooks_status(t)["problems"], serde_json::json!([]));
        commit_file(t, "b.txt");
        assert!(ran(t).contains("lefthook-pre-commit"));
        assert_gate_holds(t, &branch, &remote, "after hooks install");
    });
}

#[test]
fn lefthook_installed_after_init_is_named_and_repaired() {
    let Some(lefthook) = tool("lefthook") else {
        return;
    };
    each_git(|t| {
        let remote = t.bare_clone("remote.git").display().to_string();
        init(t);
        lefthook_config(t);
        tool_in(t, &t.repo, &lefthook, &["install"]);
        assert_session_commands_warn(t, "s2", "lefthook");
        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        ran(t);
        commit_file(t, "a.txt");
        assert!(ran(t).contains("lefthook-pre-commit"));
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &remote, "lefthook after init");
    });
}

/// A pre-commit hook that writes `pre-commit-STAGE` to the marker.
fn stage_hook(mark: &str, stage: &str) -> String {
    format!(
        "  - id: mark-{stage}\n    name: mark {stage}\n    entry: sh -c 'echo pre-commit-{stage} >> \"{mark}\"' --\n    language: system\n    always_run: true\n    pass_filenames: false\n    stages: [{stage}]\n"
    )
}

/// `pre-commit install` for the pre-commit and pre-push hooks, as a person runs it.
fn pre_commit_install(t: &TestEnv, python: &Path) {
    let install = [
        "-m",
        "pre_commit",
        "install",
        "-t",
        "pre-commit",
        "-t",
        "pre-push",
    ];
    tool_in(t, &t.repo, python, &install);
}

fn pre_commit_config(t: &TestEnv) {
    let mark = marker(t).display().to_string();
    t.write(
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n- repo: local\n  hooks:\n{}{}",
            stage_hook(&mark, "pre-commit"),
            stage_hook(&mark, "pre-push")
        ),
    );
    t.git(&["add", ".pre-commit-config.yaml"]);
    t.git(&["commit", "-q", "-m", "pre-commit"]);
}

#[test]
fn pre_commit_after_init_runs_ours_as_legacy_and_status_and_uninstall_know_it() {
    let Some(python) = pre_commit_python() else {
        return;
    };
    each_git(|t| {
        let remote = t.bare_clone("remote.git").display().to_string();
        init(t);
        pre_commit_config(t);
        pre_commit_install(t, &python);
        let status = hooks_status(t);
        assert_eq!(status["effective"], true, "{status}");
        assert_eq!(hook_json(&status, "pre-push")["oursAt"], "pre-push.legacy");
        assert_eq!(hook_json(&status, "pre-push")["manager"], "pre-commit");
        let (_, out, _) = run(t.codex(&["hooks", "status"]));
        assert!(
            out.contains("pre-commit runs it as pre-push.legacy"),
            "{out}"
        );
        let (code, _, err) = run(t.codex(&["session", "add", "s2"]));
        assert_eq!(code, 0);
        assert!(!err.contains("review gate is not in place"), "{err}");

        ran(t);
        commit_file(t, "a.txt");
        assert!(
            ran(t).contains("pre-commit-pre-commit"),
            "pre-commit's hook no longer runs"
        );
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &remote, "pre-commit after init");

        // Installing again keeps pre-commit's hook on top and ours where it runs it.
        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        assert!(!t.repo.join(".git/hooks/pre-push.codex-chained").exists());
        assert_gate_holds(t, &branch, &remote, "after hooks install");

        let (code, _, err) = run(t.codex(&["hooks", "uninstall"]));
        assert_eq!(code, 0, "{err}");
        assert!(!t.repo.join(".git/hooks/pre-push.legacy").exists());
        assert!(!t.repo.join(".git/hooks/pre-commit.legacy").exists());
        commit_file(t, "b.txt");
        assert!(ran(t).contains("pre-commit-pre-commit"));
    });
}

#[test]
fn pre_commit_before_init_is_chained_and_keeps_running() {
    let Some(python) = pre_commit_python() else {
        return;
    };
    each_git(|t| {
        let remote = t.bare_clone("remote.git").display().to_string();
        pre_commit_config(t);
        pre_commit_install(t, &python);
        let said = init(t);
        assert!(said.contains("pre-commit's pre-push"), "{said}");
        ran(t);
        commit_file(t, "a.txt");
        assert!(ran(t).contains("pre-commit-pre-commit"));
        t.git(&["push", "-q", &remote, "main"]);
        assert!(ran(t).contains("pre-commit-pre-push"));
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &remote, "pre-commit before init");

        // pre-commit installed again: it runs ours as its legacy hook, and ours does not run
        // pre-commit's older copy a second time (pre-commit refuses that: every commit failed).
        pre_commit_install(t, &python);
        ran(t);
        commit_file(t, "b.txt");
        assert_eq!(ran(t), "pre-commit-pre-commit\n");
        assert_eq!(hooks_status(t)["effective"], true);
        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        assert!(!t.repo.join(".git/hooks/pre-commit.codex-chained").exists());
        commit_file(t, "c.txt");
        assert_eq!(ran(t), "pre-commit-pre-commit\n");
        assert_gate_holds(t, &branch, &remote, "pre-commit installed again");
    });
}

fn lfs_file(t: &TestEnv) {
    t.git(&["lfs", "track", "*.bin"]);
    t.write("big.bin", "large content\n");
    t.git(&["add", ".gitattributes", "big.bin"]);
    t.git(&["commit", "-q", "-m", "lfs"]);
}

/// The LFS objects a bare remote holds.
fn lfs_objects(remote: &Path) -> usize {
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    count(&remote.join("lfs/objects"))
}

#[test]
fn git_lfs_before_init_is_chained_and_after_init_is_named_with_its_repair() {
    if tool("git-lfs").is_none() {
        return;
    }
    each_git(|t| {
        // Before init: git-codex chains git-lfs's hooks, and a push sends the LFS objects.
        let remote = t.bare_clone("remote.git");
        let url = format!("file://{}", remote.display());
        t.git(&["lfs", "install", "--local"]);
        let said = init(t);
        assert!(said.contains("git-lfs's pre-push"), "{said}");
        lfs_file(t);
        t.git(&["push", "-q", &url, "main"]);
        assert_eq!(lfs_objects(&remote), 1, "git-lfs's pre-push did not run");
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &url, "lfs before init");
    });
    each_git(|t| {
        // After init: git lfs install refuses; git-codex names it and how to repair it.
        let remote = t.bare_clone("remote.git");
        let url = format!("file://{}", remote.display());
        init(t);
        let lfs = t.git_output(&t.repo, &["lfs", "install", "--local"]);
        assert!(!lfs.status.success());
        lfs_file(t);
        let check = common::doctor_check(t, "hooks");
        assert_eq!(check["status"], "warn", "{check}");
        assert!(
            check["detail"].as_str().unwrap_or("").contains("git-lfs"),
            "{check}"
        );
        let hint = check["hint"].as_str().unwrap_or("").to_string();
        assert!(
            hint.contains("git lfs update --force") && hint.contains("git codex hooks install")
        );

        t.git(&["lfs", "update", "--force"]);
        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(common::doctor_check(t, "hooks")["status"], "ok");
        t.git(&["push", "-q", &url, "main"]);
        assert_eq!(lfs_objects(&remote), 1, "git-lfs's pre-push did not run");
        let branch = unapproved_session(t, "s1");
        assert_gate_holds(t, &branch, &url, "lfs after init");
    });
}

#[test]
fn a_chained_hook_still_finds_its_work_from_its_own_name() {
    each_git(|t| {
        // One dispatcher linked under several names, in sh and in bash.
        let mark = marker(t).display().to_string();
        for (file, shell) in [
            ("dispatch.sh", "#!/bin/sh"),
            ("dispatch.bash", "#!/usr/bin/env bash"),
        ] {
            common::write_file(
                &t.root().join(file),
                &format!("{shell}\necho \"{file} as $(basename \"$0\") $*\" >> '{mark}'\n"),
            );
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(t.root().join(file), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let hooks = t.repo.join(".git/hooks");
        std::os::unix::fs::symlink(t.root().join("dispatch.sh"), hooks.join("pre-commit"))
            .expect("link");
        std::os::unix::fs::symlink(t.root().join("dispatch.bash"), hooks.join("post-checkout"))
            .expect("link");
        init(t);
        ran(t);
        commit_file(t, "a.txt");
        t.git(&["checkout", "-q", "-b", "other"]);
        let seen = ran(t);
        assert!(seen.contains("dispatch.sh as pre-commit \n"), "{seen}");
        assert!(seen.contains("dispatch.bash as post-checkout "), "{seen}");
    });
}

#[test]
fn review_names_a_sessions_change_to_what_pre_commit_or_lefthook_runs() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, ".pre-commit-config.yaml", "repos: []\n");
        t.commit_in(&wt, "lefthook.yml", "pre-commit:\n  jobs: []\n");
        t.commit_in(&wt, "src.txt", "code\n");
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("changes .pre-commit-config.yaml, which pre-commit runs"),
            "{err}"
        );
        assert!(
            err.contains("changes lefthook.yml, which lefthook runs"),
            "{err}"
        );
        assert!(!err.contains("changes src.txt"), "{err}");
    });
}
