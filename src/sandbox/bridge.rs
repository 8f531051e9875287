//! The namespace side of egress (SPEC §7): inside the agent's network namespace there is only
//! loopback, so `sandbox-exec` offers the proxy's Unix socket (bound in at the same path) on
//! 127.0.0.1, and carries the host's allowed loopback services (`--forward 127.0.0.1:11434`)
//! through the proxy to clients that know nothing of proxies.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

/// How long the proxy may take to answer a CONNECT.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a proxy's answer head may hold.
const MAX_ANSWER: usize = 16 * 1024;

/// A connected byte stream that can be split in two directions.
pub(crate) trait Stream: Read + Write + Send + Sized + 'static {
    fn clone_stream(&self) -> io::Result<Self>;
    fn shut(&self, how: Shutdown);
}

impl Stream for TcpStream {
    fn clone_stream(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shut(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

impl Stream for UnixStream {
    fn clone_stream(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shut(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

/// Copies bytes both ways until both sides have finished; a side that ends its writing has
/// the other side's writing ended in turn, and an error ends both.
pub(crate) fn relay<A: Stream, B: Stream>(a: A, b: B) {
    let (Ok(a2), Ok(b2)) = (a.clone_stream(), b.clone_stream()) else {
        return;
    };
    let upward = std::thread::spawn(move || pump(a2, b2));
    pump(b, a);
    let _ = upward.join();
}

fn pump<R: Stream, W: Stream>(mut from: R, mut to: W) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => to.shut(Shutdown::Write),
        Err(_) => {
            from.shut(Shutdown::Both);
            to.shut(Shutdown::Both);
        }
    }
}

/// Serves `listener` forever: each connection is joined to a new connection to `socket`.
pub fn spawn_to_socket(listener: TcpListener, socket: Utf8PathBuf) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let socket = socket.clone();
            std::thread::spawn(move || {
                if let Ok(proxy) = UnixStream::connect(&socket) {
                    relay(conn, proxy);
                }
            });
        }
    })
}

/// Serves `listener` forever: each connection is carried through the proxy at `socket` with
/// a CONNECT to `target`; one the proxy refuses is closed.
pub fn spawn_through_proxy(
    listener: TcpListener,
    socket: Utf8PathBuf,
    target: SocketAddr,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let socket = socket.clone();
            std::thread::spawn(move || {
                if let Ok(proxy) = connect_through(&socket, target) {
                    relay(conn, proxy);
                }
            });
        }
    })
}

/// Opens a tunnel to `target` through the proxy at `socket`.
pub fn connect_through(socket: &Utf8Path, target: SocketAddr) -> io::Result<UnixStream> {
    let mut proxy = UnixStream::connect(socket)?;
    proxy.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    proxy.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        // Byte by byte up to the end of the head: what follows is the tunnel's first data.
        let n = proxy.read(&mut chunk[..1])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection",
            ));
        }
        head.push(chunk[0]);
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
        if head.len() > MAX_ANSWER {
            return Err(io::Error::other("the proxy's answer is too long"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(&head) {
        Ok(httparse::Status::Complete(_)) if answer.code == Some(200) => {
            proxy.set_read_timeout(None)?;
            Ok(proxy)
        }
        Ok(httparse::Status::Complete(_)) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the proxy answered {} {}",
                answer.code.unwrap_or(0),
                answer.reason.unwrap_or("")
            ),
        )),
        Ok(httparse::Status::Partial) | Err(_) => {
            Err(io::Error::other("the proxy's answer is not HTTP"))
        }
    }
}

/// Whether the loopback interface is up (bwrap brings it up in the namespace it makes, and
/// may leave us without the capability to touch it again).
#[cfg(target_os = "linux")]
pub fn loopback_is_up() -> bool {
    // SAFETY: a plain socket and one ioctl on a zeroed, correctly sized `ifreq`; the fd is
    // closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return false;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        let result = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        libc::close(fd);
        result >= 0 && (ifr.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short) != 0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn loopback_is_up() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn relay_carries_both_ways_and_passes_the_end_on() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (mut conn, _) = server.accept().unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).unwrap();
            conn.write_all(&got).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let socket = Utf8PathBuf::from_path_buf(dir.path().join("s")).unwrap();
        let unix = UnixListener::bind(&socket).unwrap();
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        spawn_to_socket(front, socket);
        std::thread::spawn(move || {
            let (conn, _) = unix.accept().unwrap();
            relay(conn, TcpStream::connect(addr).unwrap());
        });
        let mut client = TcpStream::connect(front_addr).unwrap();
        client.write_all(b"hello through two hops").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        client.read_to_string(&mut back).unwrap();
        assert_eq!(back, "hello through two hops");
        echo.join().unwrap();
    }

    #[test]
    fn loopback_is_up_here() {
        assert!(loopback_is_up());
    }
}
