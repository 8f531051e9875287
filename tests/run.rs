//! `session run`: the agent's environment, its network policy, logs, exit codes, the running
//! state, Codex CLI's terms, the review snapshot after; and `doctor`.

mod common;

use std::path::Path;

use common::{TestEnv, each_git, json, run, write_file};

/// Runs `session run ID -- ARGS…`; returns (exit code, stdout, stderr).
fn agent(t: &TestEnv, id: &str, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["session", "run", id, "--"];
    full.extend_from_slice(args);
    run(t.codex(&full))
}

fn env_of(stdout: &str) -> std::collections::BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_agent_gets_the_session_environment_and_nothing_from_git() {
    each_git(|t| {
        t.set_config(
            "[sandbox]\nallowed_domains = [\"api.openai.com\", \"registry.example.com\"]\n",
        );
        let wt = t.add("e");
        let mut cmd = t.codex(&["session", "run", "e", "--", "env"]);
        // As if called from inside a hook: none of these may reach the agent.
        cmd.env("GIT_DIR", t.repo.join(".git"))
            .env("GIT_WORK_TREE", &t.repo)
            .env("GIT_INDEX_FILE", t.repo.join(".git/index"))
            .env("GIT_PREFIX", "sub/");
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let env = env_of(&out);
        let tmp = t.state_dir().join("tmp/e").display().to_string();
        assert_eq!(env["CODEX_SESSION_ID"], "e");
        assert_eq!(env["CODEX_NETWORK"], "disabled");
        assert_eq!(
            env["CODEX_ALLOWED_DOMAINS"],
            "api.openai.com,registry.example.com"
        );
        assert_eq!(env["TMPDIR"], tmp);
        assert_eq!(env["TMP"], tmp);
        assert_eq!(env["TEMP"], tmp);
        assert_eq!(
            env["CODEX_LOG_DIR"],
            t.state_dir().join("logs/e").display().to_string()
        );
        assert_eq!(env["CODEX_PORT"], "20000");
        let (_, cwd, _) = agent(t, "e", &["/bin/sh", "-c", "pwd -P"]);
        assert_eq!(cwd.trim(), wt.display().to_string(), "runs in the worktree");
        for leak in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"] {
            assert!(!env.contains_key(leak), "{leak} leaked");
        }
        assert!(Path::new(&tmp).is_dir());
        assert!(err.contains("sandbox strict"), "{err}");
    });
}

#[test]
fn sessions_get_distinct_tmp_dirs_and_ports_and_the_named_network_variable() {
    each_git(|t| {
        t.set_config("[sandbox]\nenv_var = \"AGENT_NET\"\n");
        t.add("one");
        t.codex(&["session", "add", "two", "--sandbox", "network-enabled"])
            .assert()
            .success();
        let a = env_of(&agent(t, "one", &["env"]).1);
        let b = env_of(&agent(t, "two", &["env"]).1);
        assert_ne!(a["TMPDIR"], b["TMPDIR"]);
        assert_ne!(a["CODEX_PORT"], b["CODEX_PORT"]);
        assert_eq!(a["AGENT_NET"], "disabled");
        assert_eq!(b["AGENT_NET"], "enabled");
    });
}

#[test]
fn both_streams_are_logged_and_the_exit_code_comes_back() {
    each_git(|t| {
        t.add("l");
        let (code, out, err) = agent(
            t,
            "l",
            &[
                "/bin/sh",
                "-c",
                "echo to-stdout; echo to-stderr >&2; exit 7",
            ],
        );
        assert_eq!(code, 7, "{err}");
        assert_eq!(out, "to-stdout\n", "stdout passes through");
        assert!(err.contains("to-stderr"), "{err}");
        let logs: Vec<_> = std::fs::read_dir(t.state_dir().join("runs/l"))
            .unwrap()
            .flatten()
            .collect();
        let log = logs
            .iter()
            .find(|e| e.file_name().to_string_lossy().starts_with("run-"))
            .expect("a run log");
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains("sandbox strict (from sandbox.mode), network enforced: true"),
            "{text}"
        );
        assert!(
            text.contains("to-stdout") && text.contains("to-stderr"),
            "{text}"
        );
        let s = &t.show("l");
        assert_eq!(s["lastRun"]["exitCode"], 7);
        assert_eq!(s["agent"], serde_json::Value::Null);
        let (code, _, _) = agent(t, "l", &["/no/such/agent"]);
        assert_eq!(code, 1);
    });
}

/// Whether this machine can make a network namespace; with CI=true it must.
fn can_cut_network() -> bool {
    let works = |cmd: &mut std::process::Command| cmd.output().is_ok_and(|o| o.status.success());
    let ok = works(std::process::Command::new("bwrap").args([
        "--unshare-net",
        "--dev-bind",
        "/",
        "/",
        "--",
        "true",
    ])) || works(std::process::Command::new("unshare").args([
        "--user",
        "--map-current-user",
        "--net",
        "--",
        "true",
    ]));
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to cut the network (bwrap or unshare)"
        );
        eprintln!("skipping: neither bwrap nor unshare can make a network namespace here");
    }
    ok
}

#[test]
fn both_modes_cut_the_direct_network_and_loopback_still_works_inside() {
    if !can_cut_network() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED || echo REFUSED");
    each_git(|t| {
        t.add("strict");
        t.codex(&["session", "add", "open", "--sandbox", "network-enabled"])
            .assert()
            .success();
        let (_, out, err) = agent(t, "strict", &["bash", "-c", &probe]);
        assert_eq!(out.trim(), "REFUSED", "{err}");
        // network-enabled too: its way out is the proxy (tests/sandbox_holds.rs), never direct.
        let (_, out, err) = agent(t, "open", &["bash", "-c", &probe]);
        assert_eq!(out.trim(), "REFUSED", "{err}");
        let s = t.show("strict");
        assert_eq!(s["lastRun"]["networkEnforced"], true);
        // Inside, loopback is up: the agent can talk to itself (a dev server, its tests).
        let talk = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); \
                    socket.create_connection(s.getsockname()); print('LOOPBACK-OK')";
        let (_, out, err) = agent(t, "strict", &["/usr/bin/python3", "-c", talk]);
        assert_eq!(out.trim(), "LOOPBACK-OK", "{err}");
        // Files the agent writes belong to the user.
        agent(t, "strict", &["/bin/sh", "-c", "echo x > mine.txt"]);
        use std::os::unix::fs::MetadataExt as _;
        let owner = std::fs::metadata(t.worktree("strict").join("mine.txt"))
            .unwrap()
            .uid();
        assert_eq!(owner, std::fs::metadata(&t.repo).unwrap().uid());
    });
}

#[test]
fn without_a_way_to_cut_the_network_run_warns_or_refuses() {
    each_git(|t| {
        t.add("w");
        let bin_dir = common::codex_only_path();
        let mut cmd = t.codex(&["session", "run", "w", "--", "/bin/sh", "-c", "true"]);
        cmd.env("PATH", &bin_dir);
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("warning:") && err.contains("NOT cut"), "{err}");
        let s = t.show("w");
        assert_eq!(s["lastRun"]["networkEnforced"], false);
        let mut cmd = t.codex(&[
            "session",
            "run",
            "w",
            "--require-sandbox",
            "--",
            "/bin/sh",
            "-c",
            "true",
        ]);
        cmd.env("PATH", &bin_dir);
        let (code, _, err) = run(cmd);
        assert_eq!(code, 3, "{err}");
    });
}

#[test]
fn codex_cli_gets_the_policy_in_its_own_terms() {
    each_git(|t| {
        let bin = t.root().join("fake-bin");
        let codex = bin.join("codex");
        write_file(&codex, "#!/bin/sh\necho \"codex got: $*\"\n");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o755)).unwrap();
        t.add("c");
        t.codex(&["session", "add", "n", "--sandbox", "network-enabled"])
            .assert()
            .success();
        let path = format!(
            "{}:{}",
            bin.display(),
            t.vars().iter().find(|(k, _)| k == "PATH").unwrap().1
        );
        for (id, access) in [("c", "false"), ("n", "true")] {
            let mut cmd = t.codex(&["session", "run", id, "--", "codex", "exec", "fix it"]);
            cmd.env("PATH", &path);
            let (code, out, err) = run(cmd);
            assert_eq!(code, 0, "{err}");
            assert!(
                out.contains(&format!(
                    "codex got: -c sandbox_workspace_write.network_access={access} exec fix it"
                )),
                "{out}"
            );
        }
    });
}

#[test]
fn a_run_ends_in_a_review_snapshot() {
    each_git(|t| {
        t.add("r");
        let (code, _, err) = agent(t, "r", &["/bin/sh", "-c", "echo work > work.txt"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "codex/r"]),
            "codex(r): snapshot"
        );
        let tip = t.git(&["rev-parse", "codex/r"]);
        assert!(t.state_dir().join(format!("reviews/r/{tip}.md")).is_file());
        let s = t.show("r");
        assert_eq!(s["state"], "review-pending");
        // Without cleanup_on_exit the work stays uncommitted.
        t.codex(&["config", "set", "session.cleanup_on_exit", "false"])
            .assert()
            .success();
        t.add("k");
        agent(t, "k", &["/bin/sh", "-c", "echo work > work.txt"]);
        assert_eq!(
            t.git(&["rev-parse", "codex/k"]),
            t.git(&["rev-parse", "main"])
        );
    });
}

#[test]
fn a_running_agent_protects_its_expired_session() {
    each_git(|t| {
        t.add("busy");
        let mut child = std::process::Command::new(common::BIN)
            .env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["session", "run", "busy", "--", "sleep", "4"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let state = |t: &TestEnv| t.show("busy")["state"].clone();
        let started = std::time::Instant::now();
        while state(t) != "running" {
            assert!(
                started.elapsed().as_secs() < 10,
                "the run never showed as running"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Far past its ttl, yet alive: never pruned.
        let path = t.state_dir().join("sessions/busy.json");
        let mut record = json(&std::fs::read_to_string(&path).unwrap());
        record["lastActivity"] = "2000-01-01T00:00:00Z".into();
        std::fs::write(&path, serde_json::to_string(&record).unwrap()).unwrap();
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(t.worktree("busy").exists(), "{err}");
        assert_eq!(state(t), "running");
        // A pid reused by another process does not count.
        let mut record = json(&std::fs::read_to_string(&path).unwrap());
        record["agent"]["startTicks"] = 1.into();
        std::fs::write(&path, serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(state(t), "expired");
        child.kill().unwrap();
        child.wait().unwrap();
    });
}

#[test]
fn doctor_passes_on_a_healthy_repo_and_fails_with_hints_on_a_broken_one() {
    each_git(|t| {
        let wt = t.add("d");
        let (code, out, err) = run(t.codex(&["doctor", "--json"]));
        assert_eq!(code, 0, "{out}{err}");
        let v = json(&out);
        assert_eq!(v["ok"], true);
        let names: Vec<&str> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for name in [
            "git",
            "config",
            "state",
            "hooks",
            "sandbox",
            "domains",
            "client",
            "disk",
            "sessions",
            "orphans",
            "approvals",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        std::fs::remove_dir_all(&wt).unwrap();
        t.set_config("[session]\nttl = \"soon\"\n");
        let (code, out, _) = run(t.codex(&["doctor", "--json"]));
        assert_eq!(code, 1);
        let v = json(&out);
        assert_eq!(v["ok"], false);
        let status = |name: &str| {
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(status("config")["status"], "fail");
        assert!(
            status("config")["detail"]
                .as_str()
                .unwrap()
                .contains("session.ttl")
        );
        assert_eq!(status("sessions")["status"], "fail");
        assert!(
            status("sessions")["hint"]
                .as_str()
                .unwrap()
                .contains("prune")
        );
        // Hooks removed: doctor says so.
        t.codex(&["hooks", "uninstall"]).assert().success();
        let v = json(&run(t.codex(&["doctor", "--json"])).1);
        let hooks = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "hooks")
            .unwrap()
            .clone();
        assert_eq!(hooks["status"], "fail");
    });
}

#[test]
fn at_a_terminal_the_agent_gets_a_terminal_and_keys_reach_it() {
    let Some(python) = common::sandbox::python_for_a_terminal() else {
        return;
    };
    each_git(|t| {
        t.add("tty");
        // A person at a terminal: python's pty module plays the terminal and types a line.
        let driver = format!(
            r#"
import os, pty, time
pid, fd = pty.fork()
if pid == 0:
    os.chdir({repo:?})
    os.execv({bin:?}, ["git-codex", "session", "run", "tty", "--", "/bin/sh", "-c",
             "test -t 0 && test -t 1 && echo AGENT-HAS-A-TTY; read line; echo GOT:$line; echo SIZE:$(stty size); exit 5"])
time.sleep(0.5)
# The person resizes the window, then types a line.
import fcntl, struct, termios
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
time.sleep(0.2)
os.write(fd, b"typed\r")
out = b""
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
print(out.decode(errors="replace"))
print("EXIT", os.waitstatus_to_exitcode(status))
"#,
            repo = t.repo.display().to_string(),
            bin = common::BIN,
        );
        let out = std::process::Command::new(python)
            .env_clear()
            .envs(t.vars())
            .args(["-c", &driver])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("AGENT-HAS-A-TTY"), "{text}");
        assert!(text.contains("GOT:typed"), "{text}");
        assert!(
            text.contains("SIZE:33 111"),
            "the agent's terminal follows the window: {text}"
        );
        assert!(text.contains("EXIT 5"), "{text}");
        let logs = t.state_dir().join("runs/tty");
        let log = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("run-"))
            .unwrap();
        let logged = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            logged.contains("AGENT-HAS-A-TTY") && logged.contains("GOT:typed"),
            "{logged}"
        );
    });
}
