//! What outside attackers, briefed only with the promises (SPEC §7, §7a, §8), did to the
//! default sandbox and the person's later commands, each kept as a test that failed before its
//! fix: sockets of the person's, fifos and sparse files that hang or starve, a rewritten run
//! log, the host's own addresses, claimed commits, setup and hooks and filters and merge
//! drivers that would run the agent's code unconfined, another session's proxy, writable
//! paths holding config, agent state reaching a new session.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::sandbox::{can_confine, results, script};
use common::{BIN, TestEnv, each_git, run};

/// A program of the person's that listens on a Unix socket: python3 binds `name` after
/// changing to `dir` (so a relative `name` is bound relative to it), then, when `rename_to`
/// is given, renames the socket file; it answers each connection with a secret.
fn person_socket(dir: &Path, name: &str, rename_to: Option<&Path>) -> Child {
    let rename = match rename_to {
        Some(to) => format!("os.rename({name:?}, {:?})\n", to.display().to_string()),
        None => String::new(),
    };
    let code = format!(
        "import os, socket, time\nos.chdir({:?})\ns = socket.socket(socket.AF_UNIX)\ns.bind({name:?})\ns.listen()\n{rename}print('ready', flush=True)\nwhile True:\n    c, _ = s.accept(); c.sendall(b'SECRET'); c.close()\n",
        dir.display().to_string()
    );
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &code])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut ready = [0u8; 6];
    child
        .stdout
        .as_mut()
        .expect("stdout")
        .read_exact(&mut ready)
        .expect("ready");
    child
}

/// The agent's probe: connects to each path (waiting `wait` seconds first) and says whether
/// the person's program answered.
fn socket_probe(t: &TestEnv, wait: u32, paths: &[(&str, &Path)]) -> String {
    let mut probe = format!(
        "#!/usr/bin/python3\nimport socket, time\ntime.sleep({wait})\n\
         def say(n, v): print(f'RESULT {{n}}={{v}}', flush=True)\n\
         def try_path(n, p):\n    try:\n        s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(p)\n        say(n, 'answered' if s.recv(10) == b'SECRET' else 'connected')\n    except Exception:\n        say(n, 'refused')\n"
    );
    for (name, path) in paths {
        probe.push_str(&format!(
            "try_path({name:?}, {:?})\n",
            path.display().to_string()
        ));
    }
    script(t, "socket-probe.py", &probe)
}

/// The person's sockets under their home are promised out of the agent's reach. git-codex
/// finds them in `/proc/net/unix` when the run starts, by the path they were bound at: a
/// socket bound by a relative path (after a chdir, as postfix and others do), one renamed or
/// whose directory was moved after binding, and one the person starts while the agent works
/// (an ssh ControlMaster socket, gpg-agent started on demand in ~/.gnupg, `ssh-agent -a`)
/// are all missed, and the agent talks to them.
#[test]
fn every_socket_of_the_persons_home_stays_out_of_reach() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.add("s");
        let dir = t.home.join("sockets");
        std::fs::create_dir_all(dir.join("old")).expect("dir");
        let relative = dir.join("relative.sock");
        let renamed = dir.join("renamed.sock");
        let late = t.home.join(".ssh/cm-person@server:22");
        let mut children = vec![
            person_socket(&dir, "relative.sock", None),
            person_socket(&dir, "bound.sock", Some(&renamed)),
            person_socket(
                &dir.join("old"),
                &dir.join("old/x.sock").display().to_string(),
                None,
            ),
        ];
        std::fs::rename(dir.join("old"), dir.join("moved")).expect("move dir");
        let moved = dir.join("moved/x.sock");
        std::fs::create_dir_all(late.parent().expect("parent")).expect("dir");
        let probe = socket_probe(
            t,
            4,
            &[
                ("relative", &relative),
                ("renamed", &renamed),
                ("moved", &moved),
                ("late", &late),
            ],
        );
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["session", "run", "s", "--", &probe])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let agent = cmd.spawn().expect("run");
        // While the agent works, the person opens an ssh connection with a control socket.
        std::thread::sleep(Duration::from_millis(1500));
        children.push(person_socket(
            late.parent().expect("parent"),
            &late.display().to_string(),
            None,
        ));
        let out = agent.wait_with_output().expect("wait");
        for mut child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        let r = results(&stdout);
        for name in ["relative", "renamed", "moved", "late"] {
            assert_eq!(
                r.get(name).map(String::as_str),
                Some("refused"),
                "the person's socket ({name}) answered the agent:\n{stdout}\n{stderr}"
            );
        }
    });
}

/// The agent's admin dir is its to write, and git-codex reads the worktree's HEAD (and index)
/// there when the person runs `session list`, `show`, `review`, `doctor`, `remove`, and at the
/// end of the run itself. A HEAD that is a link to a fifo in the worktree makes each of them
/// block forever in open(2) — even `session remove --force` cannot clean it up.
#[test]
fn a_fifo_planted_as_head_or_index_does_not_hang_the_persons_commands() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        for file in ["HEAD", "index"] {
            let id = format!("fifo-{}", file.to_lowercase());
            t.add(&id);
            let agent = script(
                t,
                "plant-fifo.sh",
                "#!/bin/sh\nA=$(git rev-parse --absolute-git-dir)\nmkfifo \"$PWD/ff\"\nrm -f \"$A/$1\"\nln -s \"$PWD/ff\" \"$A/$1\"\n",
            );
            let mut cmd = t.codex(&["session", "run", &id, "--", &agent, file]);
            cmd.timeout(Duration::from_secs(20));
            let (code, _, err) = run(cmd);
            assert_eq!(
                code, 0,
                "the run of the agent that planted {file} hung or failed: {err}"
            );
            for args in [
                vec!["session", "list"],
                vec!["session", "show", &id],
                vec!["session", "review", &id],
                vec!["doctor"],
                vec!["session", "remove", &id, "--force"],
            ] {
                let mut cmd = t.codex(&args);
                cmd.timeout(Duration::from_secs(20));
                let (code, _, err) = run(cmd);
                assert_ne!(
                    code,
                    -1,
                    "'git codex {}' hung on the agent's {file} link to a fifo: {err}",
                    args.join(" ")
                );
            }
        }
    });
}

/// Commits the gate counts as a session's come from the worktree's HEAD reflog in the admin
/// dir, which the agent writes. An agent that writes there the id of a commit of the person's
/// (on a branch of theirs, or fetched: only a remote-tracking branch holds it) must not make it
/// "a commit of session l": the person's own merge of it into main goes through.
#[test]
fn an_agent_cannot_claim_the_persons_commits_as_its_own() {
    if !can_confine() {
        return;
    }
    // (where the person's commit is held, what the person merges)
    for (fetched, merge) in [(false, "feature"), (true, "origin/feature")] {
        each_git(|t| {
            t.git(&["checkout", "-q", "-b", "feature"]);
            t.commit_in(&t.repo, "feature.txt", "the person's work\n");
            t.git(&["checkout", "-q", "main"]);
            let feature = t.git(&["rev-parse", "feature"]).trim().to_string();
            if fetched {
                // As a fetch leaves a colleague's work: a remote-tracking branch, no local one.
                t.git(&["update-ref", "refs/remotes/origin/feature", &feature]);
                t.git(&["branch", "-q", "-D", "feature"]);
            }
            t.add("l");
            let agent = script(
                t,
                "claim.sh",
                "#!/bin/sh\nprintf '0000000000000000000000000000000000000000 %s a <a@x> 1 +0000\\tx\\n' \"$1\" >> \"$(git rev-parse --absolute-git-dir)/logs/HEAD\"\n",
            );
            let (code, _, err) = run(t.codex(&["session", "run", "l", "--", &agent, &feature]));
            assert_eq!(code, 0, "{err}");
            let (code, _, _) = run(t.codex(&["session", "list"]));
            assert_eq!(code, 0);
            let merged = t.git_output(&t.repo, &["merge", "-q", "--ff-only", merge]);
            assert!(
                merged.status.success(),
                "the gate refused the person's own commit ({merge}) as the agent's: {}",
                String::from_utf8_lossy(&merged.stderr)
            );
        });
    }
}

/// `network-enabled` promises public destinations only: loopback, private and link-local
/// addresses need listing. The host's own address on an interface is not special to the
/// policy, yet connecting to it from the host (where the proxy runs) is local delivery: every
/// service of the person's bound to 0.0.0.0 (a dev database, a docker-published port)
/// answers the agent. Shown in a network namespace of the test's own, with a documentation
/// address (203.0.113.5) on a dummy (or tun) interface as the host's address.
#[test]
fn network_enabled_does_not_reach_the_hosts_own_services_through_its_address() {
    if !can_confine() {
        return;
    }
    let ip_ok = std::process::Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let unshare: &[&str] = if root {
        &["--net"]
    } else {
        &["--user", "--map-root-user", "--net"]
    };
    let probe_ns = std::process::Command::new("unshare")
        .args(unshare)
        .args(["ip", "tuntap", "add", "d0", "mode", "tun"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ip_ok || !probe_ns {
        eprintln!("skipping: cannot make a network namespace with a dummy or tun interface here");
        return;
    }
    each_git(|t| {
        t.add("s");
        let server = script(
            t,
            "server.py",
            "#!/usr/bin/python3\nimport socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 8765)); s.listen()\nwhile True:\n    c, _ = s.accept(); c.recv(1000); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nreached\\n'); c.close()\n",
        );
        let agent = script(
            t,
            "agent.py",
            "#!/usr/bin/python3\nimport os, urllib.request\nh = urllib.request.ProxyHandler({'http': os.environ['HTTP_PROXY']})\ntry:\n    print('RESULT own-address=' + urllib.request.build_opener(h).open('http://203.0.113.5:8765/', timeout=5).read().decode().strip())\nexcept urllib.error.HTTPError as e:\n    print(f'RESULT own-address=http-{e.code}')\nexcept Exception as e:\n    print(f'RESULT own-address=error-{e!r}')\n",
        );
        let inner = format!(
            "set -e\nip link set lo up\nip link add d0 type dummy 2>/dev/null || ip tuntap add d0 mode tun\nip addr add 203.0.113.5/24 dev d0\nip link set d0 up\n{server} & S=$!\nsleep 1\n{BIN} session run s --sandbox network-enabled -- {agent}; kill $S\n"
        );
        let mut cmd = std::process::Command::new("unshare");
        cmd.env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(unshare)
            .args(["/bin/sh", "-c", &inner]);
        let out = cmd.output().expect("unshare");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let r = results(&stdout);
        assert!(r.contains_key("own-address"), "{stdout}\n{stderr}");
        assert_eq!(
            r.get("own-address").map(String::as_str),
            Some("http-403"),
            "network-enabled reached a service of the host's own through its address:\n{stdout}\n{stderr}"
        );
    });
}

/// Every connection the proxy allowed or refused is promised as a line of the run's log,
/// which the person reads afterwards. The log lies in `logs/<id>/`, which the confined agent
/// may write: it replaces the log of its own run (and may delete every earlier one), and the
/// person reads a record without the connections it made.
#[test]
fn the_agent_cannot_rewrite_the_record_of_its_connections() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.add("s");
        let agent = script(
            t,
            "cover-tracks.sh",
            "#!/bin/sh\ncurl -s -m 3 -x \"$HTTP_PROXY\" http://192.0.2.1/ >/dev/null\nsleep 0.5\nfor l in \"$CODEX_LOG_DIR\"/run-*.log; do rm -f \"$l\"; echo '# git-codex session run: nothing happened' > \"$l\"; done\n",
        );
        let (code, _, err) = run(t.codex(&["session", "run", "s", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        let log = std::fs::read_to_string(t.show("s")["lastRun"]["log"].as_str().expect("log"))
            .expect("run log");
        assert!(
            log.contains("# proxy: refused 192.0.2.1:80"),
            "the run log the person reads lost the agent's connection:\n{log}"
        );
    });
}

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

/// With a relative `core.hooksPath` (husky's `.husky/_`, or a tracked `.githooks`, which
/// `hooks install` and `doctor` recommend "so session worktrees run the hooks"), git resolves
/// the hooks dir against the worktree git runs in. git-codex's own git commands in the
/// session's worktree (the run's clean-up snapshot and `session review` via `commit_worktree`,
/// `session remove` via `snapshot`) run `update-ref` there, which fires the
/// `reference-transaction` hook from the agent's own worktree: a file the agent wrote. It runs
/// as the person, outside every sandbox, here writing into the person's home.
#[test]
fn a_relative_hooks_path_does_not_run_the_agents_hooks_outside_the_sandbox() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["config", "core.hooksPath", ".husky/_"]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("h");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "plant-hook.sh",
            &format!(
                "#!/bin/sh\nmkdir -p .husky/_\nprintf '#!/bin/sh\\necho ran outside >> {}\\n' > .husky/_/reference-transaction\nchmod +x .husky/_/reference-transaction\necho work > work.txt\n",
                escaped.display()
            ),
        );
        let _ = run(t.codex(&["session", "run", "h", "--", &agent]));
        let _ = run(t.codex(&["session", "review", "h"]));
        let _ = run(t.codex(&["session", "remove", "h"]));
        assert!(
            !escaped.exists(),
            "git-codex ran the agent's reference-transaction hook (from the session worktree's relative core.hooksPath) as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// A filter the person configured with a command relative to the worktree
/// (`filter.strip.clean = ./tools/clean.sh`, a tracked script; the same holds for a
/// `diff.<x>.textconv`) runs from the worktree git runs in. git-codex's `git add -A` in the
/// session's worktree (the run's clean-up snapshot, `session review`) runs the agent's
/// rewritten `tools/clean.sh` as the person, outside every sandbox.
#[test]
fn a_relative_filter_command_does_not_run_the_agents_script_outside_the_sandbox() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        common::write_file(&t.repo.join("tools/clean.sh"), "#!/bin/sh\ncat\n");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            t.repo.join("tools/clean.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        t.write(".gitattributes", "*.txt filter=strip\n");
        t.git(&["add", "tools/clean.sh", ".gitattributes"]);
        t.git(&["commit", "-q", "-m", "a clean filter"]);
        t.git(&["config", "filter.strip.clean", "./tools/clean.sh"]);
        t.git(&["config", "filter.strip.smudge", "cat"]);
        t.add("f");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "rewrite-filter.sh",
            &format!(
                "#!/bin/sh\nprintf '#!/bin/sh\\necho ran outside >> {}\\ncat\\n' > tools/clean.sh\necho work > work.txt\n",
                escaped.display()
            ),
        );
        let _ = run(t.codex(&["session", "run", "f", "--", &agent]));
        let _ = run(t.codex(&["session", "review", "f"]));
        assert!(
            !escaped.exists(),
            "git-codex's git add in the session worktree ran the agent's rewritten filter script as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// The run's clean-up clears fifos and links at the top of the agent's admin dir
/// (`.git/worktrees/<wt>/`), not in its subdirs. A fifo the agent leaves at
/// `rebase-merge/head-name` there survives, and git reads it whenever it asks whether a
/// branch is being rebased in some worktree: the person's own `git branch -D <branch>` (or
/// `git checkout`, `git branch -m`) in the main worktree then blocks for good in open(2).
#[test]
fn a_fifo_in_the_admin_dirs_rebase_state_does_not_hang_the_persons_git() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["branch", "feature"]);
        t.add("rb");
        let agent = script(
            t,
            "plant-rebase-fifo.sh",
            "#!/bin/sh\nA=$(git rev-parse --absolute-git-dir)\nmkdir -p \"$A/rebase-merge\"\nmkfifo \"$A/rebase-merge/head-name\" \"$A/rebase-merge/onto\"\n",
        );
        let mut cmd = t.codex(&["session", "run", "rb", "--", &agent]);
        cmd.timeout(Duration::from_secs(30));
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let mut git = std::process::Command::new(&t.git);
        git.env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["branch", "-D", "feature"]);
        let mut child = git.spawn().expect("git");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let finished = loop {
            if child.try_wait().expect("wait").is_some() {
                break true;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            finished,
            "the person's 'git branch -D feature' hung on the fifo the agent left at rebase-merge/head-name in its admin dir"
        );
    });
}

/// `session merge --strategy rebase` replays the session's commits one by one in a temporary
/// worktree under `.git/codex/scratch/<id>/`, which the session guard does not cover: with a
/// relative `core.hooksPath` (husky's `.husky/_`, as in attacker3) git resolves the hooks dir
/// against that worktree, whose files are, commit by commit, the agent's. An intermediate
/// commit adds `.husky/_/reference-transaction`, the next deletes it: the reviewed (and
/// approved) range shows neither, yet every ref update of the replay runs the agent's hook as
/// the person, outside every sandbox.
#[test]
fn a_rebase_merge_does_not_run_a_hook_from_an_intermediate_commit() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["config", "core.hooksPath", ".husky/_"]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("rb");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "hook-in-between.sh",
            &format!(
                "#!/bin/sh\nmkdir -p .husky/_\nprintf '#!/bin/sh\\n(echo ran outside $PWD >> {}) 2>/dev/null\\nexit 0\\n' > .husky/_/reference-transaction\nchmod +x .husky/_/reference-transaction\necho a > a.txt\ngit add -A && git commit -qm 'step 1' --no-verify\ngit rm -rqf .husky && echo b > a.txt && git add -A && git commit -qm 'step 2' --no-verify\n",
                escaped.display()
            ),
        );
        let (code, _, err) = run(t.codex(&["session", "run", "rb", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        // The person's branch moves on, so the rebase replays the session's commits.
        t.write("other.txt", "x\n");
        t.git(&["add", "other.txt"]);
        t.git(&["commit", "-q", "-m", "main moves on"]);
        let (code, report, err) = run(t.codex(&["session", "review", "rb", "--approve"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !report.contains(".husky"),
            "the reviewed range shows the hook: {report}"
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "rb", "--strategy", "rebase"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !escaped.exists(),
            "session merge --strategy rebase ran the agent's reference-transaction hook (from a commit the reviewed range does not show) as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// The agent writes `ref: refs/heads/main` into its admin dir's HEAD (a plain file, so the
/// clean-up keeps it, and `reattach` leaves a symbolic HEAD alone). After the run the session
/// worktree still has `main` checked out: `session merge` lands every approved session in the
/// agent's worktree (`worktree_with_branch`), under its index and files, and the gate, seeing
/// a session worktree, counts the merge (or, after the run, the person's own `main` commits)
/// as session b's unapproved work and refuses; the person's `git checkout main` fails
/// ("already checked out").
#[test]
fn an_agent_cannot_check_out_the_protected_branch_in_its_worktree() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.git(&["checkout", "-q", "-b", "dev"]);
        t.add("a");
        t.add("b");
        let feature = script(t, "feature.sh", "#!/bin/sh\necho feature > f.txt\n");
        let (code, _, err) = run(t.codex(&["session", "run", "a", "--", &feature]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "review", "a", "--approve"]));
        assert_eq!(code, 0, "{err}");
        let agent = script(
            t,
            "take-main.sh",
            "#!/bin/sh\nA=$(git rev-parse --absolute-git-dir)\nprintf 'ref: refs/heads/main\\n' > \"$A/HEAD\"\ngit read-tree main\n",
        );
        let (code, _, err) = run(t.codex(&["session", "run", "b", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "merge", "a", "--into", "main"]));
        assert_eq!(
            code, 0,
            "session b's agent, by pointing its HEAD at main, made the gate refuse the approved session a: {err}"
        );
        let out = t.git_output(&t.repo, &["checkout", "-q", "main"]);
        assert!(
            out.status.success(),
            "the person's git checkout main fails: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The session guard covers `core.hooksPath` and filter commands in git-codex's scratch
/// worktrees, not merge drivers: a driver the person configured with a command relative to
/// the worktree (`merge.both.driver = ./tools/merge.sh %O %A %B`, a tracked script, for a
/// `CHANGELOG merge=both` attribute) runs from the worktree git runs in. `session merge
/// --strategy rebase` replays the session's commits in `.git/codex/scratch/<id>/`, whose
/// files are, commit by commit, the agent's: an intermediate commit rewrites
/// `tools/merge.sh`, the next edits `CHANGELOG` (which main edited too), the last puts the
/// script back. The reviewed (and approved) range shows only the CHANGELOG line, yet the
/// replay runs the agent's script as the person, outside every sandbox.
#[test]
fn a_rebase_merge_does_not_run_a_merge_driver_from_an_intermediate_commit() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        common::write_file(
            &t.repo.join("tools/merge.sh"),
            "#!/bin/sh\ncat \"$3\" >> \"$2\"\nexit 0\n",
        );
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            t.repo.join("tools/merge.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        t.write("CHANGELOG", "one\n");
        t.write(".gitattributes", "CHANGELOG merge=both\n");
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "a merge driver for the changelog"]);
        t.git(&["config", "merge.both.driver", "./tools/merge.sh %O %A %B"]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("md");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "driver-in-between.sh",
            &format!(
                "#!/bin/sh\nprintf '#!/bin/sh\\n(echo ran outside $PWD >> {}) 2>/dev/null\\ncat \"$3\" >> \"$2\"\\nexit 0\\n' > tools/merge.sh\ngit commit -qam 'step 1' --no-verify\necho agent >> CHANGELOG && git commit -qam 'step 2' --no-verify\ngit checkout -q HEAD~2 -- tools/merge.sh && git commit -qam 'step 3' --no-verify\n",
                escaped.display()
            ),
        );
        let (code, _, err) = run(t.codex(&["session", "run", "md", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        // The person's branch edits the changelog too, so the replay merges it.
        t.write("CHANGELOG", "one\nperson\n");
        t.git(&["commit", "-q", "-am", "main moves on"]);
        let (code, report, err) = run(t.codex(&["session", "review", "md", "--approve"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !report.contains("tools/merge.sh"),
            "the reviewed range shows the script: {report}"
        );
        let _ = run(t.codex(&["session", "merge", "md", "--strategy", "rebase"]));
        assert!(
            !escaped.exists(),
            "session merge --strategy rebase ran the agent's merge driver script (from a commit the reviewed range does not show) as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// git-codex reads the agent's admin-dir `logs/HEAD` whole into memory (`commit_ids_in`,
/// `read_to_string`) whenever it records a session's commits: at the end of the run, in
/// `review`, `merge`, `remove` (`--force` too) and `prune`, so also in the `post-checkout`
/// hook of the person's own `git checkout` in the main worktree once the session expires. A
/// sparse file costs the agent no disk: sized to the machine (it reads `/proc/meminfo`), each
/// of those commands takes minutes and all of the person's memory (20 GiB: about a minute
/// per command, 20 GiB resident). Shown with 3 GiB: the person's checkout, normally instant,
/// takes seconds.
#[test]
fn a_sparse_reflog_in_the_admin_dir_does_not_stall_the_persons_checkout() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.set_config("[session]\nttl = \"3s\"\n");
        t.add("sp");
        let agent = script(
            t,
            "sparse-reflog.sh",
            "#!/bin/sh\ntruncate -s 3G \"$(git rev-parse --absolute-git-dir)/logs/HEAD\"\n",
        );
        let mut cmd = t.codex(&["session", "run", "sp", "--", &agent]);
        cmd.timeout(Duration::from_secs(120));
        let _ = run(cmd);
        std::thread::sleep(Duration::from_secs(4));
        // The session has expired: the person's checkout prunes it (post-checkout).
        let out = t.git_output(&t.repo, &["checkout", "-q", "-b", "other"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // How much of such a reflog is read is bounded (not timed here: the bound is proved
        // by `ledger::tests::only_the_newest_part_of_a_huge_reflog_is_read`).
        let (code, _, err) = run(t.codex(&["session", "list", "--json"]));
        assert_eq!(code, 0, "{err}");
    });
}

/// attacker5.rs's sparse file, in the other directory the agent writes that git-codex reads:
/// its object directory (`.git/codex/objects/<id>`, the repository's object dir in its
/// sandbox). `settle` (`import::objects`) walks every object the store lists, and a pack
/// index lists as many as its header says: a sparse `pack-*.idx` claiming N entries (with a
/// stub `.pack`) costs the agent no disk, and git-codex spends about 0.4 s and 24 MB resident
/// per million entries rejecting them, one by one. A v2 index holds up to 2^32 entries
/// (about half an hour each), and nothing limits the number of index files: the end of
/// `session run`, and whichever of `review`, `merge`, `remove`, `prune` (the person's own
/// `git checkout`, through post-checkout, once the session expires) settles the session
/// first, stall for as long as the agent likes. Shown with 30 million entries: the run's
/// settle, normally instant, takes many seconds.
#[test]
fn a_sparse_pack_index_in_the_agents_object_dir_does_not_stall_git_codex() {
    if !can_confine() {
        return;
    }
    each_git(|t: &TestEnv| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("pk");
        let maker = t.home.join("mkpack.py");
        common::write_file(
            &maker,
            "import os, struct\n\
             import sys\n\
             d = os.path.join(sys.argv[1], 'pack')\n\
             os.makedirs(d, exist_ok=True)\n\
             n = 30000000\n\
             name = 'pack-' + '1' * 40\n\
             with open(os.path.join(d, name + '.idx'), 'wb') as f:\n\
             \x20   f.write(b'\\377tOc' + struct.pack('>I', 2))\n\
             \x20   f.write(struct.pack('>I', n) * 256)\n\
             \x20   f.truncate(8 + 1024 + n * 28 + 40)\n\
             with open(os.path.join(d, name + '.pack'), 'wb') as f:\n\
             \x20   f.write(b'PACK' + struct.pack('>II', 2, n))\n\
             \x20   f.truncate(4096)\n\
             print('planted', flush=True)\n",
        );
        let agent = script(
            t,
            "sparse-pack.sh",
            &format!(
                "#!/bin/sh\npython3 {} \"$(git rev-parse --path-format=absolute --git-path objects)\" || exit 1\n",
                maker.display()
            ),
        );
        let mut cmd = t.codex(&["session", "run", "pk", "--", &agent]);
        // A guard against a hang, not a measure: the hollow pack is dropped whole (its two
        // files), never read entry by entry (30 million rejections).
        cmd.timeout(Duration::from_secs(600));
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("planted"),
            "the agent did not plant its index: {out}{err}"
        );
        assert!(
            err.contains("git-codex: 2 object(s) that session 'pk' wrote"),
            "the pack index the agent planted was read entry by entry: {err}"
        );
    });
}
