//! Attacks that break the default sandbox's promises (SPEC §7, §7a; README "The agent is the
//! party being gated", "The network"). Each test is an agent's attack (a script here), judged
//! by what the person would see; each fails until the product holds.

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
/// dir, which the agent writes. An agent that writes the id of the person's own commit (on a
/// branch of theirs, not yet on main) there makes it "a commit of session l", and the gate
/// then refuses the person's own merge of their branch into main.
#[test]
fn an_agent_cannot_claim_the_persons_commits_as_its_own() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["checkout", "-q", "-b", "feature"]);
        t.commit_in(&t.repo, "feature.txt", "the person's work\n");
        t.git(&["checkout", "-q", "main"]);
        let feature = t.git(&["rev-parse", "feature"]).trim().to_string();
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
        let merged = t.git_output(&t.repo, &["merge", "-q", "--ff-only", "feature"]);
        assert!(
            merged.status.success(),
            "the gate refused the person's own commit as the agent's: {}",
            String::from_utf8_lossy(&merged.stderr)
        );
    });
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
