//! The default sandbox holds (SPEC §7, §7a; issue 14): the agent's one way out is the egress
//! proxy, to allowed destinations only; no socket of the person's answers it; it has no
//! terminal of the person's to push keys into; the review hook is held the same way; the mode
//! of a run is the one the person asked for; a writable file is that file only. Each test is
//! an attack an agent (a script here) would make, judged by what the person would see.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::sandbox::{can_confine, results, script};
use common::{each_git, run, write_file};

/// A server on the host's loopback that answers every connection with a small HTTP 200 and
/// counts them. It stops with the test process.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nreached\r\n",
                );
            }
        });
        Server { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The agent's probes of the network, in python: through the proxy it was given (HTTP and
/// CONNECT) and directly.
const NET_PROBE: &str = r#"#!/usr/bin/python3
import os, socket, sys, urllib.request
def say(name, value): print(f"RESULT {name}={value}", flush=True)
os.environ.pop("no_proxy", None); os.environ.pop("NO_PROXY", None)
def via_proxy(name, url):
    try:
        handler = urllib.request.ProxyHandler({"http": os.environ["HTTP_PROXY"]})
        body = urllib.request.build_opener(handler).open(url, timeout=5).read()
        say(name, body.decode().strip())
    except urllib.error.HTTPError as e:
        say(name, f"http-{e.code}")
    except Exception as e:
        say(name, f"error-{e!r}")
def connect_via_proxy(name, host, port):
    try:
        p = os.environ["HTTP_PROXY"].rsplit(":", 1)
        s = socket.create_connection((p[0].split("//")[1], int(p[1])), timeout=5)
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
        say(name, data.decode().split("\r\n")[0].split(" ")[1])
    except Exception as e:
        say(name, "error")
def direct(name, host, port):
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        say(name, "reached" if b"reached" in s.recv(200) else "connected")
    except Exception:
        say(name, "refused")
allowed, other = int(sys.argv[1]), int(sys.argv[2])
via_proxy("proxy-allowed", f"http://127.0.0.1:{allowed}/")
via_proxy("proxy-other", f"http://127.0.0.1:{other}/")
connect_via_proxy("connect-other", "127.0.0.1", other)
connect_via_proxy("connect-localhost", "localhost", other)
connect_via_proxy("connect-metadata", "169.254.169.254", 80)
connect_via_proxy("connect-mapped", "[::ffff:127.0.0.1]", other)
direct("direct-allowed", "127.0.0.1", allowed)
direct("direct-other", "127.0.0.1", other)
direct("direct-public", "192.0.2.1", 80)
"#;

#[test]
fn the_one_way_out_is_the_proxy_to_allowed_destinations() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let allowed = Server::start();
        let other = Server::start();
        t.set_config(&format!(
            "[sandbox]\nallowed_domains = [\"127.0.0.1:{}\"]\n",
            allowed.port
        ));
        t.add("s");
        let probe = script(t, "net-probe.py", NET_PROBE);
        let (a, o) = (allowed.port.to_string(), other.port.to_string());
        for mode in ["strict", "network-enabled"] {
            let (code, out, err) = run(t.codex(&[
                "session",
                "run",
                "s",
                "--sandbox",
                mode,
                "--",
                &probe,
                &a,
                &o,
            ]));
            assert_eq!(code, 0, "{mode}: {err}");
            let r = results(&out);
            let expect = [
                ("proxy-allowed", "reached"),
                ("proxy-other", "http-403"),
                ("connect-other", "403"),
                ("connect-localhost", "403"),
                ("connect-metadata", "403"),
                ("connect-mapped", "403"),
                ("direct-allowed", "reached"),
                ("direct-other", "refused"),
                ("direct-public", "refused"),
            ];
            for (name, want) in expect {
                assert_eq!(
                    r.get(name).map(String::as_str),
                    Some(want),
                    "{mode}, {name}:\n{out}\n{err}"
                );
            }
            assert!(
                err.contains(&format!("sandbox {mode} (from --sandbox)")),
                "{err}"
            );
        }
        assert_eq!(other.hits(), 0, "the unlisted server was never reached");
        assert!(allowed.hits() >= 4);
        // The person sees what the agent reached, and what it was refused.
        let log = std::fs::read_to_string(t.show("s")["lastRun"]["log"].as_str().expect("log"))
            .expect("run log");
        assert!(
            log.contains(&format!(
                "# proxy: allowed CONNECT 127.0.0.1:{}",
                allowed.port
            )),
            "{log}"
        );
        assert!(
            log.contains(&format!("# proxy: refused 127.0.0.1:{}", other.port)),
            "{log}"
        );
    });
}

/// Every kind of socket an agent could find: the person's tmux, ssh-agent, session bus and
/// gpg-agent, in `/tmp`, `/run`, the home dir, the repository, and an abstract one.
#[test]
fn no_socket_of_the_persons_answers_the_agent() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let tag = format!(
            "{}-{}",
            std::process::id(),
            t.git.display().to_string().len()
        );
        let places: Vec<PathBuf> = vec![
            PathBuf::from(format!("/tmp/tmux-gc-{tag}/default")),
            PathBuf::from(format!("/run/gc-{tag}/bus")),
            t.home.join(".gnupg/S.gpg-agent"),
            t.home.join(".ssh/agent.sock"),
            t.repo.join("editor.sock"),
        ];
        let mut listeners = Vec::new();
        for path in &places {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            let _ = std::fs::remove_file(path);
            listeners.push(UnixListener::bind(path).expect("bind"));
        }
        let abstract_name = format!("git-codex-test-{tag}");
        let abstract_listener = abstract_socket(&abstract_name);
        for l in &listeners {
            l.set_nonblocking(true).expect("nonblocking");
        }
        t.add("s");
        let mut probe = String::from(
            "#!/usr/bin/python3\nimport os, socket\n\
             def say(n, v): print(f'RESULT {n}={v}', flush=True)\n\
             def try_path(n, p):\n    try:\n        s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(p); say(n, 'connected')\n    except Exception:\n        say(n, 'refused')\n",
        );
        for (i, path) in places.iter().enumerate() {
            probe.push_str(&format!(
                "try_path('path{i}', {:?})\n",
                path.display().to_string()
            ));
        }
        probe.push_str(&format!("try_path('abstract', '\\0{abstract_name}')\n"));
        probe.push_str(
            "for v in ['TMUX', 'SSH_AUTH_SOCK', 'DBUS_SESSION_BUS_ADDRESS', 'DOCKER_HOST', 'XDG_RUNTIME_DIR']:\n    say('env-' + v, 'set' if v in os.environ else 'unset')\n",
        );
        let probe = script(t, "socket-probe.py", &probe);
        let mut cmd = t.codex(&["session", "run", "s", "--", &probe]);
        cmd.env("TMUX", format!("{},1,0", places[0].display()))
            .env("SSH_AUTH_SOCK", places[3].display().to_string())
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", places[1].display()),
            )
            .env("DOCKER_HOST", format!("unix://{}", places[4].display()))
            .env("XDG_RUNTIME_DIR", format!("/run/gc-{tag}"));
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let r = results(&out);
        for (i, place) in places.iter().enumerate() {
            assert_eq!(
                r.get(&format!("path{i}")).map(String::as_str),
                Some("refused"),
                "{}:\n{out}\n{err}",
                place.display()
            );
        }
        assert_eq!(
            r.get("abstract").map(String::as_str),
            Some("refused"),
            "{out}"
        );
        for v in [
            "TMUX",
            "SSH_AUTH_SOCK",
            "DBUS_SESSION_BUS_ADDRESS",
            "DOCKER_HOST",
            "XDG_RUNTIME_DIR",
        ] {
            assert_eq!(
                r.get(&format!("env-{v}")).map(String::as_str),
                Some("unset"),
                "{out}"
            );
        }
        for (l, path) in listeners.iter().zip(&places) {
            assert!(l.accept().is_err(), "{} was reached", path.display());
        }
        drop(abstract_listener);
        for path in &places {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_dir(places[0].parent().expect("parent"));
        let _ = std::fs::remove_dir(places[1].parent().expect("parent"));
    });
}

/// An abstract Unix socket listening under `name` (python binds it; the test keeps it).
fn abstract_socket(name: &str) -> std::process::Child {
    let code = format!(
        "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\ns.bind('\\0{name}')\ns.listen()\nprint('ready', flush=True)\ntime.sleep(60)\n"
    );
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &code])
        .stdout(std::process::Stdio::piped())
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

/// A person runs the agent with stdout to a file and the terminal as stdin, the way a
/// script or `| tee` does. The agent tries to push a command line into the person's shell.
#[test]
fn without_a_full_terminal_the_agent_cannot_push_keys_into_the_persons_shell() {
    each_git(|t| {
        t.add("s");
        let agent = script(
            t,
            "tiocsti.py",
            "#!/usr/bin/python3\nimport fcntl, os, termios\n\
             for name, opener in [('tiocsti', lambda: 0), ('devtty', lambda: os.open('/dev/tty', os.O_RDWR))]:\n\
             \x20   try:\n\
             \x20       fd = opener()\n\
             \x20       for c in b'touch pwned\\n':\n\
             \x20           fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))\n\
             \x20       print(f'RESULT {name}=pushed', flush=True)\n\
             \x20   except OSError as e:\n\
             \x20       print(f'RESULT {name}=refused-{e.errno}', flush=True)\n\
             try:\n\
             \x20   termios.tcsetattr(0, termios.TCSANOW, termios.tcgetattr(0))\n\
             \x20   print('RESULT stty=changed', flush=True)\n\
             except termios.error:\n\
             \x20   print('RESULT stty=refused', flush=True)\n",
        );
        // The person's terminal: a pseudo-terminal that is git-codex's controlling terminal,
        // its stdin, while stdout and stderr are pipes.
        let driver = format!(
            r#"
import os, pty, subprocess, sys, select
master, slave = pty.openpty()
def child_setup():
    os.setsid()
    import fcntl, termios
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
p = subprocess.run({argv:?}, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=child_setup, env=dict(os.environ))
sys.stdout.write(p.stdout.decode())
sys.stderr.write(p.stderr.decode())
os.set_blocking(slave, False)
try:
    pending = os.read(slave, 100)
except BlockingIOError:
    pending = b''
print('RESULT pending=' + ('keys' if pending else 'none'))
print('RESULT code=' + str(p.returncode))
"#,
            argv = [
                common::BIN.to_string(),
                "session".to_string(),
                "run".to_string(),
                "s".to_string(),
                "--".to_string(),
                agent.clone(),
            ]
        );
        let mut cmd = assert_cmd::Command::new("/usr/bin/python3");
        cmd.args(["-c", &driver]).current_dir(&t.repo);
        for (k, v) in t.vars() {
            cmd.env(k, v);
        }
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let r = results(&out);
        assert_eq!(r.get("code").map(String::as_str), Some("0"), "{out}\n{err}");
        for way in ["tiocsti", "devtty"] {
            assert!(
                r.get(way).is_some_and(|v| v.starts_with("refused")),
                "the agent pushed keys into the person's terminal ({way}):\n{out}\n{err}"
            );
        }
        assert_eq!(
            r.get("stty").map(String::as_str),
            Some("refused"),
            "the agent can change the person's terminal:\n{out}"
        );
        assert_eq!(r.get("pending").map(String::as_str), Some("none"), "{out}");
    });
}

/// Ctrl-C at the person's terminal reaches an agent in a session of its own, and git-codex
/// still records how it ended.
#[test]
fn an_interrupt_reaches_the_agent_in_its_own_session() {
    each_git(|t| {
        t.add("s");
        let ready = t.worktree("s").join("ready");
        let agent = script(
            t,
            "interrupted.sh",
            &format!(
                "#!/bin/sh\ntrap 'echo interrupted > got-int; exit 7' INT\ntouch {ready:?}\nwhile :; do sleep 0.1; done\n"
            ),
        );
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.args(["session", "run", "s", "--", &agent])
            .current_dir(&t.repo)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in t.vars() {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("git-codex");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ready.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // What the terminal does on Ctrl-C: SIGINT to git-codex's process group.
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(7), "the agent's exit code comes back");
        assert_eq!(
            std::fs::read_to_string(t.worktree("s").join("got-int"))
                .ok()
                .as_deref(),
            Some("interrupted\n")
        );
        assert_eq!(t.show("s")["lastRun"]["exitCode"], 7);
    });
}

/// The review hook runs the project's checks on the agent's code: it gets the agent's
/// sandbox, so code the agent wrote cannot use the hook to write outside the session or
/// reach the network.
#[test]
fn the_review_hook_is_held_like_the_agent() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let other = Server::start();
        t.add("s");
        // The project's check runs a script from the worktree: the agent wrote it.
        let hook = t.repo.join("scripts/check.sh");
        write_file(&hook, "#!/bin/sh\nexec sh ./check-from-agent.sh\n");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        t.git(&["add", "scripts/check.sh"]);
        t.git(&["commit", "-qm", "the project's check"]);
        let main = t.repo.display().to_string();
        write_file(
            &t.worktree("s").join("check-from-agent.sh"),
            &format!(
                "echo hacked > {main}/README.hacked 2>/dev/null; echo RESULT main=$?\n\
                 echo 'exit 0' > {main}/.git/hooks/pre-push 2>/dev/null; echo RESULT hooks=$?\n\
                 (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; echo RESULT net=$?\n\
                 echo built > build-output.txt; echo RESULT worktree=$?\n\
                 exit 0\n",
                port = other.port
            ),
        );
        t.set_config("[review]\nhook = \"./scripts/check.sh\"\n");
        let (code, out, err) = run(t.codex(&["session", "review", "s", "--format", "json"]));
        assert_eq!(code, 0, "{err}");
        let review = common::json(&out);
        let output = review["hook"]["output"].as_str().unwrap_or("").to_string();
        assert!(
            output.contains("sandbox strict"),
            "the log says how it ran:\n{output}"
        );
        let r = results(&output);
        assert_ne!(r.get("main").map(String::as_str), Some("0"), "{output}");
        assert_ne!(r.get("hooks").map(String::as_str), Some("0"), "{output}");
        assert_ne!(r.get("net").map(String::as_str), Some("0"), "{output}");
        assert_eq!(r.get("worktree").map(String::as_str), Some("0"), "{output}");
        assert!(!t.repo.join("README.hacked").exists());
        assert!(
            !t.repo.join(".git/hooks/pre-push").exists() || {
                let text =
                    std::fs::read_to_string(t.repo.join(".git/hooks/pre-push")).unwrap_or_default();
                !text.starts_with("exit 0")
            }
        );
        assert_eq!(other.hits(), 0);
    });
}

/// `sandbox.mode` changed after the session was added applies to its next run; a mode given
/// to `session add --sandbox` stays the session's; `run --sandbox` is for one run.
#[test]
fn the_mode_of_a_run_is_the_one_asked_for() {
    each_git(|t| {
        t.add("follows");
        t.codex(&["session", "add", "pinned", "--sandbox", "network-enabled"])
            .assert()
            .success();
        let mode = |id: &str, extra: &[&str]| {
            let mut args = vec!["session", "run", id];
            args.extend_from_slice(extra);
            args.extend(["--", "/bin/sh", "-c", "echo CODEX_NETWORK=$CODEX_NETWORK"]);
            let (code, out, err) = run(t.codex(&args));
            assert_eq!(code, 0, "{err}");
            (out.trim().to_string(), err)
        };
        let (out, err) = mode("follows", &[]);
        assert_eq!(out, "CODEX_NETWORK=disabled");
        assert!(err.contains("sandbox strict (from sandbox.mode)"), "{err}");
        t.codex(&["config", "set", "sandbox.mode", "network-enabled"])
            .assert()
            .success();
        let (out, err) = mode("follows", &[]);
        assert_eq!(out, "CODEX_NETWORK=enabled");
        assert!(
            err.contains("sandbox network-enabled (from sandbox.mode)"),
            "{err}"
        );
        assert_eq!(t.show("follows")["lastRun"]["sandbox"], "network-enabled");
        let (out, err) = mode("follows", &["--sandbox", "strict"]);
        assert_eq!(out, "CODEX_NETWORK=disabled");
        assert!(err.contains("sandbox strict (from --sandbox)"), "{err}");
        t.codex(&["config", "set", "sandbox.mode", "strict"])
            .assert()
            .success();
        let (out, err) = mode("pinned", &[]);
        assert_eq!(out, "CODEX_NETWORK=enabled");
        assert!(err.contains("(from session add --sandbox)"), "{err}");
        let (code, _, err) = run(t.codex(&[
            "session",
            "run",
            "pinned",
            "--sandbox",
            "open",
            "--",
            "true",
        ]));
        assert_eq!(code, 2, "{err}");
    });
}

/// `sandbox.writable_paths` takes a file: the agent may write that file and nothing beside
/// it; a path that holds the repository's git dir is refused.
#[test]
fn a_writable_file_is_that_file_only() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let notes = t.home.join("notes.txt");
        let beside = t.home.join("beside.txt");
        write_file(&notes, "mine\n");
        write_file(&beside, "mine too\n");
        t.set_config("[sandbox]\nwritable_paths = [\"~/notes.txt\"]\n");
        t.add("s");
        let (code, _, err) = run(t.codex(&[
            "session",
            "run",
            "s",
            "--",
            "/bin/sh",
            "-c",
            &format!(
                "echo agent >> {n}; echo agent >> {b} 2>/dev/null; true",
                n = notes.display(),
                b = beside.display()
            ),
        ]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "mine\nagent\n");
        assert_eq!(std::fs::read_to_string(&beside).unwrap(), "mine too\n");
        t.set_config("[sandbox]\nwritable_paths = [\".git\"]\n");
        let (code, _, err) = run(t.codex(&["session", "run", "s", "--", "true"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("holds or lies in"), "{err}");
    });
}

/// A known agent gets its own state dir in the session's state, seeded from the person's
/// config by copying: what it writes there never reaches the person's (a fake `codex` here;
/// tests/real_agents.rs runs the real one).
#[test]
fn a_known_agent_writes_its_own_copy_of_its_state() {
    each_git(|t| {
        let persons = "# the person's own\nmodel = \"o3\"\n";
        write_file(&t.home.join(".codex/config.toml"), persons);
        let bin = t.home.join("bin");
        let codex = bin.join("codex");
        write_file(
            &codex,
            "#!/bin/sh\necho \"CODEX_HOME=$CODEX_HOME\"\ncat \"$CODEX_HOME/config.toml\"\necho 'notify = [\"/tmp/evil\"]' >> \"$CODEX_HOME/config.toml\"\n",
        );
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        t.add("s");
        let path = format!(
            "{}:{}",
            bin.display(),
            t.vars()
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        );
        for _ in 0..2 {
            let mut cmd = t.codex(&["session", "run", "s", "--", "codex", "exec", "x"]);
            cmd.env("PATH", &path);
            let (code, out, err) = run(cmd);
            assert_eq!(code, 0, "{err}");
            let state = t.repo.join(".git/codex/agents/s/codex");
            assert!(
                out.contains(&format!("CODEX_HOME={}", state.display())),
                "{out}"
            );
            // Each run starts from the person's config, not from what the last run wrote.
            assert!(
                out.contains("model = \"o3\"") && !out.contains("notify"),
                "{out}"
            );
            assert!(err.contains("profile codex"), "{err}");
        }
        assert_eq!(
            std::fs::read_to_string(t.home.join(".codex/config.toml")).unwrap(),
            persons
        );
    });
}

/// With capabilities over the real namespaces (a person who runs git-codex as root has them)
/// an agent could remount `/` writable or unmount what hides the person's sockets and
/// files. Its capabilities are its own user namespace's only: every such try fails.
#[test]
fn the_agent_cannot_mount_its_way_out() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.add("s");
        let outside = t.repo.join("escaped.txt");
        let hooks = t.repo.join(".git/hooks");
        let agent = format!(
            "mount -o remount,rw / 2>/dev/null; umount -l /tmp 2>/dev/null; umount -l {hooks:?} 2>/dev/null; \
             mount -t tmpfs none {hooks:?} 2>/dev/null; echo escaped > {outside:?} 2>/dev/null; \
             unshare -m sh -c 'mount -o remount,rw / && echo escaped > {outside:?}' 2>/dev/null; true"
        );
        let (code, _, err) = run(t.codex(&["session", "run", "s", "--", "/bin/sh", "-c", &agent]));
        assert_eq!(code, 0, "{err}");
        assert!(!outside.exists(), "the agent wrote outside its session");
    });
}

/// A fifo named `.gitignore` blocks git for good when it opens it, the person's git and
/// git-codex's review and prune alike: what the agent leaves of them is cleared when its
/// run ends, and the person's commands finish.
#[test]
fn fifos_the_agent_leaves_do_not_hang_the_persons_git() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.add("s");
        let (code, _, err) = run(t.codex(&[
            "session",
            "run",
            "s",
            "--",
            "/bin/sh",
            "-c",
            "echo work > work.txt; mkdir -p deep/er; mkfifo .gitignore deep/er/.gitattributes",
        ]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("removed 2 fifo(s)"), "{err}");
        let mut review = t.codex(&["session", "review", "s", "--format", "json"]);
        review.timeout(std::time::Duration::from_secs(60));
        let (code, out, err) = run(review);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("work.txt"), "{out}");
        let status = t.git_output(&t.worktree("s"), &["status", "--porcelain"]);
        assert!(status.status.success());
    });
}

/// `session.setup` still runs for a session based on a branch of the person's own: only
/// session work nobody approved is kept from it (tests/attacker2.rs has that side).
#[test]
fn setup_runs_on_the_persons_own_base() {
    each_git(|t| {
        t.git(&["switch", "-q", "-c", "feature"]);
        t.commit_in(&t.repo, "f.txt", "the person's\n");
        t.git(&["switch", "-q", "main"]);
        t.codex(&[
            "config",
            "set",
            "session.setup",
            "[[\"touch\", \"setup-ran\"]]",
        ])
        .assert()
        .success();
        let (code, _, err) = run(t.codex(&["session", "add", "y", "--base", "feature"]));
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("was not run"), "{err}");
        assert!(t.worktree("y").join("setup-ran").exists());
    });
}
