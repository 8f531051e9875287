//! The egress proxy (SPEC §7): git-codex runs it on a Unix socket for the length of an agent
//! run; the agent's namespace reaches it through src/sandbox/bridge.rs. It speaks HTTP CONNECT,
//! plain HTTP forwarding of absolute-form `http://` requests (one request per connection), and
//! SOCKS5 (no authentication, CONNECT), told apart by the first byte. It resolves names itself,
//! after the name passed the policy (an unlisted name never reaches DNS), and connects only to
//! addresses the policy allows (src/sandbox/allow.rs). Every decision is one log line:
//!
//! ```text
//! # proxy: allowed CONNECT host:port (addr)      (GET, POST… for plain HTTP; SOCKS5)
//! # proxy: refused host:port: reason
//! # proxy: failed host:port: reason             (allowed, but it could not be reached)
//! # proxy: bad request: reason
//! ```

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

use super::allow::{Policy, Target};
use super::bridge::relay;
use crate::output::escape;

/// The most a request head (request line and headers) may hold.
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one connection attempt to a destination may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once, so an agent cannot exhaust threads.
const MAX_CONNECTIONS: usize = 512;

pub type Log = Arc<Mutex<dyn Write + Send>>;

/// The running proxy. Dropping it stops accepting and removes the socket file; tunnels
/// already open may end.
pub struct ProxyHandle {
    socket: Utf8PathBuf,
    listener: Arc<UnixListener>,
    identity: (u64, u64),
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Shutting a listening socket down wakes the thread blocked in accept (Linux).
        // SAFETY: the fd is the listener's, alive as long as `self.listener`.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Only the file we made: someone may have put another in its place.
        if std::fs::symlink_metadata(&self.socket)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
        {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

/// Starts the proxy on a Unix socket made fresh at `socket` (a stale socket there is removed;
/// anything else there is an error, and links are never followed). The socket's directory
/// should be private: anyone who can connect can use the proxy.
pub fn start(socket: &Utf8Path, policy: Policy, log: Log) -> io::Result<ProxyHandle> {
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{socket} exists and is not a socket"),
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let listener = Arc::new(UnixListener::bind(socket)?);
    let meta = std::fs::symlink_metadata(socket)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (listener, stop) = (listener.clone(), stop.clone());
        let policy = Arc::new(policy);
        std::thread::Builder::new()
            .name("egress-proxy".into())
            .spawn(move || accept_loop(&listener, &stop, &policy, &log))?
    };
    Ok(ProxyHandle {
        socket: socket.to_owned(),
        listener,
        identity: (meta.dev(), meta.ino()),
        stop,
        thread: Some(thread),
    })
}

fn accept_loop(listener: &UnixListener, stop: &AtomicBool, policy: &Arc<Policy>, log: &Log) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if stop.load(Ordering::SeqCst) => break,
            Err(_) => {
                // Out of descriptors, say: give it a moment rather than spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            log_line(log, "bad request: too many connections at once");
            continue;
        }
        let (policy, thread_log, thread_active) = (policy.clone(), log.clone(), active.clone());
        let spawned = std::thread::Builder::new().spawn(move || {
            serve(conn, &policy, &thread_log);
            thread_active.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
            log_line(log, "bad request: cannot start a thread for a connection");
        }
    }
}

/// Writes one `# proxy: …` line, made safe: hosts come from the agent.
fn log_line(log: &Log, message: &str) {
    let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = writeln!(log, "# proxy: {}", escape::line(message));
    let _ = log.flush();
}

/// Why a destination was not reached.
#[derive(Debug)]
enum Failure {
    /// The policy says no (403, SOCKS 0x02).
    Refused(String),
    /// Allowed, but the name did not resolve (502, SOCKS 0x04).
    Unresolved(String),
    /// Allowed, but no address answered (502, SOCKS 0x05 or 0x01).
    Unreachable(io::Error),
}

impl Failure {
    fn log(&self, log: &Log, host: &str, port: u16) {
        let dest = show(host, port);
        match self {
            Failure::Refused(why) => log_line(log, &format!("refused {dest}: {why}")),
            Failure::Unresolved(why) => log_line(log, &format!("failed {dest}: {why}")),
            Failure::Unreachable(err) => log_line(log, &format!("failed {dest}: {err}")),
        }
    }

    fn reason(&self) -> String {
        match self {
            Failure::Refused(why) | Failure::Unresolved(why) => why.clone(),
            Failure::Unreachable(err) => err.to_string(),
        }
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn show(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves and checks `host`:`port` and connects to the first allowed address that answers.
fn connect(
    policy: &Policy,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), Failure> {
    let target = Target::parse(host).map_err(Failure::Refused)?;
    policy
        .check_target(&target, port)
        .map_err(Failure::Refused)?;
    let resolved: Vec<SocketAddr> = match &target {
        Target::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Target::Name(name) => (name.as_str(), port)
            .to_socket_addrs()
            .map_err(|err| Failure::Unresolved(format!("cannot resolve {name}: {err}")))?
            .collect(),
    };
    let allowed = policy
        .decide(host, port, &resolved)
        .map_err(Failure::Refused)?;
    let mut last = io::Error::other("no address to connect to");
    for addr in allowed {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok((stream, addr)),
            Err(err) => last = err,
        }
    }
    Err(Failure::Unreachable(last))
}

/// What `doctor` asks: would the agent reach `host`:`port` through the proxy? Resolves, applies
/// the policy, connects (each attempt bounded by `timeout`) and says to which address.
pub fn check(
    policy: &Policy,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    connect(policy, host, port, timeout)
        .map(|(_, addr)| addr)
        .map_err(|failure| match failure {
            Failure::Refused(why) => format!("refused: {why}"),
            other => other.reason(),
        })
}

/// One client connection: read what it asks for, answer, and relay.
fn serve(conn: UnixStream, policy: &Policy, log: &Log) {
    let _ = conn.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = conn.set_write_timeout(Some(REQUEST_TIMEOUT));
    let mut incoming = Incoming {
        stream: conn,
        buf: Vec::new(),
    };
    match incoming.fill(1) {
        Ok(()) if incoming.buf[0] == 0x05 => socks::serve(incoming, policy, log),
        Ok(()) => http::serve(incoming, policy, log),
        Err(_) => {}
    }
}

/// A client connection and what has been read from it but not yet used.
struct Incoming {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Incoming {
    /// Reads until at least `n` bytes are buffered.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let got = self.stream.read(&mut chunk)?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(())
    }

    /// Takes the first `n` bytes, reading them first when needed.
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        self.fill(n)?;
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Plain forwarding, one request: sends exactly `body` bytes of what follows the head
    /// (what was read past it first) to `upstream`, then only the answer comes back. Whatever
    /// the client sends after its body (a second, pipelined request, for another Host on the
    /// same server) goes nowhere: each request is checked and logged on its own connection.
    fn forward_one(mut self, mut upstream: TcpStream, body: u64) {
        let mut left = body;
        let now = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        if upstream.write_all(&self.buf[..now]).is_err() {
            return;
        }
        left -= now as u64;
        let mut chunk = [0u8; 8192];
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if upstream.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            }
        }
        let _ = self.stream.set_write_timeout(None);
        let _ = std::io::copy(&mut upstream, &mut self.stream);
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Sends what was read past the request on to `upstream`, then relays.
    fn relay_to(self, mut upstream: TcpStream) {
        let _ = self.stream.set_read_timeout(None);
        let _ = self.stream.set_write_timeout(None);
        if upstream.write_all(&self.buf).is_err() {
            let _ = self.stream.shutdown(Shutdown::Both);
            return;
        }
        relay(self.stream, upstream);
    }
}

/// How an address shows in a log line.
fn show_addr(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
    }
}

mod http;
mod socks;

#[cfg(test)]
mod tests;
