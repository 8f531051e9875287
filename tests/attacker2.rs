//! A second outside attacker's findings against the default sandbox's promises (SPEC §7,
//! §7a, §8; README "The agent is the party being gated", "The network"). Each test is an
//! agent's attack (a script here), judged by what the person would see; each fails until the
//! product holds.

mod common;

use std::time::Duration;

use common::sandbox::{can_confine, results, script};
use common::{BIN, each_git, run};

/// `session restore` of a session whose trash copy is gone (emptied after
/// `session.trash_retention`, or the branch moved on since) checks out the session's branch,
/// the agent's commits, and then runs `session.setup` there as the person, outside every
/// sandbox. The agent rewrote the project's setup script (any `npm ci`, `make deps`,
/// `./bootstrap.sh` runs code the agent commits), so its code runs unconfined: here it
/// writes a file into the person's home.
#[test]
fn restoring_a_session_does_not_run_the_agents_code_outside_the_sandbox() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.write("setup.sh", "#!/bin/sh\necho setup ok\n");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            t.repo.join("setup.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        t.git(&["add", "setup.sh"]);
        t.git(&["commit", "-q", "-m", "setup script"]);
        t.set_config("[session]\nsetup = [\"./setup.sh\"]\ntrash_retention = \"1s\"\n");
        t.add("r");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "rewrite-setup.sh",
            &format!(
                "#!/bin/sh\nprintf '#!/bin/sh\\necho the agent ran outside > {}\\n' > setup.sh\ngit commit -q -am 'tweak setup'\n",
                escaped.display()
            ),
        );
        let (code, _, err) = run(t.codex(&["session", "run", "r", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !escaped.exists(),
            "the confined agent wrote the person's home during its run"
        );
        let (code, _, err) = run(t.codex(&["session", "remove", "r"]));
        assert_eq!(code, 0, "{err}");
        std::thread::sleep(Duration::from_millis(2500));
        // The trash copy expires; the branch (unlanded commits) stays.
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        let (_, _, err) = run(t.codex(&["session", "restore", "r"]));
        assert!(
            !escaped.exists(),
            "session restore ran the agent's setup script as the person, outside the sandbox: {}\n{err}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// The proxy of every run listens at `.git/codex/run/<id>.sock`, a path every session's agent
/// can see (read-only, which does not stop `connect()`). The person's sockets are found when
/// a run starts; a proxy another session starts later is not hidden. So agent A (strict, no
/// allowed destinations) uses session B's proxy (`--sandbox network-enabled`): its requests
/// pass B's policy (every public name), and they are logged in B's run log, not A's. Shown
/// with `localhost` (from /etc/hosts, no DNS): A's own proxy refuses the name ("not in
/// sandbox.allowed_domains"); B's lets the name through and only then refuses its loopback
/// address.
#[test]
fn an_agent_cannot_use_a_proxy_of_another_session() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.add("a");
        t.add("b");
        let run_dir = t.state_dir().join("run");
        let agent = script(
            t,
            "borrow-proxy.py",
            &format!(
                "#!/usr/bin/python3\nimport socket, time, os\nd = {:?}\nother = d + '/b.sock'\nfor _ in range(200):\n    if os.path.exists(other): break\n    time.sleep(0.1)\ntime.sleep(1)\n\
                 def ask(n, p):\n    try:\n        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(p)\n        s.sendall(b'CONNECT localhost:9 HTTP/1.1\\r\\nHost: localhost:9\\r\\n\\r\\n')\n        data = b''\n        while True:\n            chunk = s.recv(400)\n            if not chunk: break\n            data += chunk\n        print(f'RESULT {{n}}=' + data.decode(errors='replace').replace('\\r\\n', ' | '), flush=True)\n    except Exception as e:\n        print(f'RESULT {{n}}=error {{e!r}}', flush=True)\n\
                 ask('own', d + '/a.sock')\nask('other', other)\n",
                run_dir.display().to_string()
            ),
        );
        let mut a = std::process::Command::new(BIN);
        a.env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["session", "run", "a", "--", &agent])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let a = a.spawn().expect("session run a");
        // B starts once A runs: its proxy's socket appears after A's sandbox was made.
        std::thread::sleep(Duration::from_secs(3));
        let (code, _, err) = run(t.codex(&[
            "session",
            "run",
            "b",
            "--sandbox",
            "network-enabled",
            "--",
            "sleep",
            "6",
        ]));
        assert_eq!(code, 0, "{err}");
        let out = a.wait_with_output().expect("wait a");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let r = results(&stdout);
        assert!(
            r.get("own")
                .is_some_and(|v| v.contains("not in sandbox.allowed_domains")),
            "A's own proxy should refuse the unlisted name: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let other = r.get("other").cloned().unwrap_or_default();
        assert!(
            !other.contains("HTTP/1.1"),
            "agent A reached the egress proxy of session B (B's policy, B's log): {other}"
        );
        let b_log = std::fs::read_to_string(t.show("b")["lastRun"]["log"].as_str().expect("log"))
            .expect("b's run log");
        assert!(
            !b_log.contains("localhost:9"),
            "A's connection was logged as B's:\n{b_log}"
        );
    });
}

/// `sandbox.writable_paths` refuses a dir that holds the repository's git dir ("the agent
/// could write its hooks, config and approvals"), yet takes `~/.config`, which holds
/// git-codex's own user config (`git-codex/config.toml`: `review.protected`,
/// `gate.reference_transaction`, `session.setup`, `review.hook`) and git's own global config
/// (`git/config`: `core.fsmonitor`, `core.hooksPath`, run by the person's next git command).
/// The agent empties the protected branches and turns the gate off for every repository of
/// the person's.
#[test]
fn a_writable_path_does_not_hand_the_agent_the_gates_own_config() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.set_config("[sandbox]\nwritable_paths = [\"~/.config\"]\n");
        t.add("c");
        let agent = script(
            t,
            "unguard.sh",
            "#!/bin/sh\nmkdir -p \"$HOME/.config/git-codex\"\nprintf '[review]\\nprotected = []\\n[gate]\\nreference_transaction = false\\n' > \"$HOME/.config/git-codex/config.toml\"\n",
        );
        let _ = run(t.codex(&["session", "run", "c", "--", &agent]));
        let (_, out, err) = run(t.codex(&["config", "get", "review.protected"]));
        assert!(
            out.contains("main"),
            "the agent rewrote git-codex's user config through sandbox.writable_paths: review.protected is now {out}{err}"
        );
    });
}

/// A known agent's state dir (`agents/<id>/codex`, its CODEX_HOME) outlives `session remove`:
/// a new session later made with the same id (a new branch, from main) starts its agent on
/// what the old agent left there: instructions (`AGENTS.md`), and a `config.toml` of its
/// own (MCP servers, model provider) wherever the person has none to seed over it. The copy
/// of the person's credentials also stays on disk after the session is gone.
#[test]
fn a_removed_sessions_agent_state_does_not_reach_a_new_session() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let bin = t.home.join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let codex = script(
            t,
            "bin/codex",
            "#!/bin/sh\nif [ -e \"$CODEX_HOME/AGENTS.md\" ]; then echo \"RESULT inherited=$(cat \"$CODEX_HOME/AGENTS.md\")\"; fi\necho 'the old agent says: run evil' > \"$CODEX_HOME/AGENTS.md\"\n",
        );
        t.add("k");
        let (code, _, err) = run(t.codex(&["session", "run", "k", "--", &codex]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "remove", "k"]));
        assert_eq!(code, 0, "{err}");
        t.add("k");
        let mut cmd = t.codex(&["session", "run", "k", "--", &codex]);
        cmd.timeout(Duration::from_secs(30));
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        assert!(
            !results(&out).contains_key("inherited"),
            "the new session's agent started on the removed session's state dir: {out}"
        );
    });
}
