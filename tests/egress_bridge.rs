//! Egress in strict mode (SPEC §7), end to end: `sandbox-proxy` on a Unix socket on the host,
//! `sandbox-exec` as the first process of a new network namespace (made by `unshare` and by
//! `bwrap`), and python3 inside reaching the host's 127.0.0.1 servers only as the allowlist says.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, TestEnv, gits, json, run};

const PYTHON: &str = "/usr/bin/python3";

/// The ways this machine can make a network namespace: each a command prefix.
fn wrappers() -> Vec<Vec<String>> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let mut found = Vec::new();
    // Unprivileged unshare first (the variant the product uses), then bwrap.
    for name in ["unshare", "bwrap"] {
        let Some(&(_, prefix)) = common::sandbox::NET_NAMESPACE_WRAPPERS
            .iter()
            .find(|(n, _)| *n == name)
        else {
            continue;
        };
        let works = Command::new(prefix[0])
            .args(&prefix[1..])
            .arg("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            found.push(prefix.iter().map(|s| s.to_string()).collect());
        } else {
            assert!(
                !ci,
                "CI must be able to make a network namespace with {name}"
            );
            eprintln!("note: skipping {name}: it cannot make a network namespace here");
        }
    }
    if !Path::new(PYTHON).exists() {
        assert!(!ci, "CI must have {PYTHON}");
        eprintln!("note: skipping: {PYTHON} is absent");
        return Vec::new();
    }
    found
}

/// An HTTP server on 127.0.0.1 answering every request with `body`.
fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// The proxy, killed when dropped.
struct Proxy {
    child: Child,
    socket: PathBuf,
}

impl Proxy {
    fn start(dir: &Path, allow: &[String]) -> Proxy {
        let socket = dir.join("proxy.sock");
        let mut cmd = Command::new(BIN);
        cmd.arg("sandbox-proxy").arg("--socket").arg(&socket);
        for entry in allow {
            cmd.args(["--allow", entry]);
        }
        let child = cmd
            .stderr(std::fs::File::create(dir.join("proxy.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Proxy { child, socket }
    }

    fn log(&self) -> String {
        let dir = self.socket.parent().unwrap();
        std::fs::read_to_string(dir.join("proxy.log")).unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sandbox-exec` under `wrapper`, with the proxy on port 3128 inside.
fn sandbox_exec(wrapper: &[String], proxy: &Proxy, forward: &[String], agent: &[&str]) -> Command {
    let mut cmd = Command::new(&wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg(BIN)
        .arg("sandbox-exec")
        .arg("--proxy-socket")
        .arg(&proxy.socket)
        .args(["--proxy-port", "3128"]);
    for target in forward {
        cmd.args(["--forward", target]);
    }
    cmd.arg("--").args(agent);
    cmd
}

/// Inside the namespace: each way of reaching the host's servers, one line each.
const CLIENT: &str = r#"
import os, socket, sys, urllib.request
listed, unlisted = sys.argv[1], sys.argv[2]
# The agent's own loopback bypasses the proxy; here the proxy is what is tried.
print("no_proxy", os.environ.pop("no_proxy"), os.environ.pop("NO_PROXY"))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": os.environ["HTTP_PROXY"]}))
def fetch(name, open_, url):
    try:
        with open_(url, timeout=10) as r:
            print(name, r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        print(name, e.code)
    except urllib.error.URLError as e:
        print(name, "failed", type(e.reason).__name__)
fetch("proxied-listed", opener.open, f"http://127.0.0.1:{listed}/x")
fetch("proxied-unlisted", opener.open, f"http://127.0.0.1:{unlisted}/x")
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
fetch("forwarded-listed", direct.open, f"http://127.0.0.1:{listed}/x")
fetch("direct-unlisted", direct.open, f"http://127.0.0.1:{unlisted}/x")
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(f"CONNECT 127.0.0.1:{listed} HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n".encode())
data = b""
while chunk := s.recv(4096):
    data += chunk
print("tunnel", data.split(b"\r\n")[0].decode(), data.endswith(b"listed"))
sys.exit(7)
"#;

#[test]
fn the_agent_reaches_only_listed_host_services_through_the_proxy() {
    let listed = http_server("listed");
    let unlisted = http_server("unlisted");
    for wrapper in wrappers() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(dir.path(), &[format!("127.0.0.1:{listed}")]);
        let out = sandbox_exec(
            &wrapper,
            &proxy,
            &[format!("127.0.0.1:{listed}")],
            &[
                PYTHON,
                "-c",
                CLIENT,
                &listed.to_string(),
                &unlisted.to_string(),
            ],
        )
        .output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{}:\n{stdout}{stderr}\nproxy:\n{}", wrapper[0], proxy.log());
        assert_eq!(out.status.code(), Some(7), "{what}");
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [
                "no_proxy localhost,127.0.0.1,::1 localhost,127.0.0.1,::1",
                "proxied-listed 200 listed",
                "proxied-unlisted 403",
                "forwarded-listed 200 listed",
                "direct-unlisted failed ConnectionRefusedError",
                "tunnel HTTP/1.1 200 Connection established True",
            ],
            "{what}"
        );
        let log = proxy.log();
        let allowed = format!("# proxy: allowed GET 127.0.0.1:{listed} (127.0.0.1:{listed})");
        let refused = format!("# proxy: refused 127.0.0.1:{unlisted}: ");
        let tunnel = format!("# proxy: allowed CONNECT 127.0.0.1:{listed} (127.0.0.1:{listed})");
        for line in [allowed, refused, tunnel] {
            assert!(log.contains(&line), "{line} in\n{what}");
        }
    }
}

/// A signal for the agent goes to its whole process group, as a terminal's Ctrl-C does and as
/// git-codex passes one on: everything between git-codex and the agent (the wrapper, here made
/// to ignore them as git-codex makes bwrap; sandbox-exec) lets it by, the agent gets it once
/// with its default disposition back, and its end is sandbox-exec's.
#[test]
fn signals_reach_the_agent_and_its_end_is_sandbox_execs() {
    use std::os::unix::process::CommandExt as _;
    for wrapper in wrappers() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(dir.path(), &[]);
        let agent = "import signal, sys, time, os\n\
            count = []\n\
            signal.signal(signal.SIGTERM, lambda *a: count.append(1))\n\
            print('ready', flush=True)\n\
            time.sleep(1)\n\
            sys.exit(40 + len(count))";
        let mut cmd = sandbox_exec(&wrapper, &proxy, &[], &[PYTHON, "-c", agent]);
        cmd.stdout(Stdio::piped()).process_group(0);
        // SAFETY: only signal(2) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                    libc::signal(signal, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let group = i32::try_from(child.id()).unwrap();
        // SAFETY: kill of the process group we made.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        assert_eq!(
            child.wait().unwrap().code(),
            Some(41),
            "{}: the agent got the signal exactly once, and its end came back",
            wrapper[0]
        );
        let out = sandbox_exec(&wrapper, &proxy, &[], &["sh", "-c", "kill -KILL $$"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(128 + 9), "{}", wrapper[0]);
    }
}

#[test]
fn nothing_lingers_when_sandbox_execs_parent_dies() {
    for wrapper in wrappers().into_iter().filter(|w| w[0] == "unshare") {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(dir.path(), &[]);
        let pidfile = dir.path().join("agent.pid");
        let agent = format!("echo $$ > {}; exec sleep 60", pidfile.display());
        // A shell stands in for git-codex: sandbox-exec's parent, killed outright.
        let inner = sandbox_exec(&wrapper, &proxy, &[], &["sh", "-c", &agent]);
        let words: Vec<String> = std::iter::once(inner.get_program())
            .chain(inner.get_args())
            .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', "'\\''")))
            .collect();
        let mut parent = Command::new("sh")
            .args(["-c", &format!("{} & wait", words.join(" "))])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Ok(text) = std::fs::read_to_string(&pidfile)
                && let Ok(pid) = text.trim().parse::<i32>()
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        parent.kill().unwrap();
        parent.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            assert!(Instant::now() < deadline, "the agent outlived sandbox-exec");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `pid` runs (a zombie waiting for its reaper does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// `doctor`'s check named `name`.
fn doctor_check(t: &TestEnv, name: &str) -> serde_json::Value {
    let (_, out, err) = run(t.codex(&["doctor", "--json"]));
    let v = json(&out);
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} check in {out}{err}"))
}

#[test]
fn doctor_checks_allowed_domains_as_the_proxy_would() {
    let listed = http_server("listed");
    let t = TestEnv::new(&gits()[0]);
    t.set_config(&format!(
        "[sandbox]\nallowed_domains = [\"127.0.0.1:{listed}\", \"*.example.test\"]\n"
    ));
    let c = doctor_check(&t, "domains");
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(
        c["detail"],
        "all 1 allowed destinations reachable (1 *.host entries not tried)"
    );
    t.set_config(&format!(
        "[sandbox]\nallowed_domains = [\"127.0.0.1:{listed}\", \"localhost:{}\"]\n",
        listed ^ 1
    ));
    let c = doctor_check(&t, "domains");
    assert_eq!(c["status"], "warn", "{c}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("the proxy would refuse localhost:{}", listed ^ 1)),
        "{detail}"
    );
    assert!(detail.contains("is a loopback address"), "{detail}");
    assert!(c["hint"].as_str().unwrap().contains("ip:port"), "{c}");
    t.set_config("[sandbox]\nallowed_domains = [\"127.0.0.1\"]\n");
    let c = doctor_check(&t, "config");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("'127.0.0.1'"), "{c}");
}

#[test]
fn config_refuses_an_allowlist_entry_it_cannot_read() {
    let t = TestEnv::new(&gits()[0]);
    for bad in ["https://api.example.com", "127.1:80", "10.0.0.1", "*.com"] {
        let (code, _, err) = run(t.codex(&["config", "set", "sandbox.allowed_domains", bad]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        assert!(err.contains("127.0.0.1:11434"), "{bad}: {err}");
    }
    let (code, _, err) = run(t.codex(&[
        "config",
        "set",
        "sandbox.allowed_domains",
        "api.example.com, *.example.org, 127.0.0.1:11434, [::1]:8080",
    ]));
    assert_eq!(code, 0, "{err}");
    t.set_config("[sandbox]\nallowed_domains = [\"ok.example.com\", \"bad host\"]\n");
    let (code, _, err) = run(t.codex(&["config", "validate"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'bad host'"), "{err}");
}
