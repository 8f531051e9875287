//! The server trusts only the server (SPEC §6): pre-receive reads the server repository's own
//! config file, never the pusher's environment or user file, and a push may not shrink what
//! the server counts as a session's commits (deleting or rewinding session branches and
//! `refs/codex/*`) while it lands on a protected branch. Each attack runs over a local path
//! (which carries the pusher's environment) and over `git daemon` (which carries none).

mod common;

use std::os::unix::process::CommandExt as _;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::{TestEnv, each_git, run, write_file};

/// `git daemon` serving the temp root with receive-pack on, killed when dropped with its whole
/// process group (`git daemon` runs `git-daemon` as a child of its own).
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(t: &TestEnv) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let child = std::process::Command::new(&t.git)
            .env_clear()
            .envs(t.vars())
            .args([
                "daemon",
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", t.root().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("git daemon");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "git daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon { child, port }
    }

    fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: kill of the process group this test made for the daemon.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// A bare server with the server hook, its config, and the repository's `origin`.
fn server(t: &TestEnv, config: &str) -> PathBuf {
    let server = t.bare_clone("server.git");
    let (code, _, err) = run(t.codex_in(&server, &["hooks", "install", "--server"]));
    assert_eq!(code, 0, "{err}");
    write_file(&server.join("codex/config.toml"), config);
    t.git(&[
        "remote",
        "add",
        "origin",
        server.to_str().expect("utf-8 path"),
    ]);
    server
}

/// Pushes `refspecs` to `url` skipping the local hooks, with `env` added (the pusher's).
fn push(t: &TestEnv, url: &str, refspecs: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(&t.git);
    cmd.env_clear()
        .envs(t.vars())
        .envs(env.iter().copied())
        .current_dir(&t.repo)
        .args(["push", "--no-verify", "--porcelain", url])
        .args(refspecs);
    cmd.output().expect("git push")
}

fn server_refs(t: &TestEnv, server: &Path) -> String {
    t.git_in(
        server,
        &["for-each-ref", "--format=%(objectname) %(refname)"],
    )
}

/// A session `id` with one reviewed, unapproved commit, pushed to the server with its base;
/// returns (base, tip).
fn pushed_session(t: &TestEnv, id: &str, file: &str) -> (String, String) {
    let wt = t.add(id);
    t.commit_in(&wt, file, &format!("{id}\n"));
    let base = t.git(&["rev-parse", &format!("refs/codex/bases/{id}")]);
    let tip = t.git(&["rev-parse", &format!("codex/{id}")]);
    let branch = format!("codex/{id}");
    let base_ref = format!("refs/codex/bases/{id}");
    let out = push(t, "origin", &[&branch, &base_ref], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (base, tip)
}

/// Asserts that pushing `refspecs` is refused with `expected` in the message and changes no
/// ref on the server.
fn refused(t: &TestEnv, server: &Path, url: &str, refspecs: &[&str], expected: &str) {
    let before = server_refs(t, server);
    let out = push(t, url, refspecs, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{url} {refspecs:?} was accepted");
    assert!(err.contains(expected), "{url} {refspecs:?}: {err}");
    assert_eq!(server_refs(t, server), before, "{url} {refspecs:?}");
}

#[test]
fn the_pushers_environment_and_user_file_do_not_reach_the_server_gate() {
    each_git(|t| {
        let server = server(t, "");
        let (_, tip) = pushed_session(t, "s", "s.txt");
        let onto_main = format!("{tip}:refs/heads/main");
        let evil_home = t.root().join("evil-home");
        write_file(
            &evil_home.join("git-codex/config.toml"),
            "[review]\nrequire_approval = false\nprotected = [\"nothing\"]\n",
        );
        let evil_home = evil_home.display().to_string();
        let attacks: &[&[(&str, &str)]] = &[
            &[("GIT_CODEX_REVIEW_REQUIRE_APPROVAL", "false")],
            &[("GIT_CODEX_REVIEW_PROTECTED", "nothing")],
            &[("GIT_CODEX_SESSION_BRANCH_PREFIX", "elsewhere/")],
            &[("GIT_CODEX_REVIEW_PROTECTED", "[")],
            &[("XDG_CONFIG_HOME", &evil_home)],
        ];
        for env in attacks {
            let before = server_refs(t, &server);
            let out = push(t, "origin", &[&onto_main], env);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{env:?}: the push landed");
            assert!(
                err.contains("session 's'") && err.contains("no approval"),
                "{env:?}: {err}"
            );
            assert_eq!(server_refs(t, &server), before, "{env:?}");
        }
        // The server's own file is what counts: switched off there, the same push lands.
        write_file(
            &server.join("codex/config.toml"),
            "[review]\nrequire_approval = false\n",
        );
        let out = push(t, "origin", &[&onto_main], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(t.git_in(&server, &["rev-parse", "main"]), tip);
    });
}

#[test]
fn a_server_config_it_cannot_read_refuses_every_push() {
    each_git(|t| {
        let server = server(t, "[review\n");
        t.write("x.txt", "x\n");
        t.git(&["add", "x.txt"]);
        t.git(&["commit", "-q", "-m", "x"]);
        let before = server_refs(t, &server);
        let out = push(t, "origin", &["main"], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted");
        assert!(
            err.contains("cannot load its configuration") && err.contains("config.toml"),
            "{err}"
        );
        assert_eq!(server_refs(t, &server), before);
        write_file(
            &server.join("codex/config.toml"),
            "[review]\nprotected = [\"release**\"]\n",
        );
        let out = push(t, "origin", &["main"], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("release**"), "{err}");
        std::fs::remove_file(server.join("codex/config.toml")).unwrap();
        let out = push(t, "origin", &["main"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Every attack that shrinks what the server counts as a session's commits while landing
/// them, over a local path and over git daemon.
#[test]
fn a_push_may_not_delete_or_rewind_session_refs_while_it_lands() {
    each_git(|t| {
        let server = server(t, "[review]\nprotected = [\"main\", \"release/*\"]\n");
        let daemon = Daemon::start(t);
        let (base, tip) = pushed_session(t, "s", "s.txt");
        // An approval of an earlier commit of the session, on the server.
        let wt = t.worktree("s");
        t.codex(&["session", "review", "s", "--approve"])
            .assert()
            .success();
        let out = push(t, "origin", &["refs/codex/approvals/s"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let approved = tip.clone();
        t.commit_in(&wt, "more.txt", "more\n");
        let tip = t.git(&["rev-parse", "codex/s"]);
        let out = push(t, "origin", &["codex/s"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let main = format!("{tip}:refs/heads/main");
        let release = format!("{tip}:refs/heads/release/1");
        let rewind_to_base = format!("+{base}:refs/heads/codex/s");
        let rewind_to_approved = format!("+{approved}:refs/heads/codex/s");
        let rename = format!("{tip}:refs/heads/codex/renamed");
        let base_to_tip = format!("+{tip}:refs/codex/bases/s");
        let base_to_approved = format!("+{approved}:refs/codex/bases/s");
        for url in [server.display().to_string(), daemon.url("server.git")] {
            let url = url.as_str();
            refused(
                t,
                &server,
                url,
                &[&main, ":refs/heads/codex/s"],
                "deletes refs/heads/codex/s",
            );
            refused(
                t,
                &server,
                url,
                &[&main, &rewind_to_base],
                "not a fast-forward",
            );
            refused(
                t,
                &server,
                url,
                &[&main, &rewind_to_approved],
                "not a fast-forward",
            );
            refused(
                t,
                &server,
                url,
                &[&main, ":refs/heads/codex/s", &rename],
                "deletes refs/heads/codex/s",
            );
            refused(
                t,
                &server,
                url,
                &[&release, ":refs/heads/codex/s"],
                "deletes refs/heads/codex/s",
            );
            refused(
                t,
                &server,
                url,
                &[&main, ":refs/codex/bases/s"],
                "deletes refs/codex/bases/s",
            );
            refused(t, &server, url, &[&main, &base_to_tip], "base never moves");
            refused(t, &server, url, &[&base_to_tip], "base never moves");
            refused(t, &server, url, &[&base_to_approved], "base never moves");
            refused(
                t,
                &server,
                url,
                &[&main, ":refs/codex/approvals/s"],
                "deletes refs/codex/approvals/s",
            );
            // Without touching any ref, the gate itself refuses: the approval is stale.
            refused(t, &server, url, &[&main], "session 's'");
        }
        // Alone (landing nothing), deleting a session branch is fine.
        let out = push(t, &daemon.url("server.git"), &[":refs/heads/codex/s"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

#[test]
fn a_session_branch_the_server_holds_gets_no_late_base() {
    each_git(|t| {
        let server = server(t, "");
        let daemon = Daemon::start(t);
        let wt = t.add("s");
        t.commit_in(&wt, "s.txt", "s\n");
        let tip = t.git(&["rev-parse", "codex/s"]);
        let out = push(t, "origin", &["codex/s"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A base at the tip would make the session own nothing.
        let late = format!("{tip}:refs/codex/bases/s");
        for url in [server.display().to_string(), daemon.url("server.git")] {
            refused(t, &server, &url, &[&late], "already holds");
        }
        let main = format!("{tip}:refs/heads/main");
        refused(
            t,
            &server,
            &daemon.url("server.git"),
            &[&main],
            "session 's'",
        );
    });
}

#[test]
fn ledger_refs_never_go_away_or_back() {
    each_git(|t| {
        let server = server(t, "");
        let daemon = Daemon::start(t);
        let first = t.git(&["rev-parse", "main"]);
        t.write("x.txt", "x\n");
        t.git(&["add", "x.txt"]);
        t.git(&["commit", "-q", "-m", "x"]);
        let second = t.git(&["rev-parse", "main"]);
        let create = format!("{first}:refs/codex/ledger/s");
        let out = push(t, "origin", &[&create], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let forward = format!("{second}:refs/codex/ledger/s");
        let out = push(t, &daemon.url("server.git"), &[&forward], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back = format!("+{first}:refs/codex/ledger/s");
        // A ledger (or base) that is not a commit would break every later landing check.
        let blob = t.git(&["rev-parse", "main:x.txt"]);
        let blob_ledger = format!("{blob}:refs/codex/ledger/t");
        let blob_base = format!("{blob}:refs/codex/bases/t");
        let tree_base = format!("{second}^{{tree}}:refs/codex/bases/t");
        for url in [server.display().to_string(), daemon.url("server.git")] {
            refused(t, &server, &url, &[&blob_ledger], "must name a commit");
            refused(t, &server, &url, &[&blob_base], "must name a commit");
            refused(t, &server, &url, &[&tree_base], "must name a commit");
            refused(
                t,
                &server,
                &url,
                &[":refs/codex/ledger/s"],
                "ledgers are kept",
            );
            refused(t, &server, &url, &[&back], "not a fast-forward");
        }
    });
}

/// A session known to the server only through its ledger (its branch gone) still owns its
/// commits: landing them needs its approval.
#[test]
fn a_ledger_keeps_a_deleted_branchs_commits_session_commits() {
    each_git(|t| {
        let server = server(t, "");
        let (_, tip) = pushed_session(t, "s", "s.txt");
        let ledger = format!("{tip}:refs/codex/ledger/s");
        let out = push(t, "origin", &[&ledger], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = push(t, "origin", &[":refs/heads/codex/s"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let main = format!("{tip}:refs/heads/main");
        refused(
            t,
            &server,
            server.to_str().unwrap(),
            &[&main],
            "session 's'",
        );
    });
}

/// git moves the target of a symbolic ref and tells pre-receive only the name pushed.
#[test]
fn a_push_through_a_symbolic_ref_is_checked_as_the_branch_it_moves() {
    each_git(|t| {
        let server = server(t, "");
        let daemon = Daemon::start(t);
        t.git_in(
            &server,
            &["symbolic-ref", "refs/heads/trunk", "refs/heads/main"],
        );
        t.git_in(
            &server,
            &["symbolic-ref", "refs/heads/alias", "refs/heads/trunk"],
        );
        let (_, tip) = pushed_session(t, "s", "s.txt");
        for url in [server.display().to_string(), daemon.url("server.git")] {
            for name in ["trunk", "alias"] {
                let spec = format!("{tip}:refs/heads/{name}");
                refused(t, &server, &url, &[&spec], "session 's'");
            }
        }
    });
}
