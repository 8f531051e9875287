//! `hooks install | uninstall | status`, chaining, post-checkout pruning, the server hook,
//! config changes seen at once, and a missing binary.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{TestEnv, each_git, json, run, write_file};

fn executable(path: &Path, text: &str) {
    write_file(path, text);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn hooks_dir(t: &TestEnv) -> std::path::PathBuf {
    t.repo.join(".git/hooks")
}

const NAMES: [&str; 5] = [
    "reference-transaction",
    "pre-merge-commit",
    "pre-commit",
    "pre-push",
    "post-checkout",
];

#[test]
fn init_installs_every_hook_and_uninstall_restores_the_users_byte_for_byte() {
    each_git(|t| {
        let users = "#!/bin/sh\n# the user's own hook\ncat >> \"$(git rev-parse --git-common-dir)/seen-by-user\"\n";
        executable(&hooks_dir(t).join("reference-transaction"), users);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("chaining your reference-transaction"), "{err}");
        for name in NAMES {
            let text = std::fs::read_to_string(hooks_dir(t).join(name)).unwrap();
            assert!(text.contains("# git-codex shim"), "{name}");
        }
        // The chained hook still runs, after ours, with the same stdin.
        t.git(&["update-ref", "refs/heads/scratch", "HEAD"]);
        let seen = std::fs::read_to_string(t.repo.join(".git/seen-by-user")).unwrap();
        assert!(seen.contains("refs/heads/scratch"), "{seen}");

        let (code, out, _) = run(t.codex(&["hooks", "status", "--json"]));
        assert_eq!(code, 0);
        let v = json(&out);
        assert_eq!(v["effective"], true, "{v}");
        let rt = v["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == "reference-transaction")
            .unwrap();
        assert_eq!(rt["state"], "ours");
        assert_eq!(rt["chained"], true);

        // The shim's cache and its sum, made by the hook, go with the hooks.
        let cache = ["hooks-cache.sh", "hooks-cache.sum"].map(|f| t.state_dir().join(f));
        assert!(cache.iter().all(|f| f.is_file()), "{cache:?}");
        t.codex(&["hooks", "uninstall"]).assert().success();
        assert!(cache.iter().all(|f| !f.exists()), "{cache:?}");
        assert_eq!(
            std::fs::read_to_string(hooks_dir(t).join("reference-transaction")).unwrap(),
            users
        );
        assert!(!hooks_dir(t).join("pre-commit").exists());
        let v = json(&run(t.codex(&["hooks", "status", "--json"])).1);
        assert_eq!(v["effective"], false);
        assert!(
            v["hooks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["state"] != "ours")
        );
        // Installing twice changes nothing the second time.
        t.codex(&["hooks", "install"]).assert().success();
        let first =
            std::fs::read(hooks_dir(t).join("reference-transaction.codex-chained")).unwrap();
        t.codex(&["hooks", "install"]).assert().success();
        assert_eq!(
            std::fs::read(hooks_dir(t).join("reference-transaction.codex-chained")).unwrap(),
            first
        );
    });
}

#[test]
fn a_chained_hook_that_fails_still_fails_the_operation() {
    each_git(|t| {
        executable(
            &hooks_dir(t).join("pre-commit"),
            "#!/bin/sh\necho user says no >&2\nexit 1\n",
        );
        t.codex(&["init"]).assert().success();
        t.write("x.txt", "x\n");
        t.git(&["add", "x.txt"]);
        let out = t.git_output(&t.repo, &["commit", "-q", "-m", "x"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("user says no"));
    });
}

#[test]
fn a_relative_hooks_path_is_pinned_for_session_worktrees() {
    each_git(|t| {
        // A session made before anyone set a relative core.hooksPath (husky's).
        let before = t.add("before");
        t.git(&["config", "core.hooksPath", ".husky/_"]);
        let (code, _, err) = run(t.codex(&["hooks", "install"]));
        assert_eq!(code, 0, "{err}");
        assert!(t.repo.join(".husky/_/reference-transaction").is_file());
        let main_dir = t.repo.join(".husky/_").display().to_string();
        // hooks install pointed the older session at the main worktree's hooks dir, and a new
        // session gets it from the start: git in either runs git-codex's hooks.
        let v = json(&run(t.codex(&["hooks", "status", "--json"])).1);
        assert_eq!(v["effective"], true, "{v}");
        let after = t.add("after");
        for wt in [&before, &after] {
            assert_eq!(
                t.git_in(
                    wt,
                    &["rev-parse", "--path-format=absolute", "--git-path", "hooks"]
                ),
                main_dir
            );
            t.commit_in(wt, "w.txt", "agent\n");
            let moved = t.git_output(wt, &["branch", "-f", "main", "HEAD"]);
            assert!(!moved.status.success(), "the gate did not run in {wt:?}");
        }
        assert_eq!(common::doctor_check(t, "hooks")["status"], "ok");

        // A session made while no pin was there is named, with the repair.
        t.git_in(
            &before,
            &["config", "--worktree", "--unset", "core.hooksPath"],
        );
        let v = json(&run(t.codex(&["hooks", "status", "--json"])).1);
        assert_eq!(v["effective"], false);
        assert!(
            v["problem"]
                .as_str()
                .unwrap_or("")
                .contains("session 'before'"),
            "{v}"
        );
        let check = common::doctor_check(t, "hooks");
        assert_eq!(check["status"], "fail");
        assert!(
            check["hint"]
                .as_str()
                .unwrap_or("")
                .contains("git codex hooks install")
        );
    });
}

#[test]
fn a_tracked_relative_hooks_dir_in_a_session_runs_the_persons_hooks_not_the_agents_copy() {
    each_git(|t| {
        let mark = t.root().join("which-hook");
        t.write(
            ".githooks/pre-commit",
            &format!("#!/bin/sh\necho person >> '{}'\n", mark.display()),
        );
        std::fs::set_permissions(
            t.repo.join(".githooks/pre-commit"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        t.git(&["add", ".githooks"]);
        t.git(&["commit", "-q", "-m", "hooks"]);
        t.git(&["config", "core.hooksPath", ".githooks"]);
        t.codex(&["init"]).assert().success();
        let wt = t.add("s");
        // The agent rewrites its copy of the tracked hook; the person then commits there.
        write_file(
            &wt.join(".githooks/pre-commit"),
            &format!("#!/bin/sh\necho agent >> '{}'\n", mark.display()),
        );
        t.commit_in(&wt, "w.txt", "work\n");
        assert_eq!(
            std::fs::read_to_string(&mark).unwrap_or_default(),
            "person\n"
        );
    });
}

#[test]
fn post_checkout_prunes_expired_sessions_and_never_fails() {
    each_git(|t| {
        let old = t.add("old");
        write_file(&old.join("wip.txt"), "saved\n");
        let fresh = t.add("fresh");
        t.git(&["branch", "other"]);
        // A file checkout returns at once.
        t.age("old", 3);
        t.git(&["checkout", "--", "README.md"]);
        assert!(old.exists(), "file checkouts do not prune");
        // A branch checkout prunes what expired, and only that.
        let out = t.git_output(&t.repo, &["switch", "-q", "other"]);
        assert!(out.status.success());
        assert!(!old.exists(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(fresh.exists());
        assert_eq!(
            t.git(&["show", "refs/codex/snapshots/old:wip.txt"]),
            "saved"
        );
        // A broken config makes pruning fail: git switch still succeeds, with a warning.
        t.age("fresh", 3);
        t.set_config("[session]\nmax_parallel = -1\n");
        let out = t.git_output(&t.repo, &["switch", "-q", "main"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("warning:"));
        assert!(fresh.exists());
    });
}

#[test]
fn raw_git_worktree_add_fires_post_checkout_without_harm() {
    each_git(|t| {
        let old = t.add("old");
        t.age("old", 3);
        let out = t.git_output(
            &t.repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "mine",
                t.root().join("mine").to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(t.root().join("mine/README.md").is_file());
        assert!(!old.exists(), "the expired session was pruned");
        // session add prunes too, and the session being created is untouched by its own hook.
        t.add("new");
        assert!(t.worktree("new").join("README.md").is_file());
    });
}

#[test]
fn config_changes_take_effect_at_once_in_the_hooks() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("a.txt"), "a\n");
        t.git_in(&wt, &["add", "a.txt"]);
        t.git_in(&wt, &["commit", "-q", "-m", "a"]);
        t.git(&["branch", "develop", "main"]);
        assert!(
            t.git_output(&t.repo, &["update-ref", "refs/heads/develop", "codex/s"])
                .status
                .success()
        );
        t.git(&["update-ref", "refs/heads/develop", "main"]);
        // A hand edit: develop is protected from now on.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let config = t.state_dir().join("config.toml");
        std::fs::write(&config, "[review]\nprotected = [\"main\", \"develop\"]\n").unwrap();
        let out = t.git_output(&t.repo, &["update-ref", "refs/heads/develop", "codex/s"]);
        assert!(!out.status.success(), "develop is protected now");
        assert!(String::from_utf8_lossy(&out.stderr).contains("session 's'"));
    });
}

#[test]
fn a_missing_binary_warns_and_lets_git_work() {
    each_git(|t| {
        let copy = t.root().join("bin/git-codex");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(common::BIN, &copy).unwrap();
        // Another test thread forking while the copy was open for writing can leave it "busy"
        // for a moment (ETXTBSY): try again, as a shell would.
        let mut tries = 0;
        let out = loop {
            let mut install = std::process::Command::new(&copy);
            install
                .env_clear()
                .envs(t.vars())
                .current_dir(&t.repo)
                .args(["init"]);
            match install.output() {
                Err(err) if err.raw_os_error() == Some(26) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.expect("run the copied binary"),
            }
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&copy).unwrap();
        let path = format!("{}:/usr/bin:/bin", t.git.parent().unwrap().display());
        let mut git = std::process::Command::new(&t.git);
        git.env_clear()
            .envs(t.vars())
            .env("PATH", &path)
            .current_dir(&t.repo);
        t.write("x.txt", "x\n");
        t.git(&["add", "x.txt"]);
        let out = git.args(["commit", "-q", "-m", "x"]).output().unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("git-codex is not installed"), "{err}");
        let mut status = t.codex(&["hooks", "status", "--json"]);
        status.env("PATH", &path);
        let (code, out, _) = run(status);
        assert_eq!(code, 0);
        let v = json(&out);
        assert_eq!(v["binaryMissing"], true, "{v}");
        assert_eq!(v["effective"], false, "{v}");
    });
}

#[test]
fn the_server_hook_refuses_unapproved_session_commits_and_accepts_approved_ones() {
    each_git(|t| {
        let server = t.bare_clone("server.git");
        let (code, _, err) = run(t.codex_in(&server, &["hooks", "install", "--server"]));
        assert_eq!(code, 0, "{err}");
        assert!(server.join("hooks/pre-receive").is_file());
        t.git(&["remote", "add", "origin", server.to_str().unwrap()]);

        let wt = t.add("s");
        write_file(&wt.join("a.txt"), "a\n");
        t.codex(&["session", "review", "s"]).assert().success();
        // An agent bypasses its local hooks; the server still refuses.
        assert!(
            t.git_without_hooks(&["merge", "-q", "--ff-only", "codex/s"])
                .status
                .success()
        );
        let push = |t: &TestEnv, refs: &[&str]| {
            let mut args = vec!["push", "--no-verify", "origin"];
            args.extend_from_slice(refs);
            t.git_output(&t.repo, &args)
        };
        let out = push(t, &["main", "codex/s", "refs/codex/bases/s"]);
        assert!(!out.status.success(), "refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("session 's'") && err.contains("no approval"),
            "{err}"
        );
        assert_ne!(
            t.git_in(&server, &["rev-parse", "main"]),
            t.git(&["rev-parse", "main"])
        );

        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        let out = push(
            t,
            &[
                "main",
                "codex/s",
                "refs/codex/bases/s",
                "refs/codex/approvals/s",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            t.git_in(&server, &["rev-parse", "main"]),
            t.git(&["rev-parse", "main"])
        );
        // An approval pushed earlier, on its own, counts for a later push of main.
        let wt = t.add("later");
        write_file(&wt.join("b.txt"), "b\n");
        t.codex(&["session", "review", "later", "--approve"])
            .assert()
            .success();
        let out = push(
            t,
            &[
                "codex/later",
                "refs/codex/bases/later",
                "refs/codex/approvals/later",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            t.git_without_hooks(&["merge", "-q", "--ff-only", "codex/later"])
                .status
                .success()
        );
        let out = push(t, &["main"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A session known to the server from an earlier push, never approved: refused.
        let wt = t.add("third");
        write_file(&wt.join("c.txt"), "c\n");
        t.codex(&["session", "review", "third"]).assert().success();
        let out = push(t, &["codex/third", "refs/codex/bases/third"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            t.git_without_hooks(&["merge", "-q", "--ff-only", "codex/third"])
                .status
                .success()
        );
        let out = push(t, &["main"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("session 'third'"));
    });
}
