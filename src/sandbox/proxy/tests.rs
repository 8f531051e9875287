//! The proxy against real servers on 127.0.0.1, through a real Unix socket.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::Utf8PathBuf;

use super::*;
use crate::sandbox::allow::Allowlist;

/// A log that tests can read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    socket: Utf8PathBuf,
    lines: Lines,
    proxy: Option<ProxyHandle>,
}

impl Setup {
    fn new(entries: &[String], allow_all: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let socket = Utf8PathBuf::from_path_buf(dir.path().join("proxy.sock")).unwrap();
        let lines = Lines::default();
        let policy = Policy {
            allowlist: Allowlist::parse(entries).unwrap(),
            allow_all,
            host_addrs: Vec::new(),
        };
        let log: Log = Arc::new(Mutex::new(lines.clone()));
        let proxy = start(&socket, policy, log).unwrap();
        Setup {
            _dir: dir,
            socket,
            lines,
            proxy: Some(proxy),
        }
    }

    fn client(&self) -> UnixStream {
        let client = UnixStream::connect(&self.socket).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        client
    }

    /// Sends `request` and reads the whole answer (the proxy closes after it).
    fn exchange(&self, request: &[u8]) -> String {
        let mut client = self.client();
        client.write_all(request).unwrap();
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Sends a CONNECT and reads the answer's head only (a tunnel stays open after it).
    fn tunnel(&self, request: &str) -> String {
        let mut client = self.client();
        client.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).into_owned()
    }
}

/// An echo server: each connection gets back what it sent, upper-cased, until it ends.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// An HTTP server that answers each request with its own head as the body.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut conn = reader.into_inner();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{head}",
                head.len()
            );
        }
    });
    port
}

fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn connect_to_a_listed_loopback_port_tunnels_both_ways() {
    let port = echo_server();
    let s = Setup::new(&[format!("127.0.0.1:{port}")], false);
    let mut client = s.client();
    write!(
        client,
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\nearly"
    )
    .unwrap();
    let mut answer = [0u8; 39];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200 Connection established\r\n\r\n");
    let mut back = [0u8; 5];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"EARLY");
    client.write_all(b" and later").unwrap();
    let mut back = [0u8; 10];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b" AND LATER");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let log = s.lines.text();
    assert!(
        log.contains(&format!(
            "# proxy: allowed CONNECT 127.0.0.1:{port} (127.0.0.1:{port})\n"
        )),
        "{log}"
    );
}

#[test]
fn connect_to_an_unlisted_loopback_port_is_refused_and_logged() {
    let listed = echo_server();
    let other = echo_server();
    let s = Setup::new(&[format!("127.0.0.1:{listed}")], true);
    let answer = s.exchange(format!("CONNECT 127.0.0.1:{other} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.contains("loopback"), "{answer}");
    let log = s.lines.text();
    assert!(
        log.contains(&format!("# proxy: refused 127.0.0.1:{other}: 127.0.0.1 is a loopback address, allowed only when 127.0.0.1:{other} is listed\n")),
        "{log}"
    );
    // Other spellings of the same address are the same address.
    for host in ["127.1", "0x7f.0.0.1", "2130706433", "[::ffff:127.0.0.1]"] {
        let answer = s.exchange(format!("CONNECT {host}:{other} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 403"), "{host}: {answer}");
    }
    let answer = s.tunnel(&format!("CONNECT 127.1:{listed} HTTP/1.1\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_name_resolving_to_loopback_needs_the_address_listed() {
    let port = echo_server();
    let s = Setup::new(&["localhost".to_string()], false);
    let answer = s.exchange(format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        s.lines.text().contains("is a loopback address"),
        "{}",
        s.lines.text()
    );
    let s = Setup::new(
        &["localhost".to_string(), format!("127.0.0.1:{port}")],
        false,
    );
    let answer = s.tunnel(&format!("CONNECT LocalHost.:{port} HTTP/1.1\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // An unlisted name is refused before it is looked up.
    let answer = s.exchange(b"CONNECT unlisted.invalid:443 HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        s.lines
            .text()
            .contains("refused unlisted.invalid:443: not in sandbox.allowed_domains"),
        "{}",
        s.lines.text()
    );
}

#[test]
fn plain_http_is_forwarded_in_origin_form() {
    let port = http_server();
    let s = Setup::new(&[format!("127.0.0.1:{port}")], false);
    let answer = s.exchange(
        format!(
            "GET http://127.0.0.1:{port}/path?q=1 HTTP/1.1\r\nHost: elsewhere\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: secret\r\nX-Kept: yes\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{body}");
    assert!(
        body.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{body}"
    );
    assert!(body.contains("X-Kept: yes\r\n"), "{body}");
    assert!(body.contains("Connection: close\r\n"), "{body}");
    assert!(!body.contains("elsewhere"), "{body}");
    assert!(!body.to_ascii_lowercase().contains("proxy-"), "{body}");
    let log = s.lines.text();
    assert!(
        log.contains(&format!(
            "# proxy: allowed GET 127.0.0.1:{port} (127.0.0.1:{port})"
        )),
        "{log}"
    );
    let refused =
        s.exchange(format!("GET http://127.0.0.1:{}/ HTTP/1.1\r\n\r\n", port ^ 1).as_bytes());
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
}

#[test]
fn malformed_requests_get_400_and_the_proxy_goes_on() {
    let port = echo_server();
    let s = Setup::new(&[format!("127.0.0.1:{port}")], false);
    for bad in [
        &b"NOT HTTP AT ALL\x00\r\n\r\n"[..],
        b"GET /origin-form HTTP/1.1\r\n\r\n",
        b"GET https://127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
        b"CONNECT :80 HTTP/1.1\r\n\r\n",
        b"CONNECT [::1:80 HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n",
        b"GET http://u:p@127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let answer = s.exchange(bad);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{}: {answer}",
            String::from_utf8_lossy(bad)
        );
    }
    // A request that names a host with a control character is refused, not logged raw.
    let answer = s.exchange(b"CONNECT a\x7fb:80 HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(s.lines.text().lines().all(|l| l.starts_with("# proxy: ")));
    // A client that goes away early costs nothing.
    drop(s.client());
    let answer = s.tunnel(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_header_bomb_is_cut_off_at_the_bound() {
    let s = Setup::new(&[], true);
    let mut client = s.client();
    client
        .write_all(b"GET http://example.test/ HTTP/1.1\r\n")
        .unwrap();
    let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
    let mut sent = 0;
    // Writing stops failing or blocking once the proxy answers and closes.
    client
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while sent < 10 * MAX_HEAD && client.write_all(line.as_bytes()).is_ok() {
        sent += line.len();
    }
    assert!(sent < 10 * MAX_HEAD, "the proxy kept reading");
    let mut answer = String::new();
    let _ = client.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let answer = s.exchange(format!("GET http://example.test/ HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[test]
fn socks5_connects_to_listed_addresses_and_refuses_others() {
    let port = echo_server();
    let other = echo_server();
    let s = Setup::new(&[format!("127.0.0.1:{port}")], false);
    let socks = |request: &[u8]| -> (UnixStream, [u8; 10]) {
        let mut client = s.client();
        client.write_all(&[5, 2, 2, 0]).unwrap();
        let mut choice = [0u8; 2];
        client.read_exact(&mut choice).unwrap();
        assert_eq!(choice, [5, 0]);
        client.write_all(request).unwrap();
        let mut reply = [0u8; 10];
        client.read_exact(&mut reply).unwrap();
        (client, reply)
    };
    let [hi, lo] = port.to_be_bytes();
    let (mut client, reply) = socks(&[5, 1, 0, 1, 127, 0, 0, 1, hi, lo]);
    assert_eq!(reply[..2], [5, 0]);
    client.write_all(b"socks").unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"SOCKS");
    let mut domain = vec![5, 1, 0, 3, 9];
    domain.extend_from_slice(b"localhost");
    domain.extend_from_slice(&port.to_be_bytes());
    assert_eq!(
        socks(&domain).1[..2],
        [5, 2],
        "localhost is a name, not listed"
    );
    let [hi, lo] = other.to_be_bytes();
    assert_eq!(socks(&[5, 1, 0, 1, 127, 0, 0, 1, hi, lo]).1[..2], [5, 2]);
    let mut v6 = vec![5, 1, 0, 4];
    v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    v6.extend_from_slice(&port.to_be_bytes());
    assert_eq!(socks(&v6).1[..2], [5, 2]);
    assert_eq!(socks(&[5, 2, 0, 1, 127, 0, 0, 1, hi, lo]).1[..2], [5, 7]);
    let log = s.lines.text();
    assert!(
        log.contains(&format!(
            "# proxy: allowed SOCKS5 127.0.0.1:{port} (127.0.0.1:{port})"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("# proxy: refused [::1]:{port}: ")),
        "{log}"
    );
    // A client offering only authentication is turned away.
    let mut client = s.client();
    client.write_all(&[5, 1, 2]).unwrap();
    let mut choice = [0u8; 2];
    client.read_exact(&mut choice).unwrap();
    assert_eq!(choice, [5, 0xFF]);
}

#[test]
fn an_allowed_destination_that_does_not_answer_is_a_502() {
    let port = unused_port();
    let s = Setup::new(&[format!("127.0.0.1:{port}")], false);
    let answer = s.exchange(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert!(
        s.lines
            .text()
            .contains(&format!("# proxy: failed 127.0.0.1:{port}: "))
    );
}

#[test]
fn check_says_where_it_connected_or_why_not() {
    let port = echo_server();
    let policy = Policy {
        allowlist: Allowlist::parse(&[format!("127.0.0.1:{port}"), "localhost".into()]).unwrap(),
        allow_all: false,
        host_addrs: Vec::new(),
    };
    let timeout = Duration::from_secs(2);
    assert_eq!(
        check(&policy, "127.0.0.1", port, timeout),
        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
    );
    assert_eq!(
        check(&policy, "localhost", port, timeout),
        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
    );
    let err = check(&policy, "localhost", port ^ 1, timeout).unwrap_err();
    assert!(err.starts_with("refused: "), "{err}");
}

#[test]
fn the_socket_is_made_fresh_and_removed_when_the_proxy_stops() {
    let mut s = Setup::new(&[], false);
    // A second proxy on a live socket path replaces only a socket.
    let dir = tempfile::tempdir().unwrap();
    let file = Utf8PathBuf::from_path_buf(dir.path().join("file")).unwrap();
    std::fs::write(&file, "keep").unwrap();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let err = start(&file, Policy::default(), log.clone()).err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    let link = Utf8PathBuf::from_path_buf(dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink(&s.socket, &link).unwrap();
    assert!(start(&link, Policy::default(), log.clone()).is_err());
    assert!(s.socket.exists(), "the link was not followed");
    std::fs::remove_file(&link).unwrap();
    let started = std::time::Instant::now();
    s.proxy.take();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!s.socket.exists());
    assert!(UnixStream::connect(&s.socket).is_err());
    // A stale socket left by a proxy that died is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&s.socket).unwrap();
    drop(stale);
    let again = start(&s.socket, Policy::default(), log).unwrap();
    assert!(UnixStream::connect(&s.socket).is_ok());
    drop(again);
}

/// Plain forwarding carries one request: a second one pipelined after the first's body (for
/// another Host on the same server) never reaches the server; a chunked body is refused.
#[test]
fn plain_http_carries_one_request_only() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            // Whatever arrives within a moment, sent back as the body; then the end.
            conn.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                got.len()
            );
            let _ = conn.write_all(&got);
        }
    });
    let s = Setup::new(&[format!("127.0.0.1:{port}")], false);
    let answer = s.exchange(
        format!(
            "POST http://127.0.0.1:{port}/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: smuggled.test\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("POST /a HTTP/1.1\r\n") && answer.ends_with("hello"),
        "{answer}"
    );
    assert!(!answer.contains("smuggled"), "{answer}");
    let chunked = s.exchange(
        format!(
            "POST http://127.0.0.1:{port}/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(chunked.starts_with("HTTP/1.1 411"), "{chunked}");
}
