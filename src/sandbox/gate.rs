//! The agent starts only once its run is recorded (issue 16): were it to run first, a
//! git-codex killed before writing the record would leave an agent at work in a session that
//! looks idle, and an expired one would be pruned under it.
//!
//! What `session run` starts is `git-codex sandbox-gate --fd N -- <the sandbox and agent>`.
//! The gate waits on a pipe until git-codex has written the record (the gate's pid and start
//! time, which become the agent's when it execs) and then says so with one byte; only then
//! does it exec what it wraps. A git-codex that dies first closes the pipe, and the gate ends
//! without starting anything. (A pre-exec hook cannot wait for the parent: the standard
//! library's spawn itself waits for the exec.)

use std::ffi::OsString;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::Command;

/// The parent's side: the pipe until the record is written.
pub struct Gate {
    read: OwnedFd,
    write: OwnedFd,
}

impl Gate {
    /// A new pipe, both ends closed on exec (nothing else git-codex starts keeps them).
    pub fn new() -> io::Result<Gate> {
        let mut fds = [-1; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Gate { read, write })
    }

    /// `words` (a program and its arguments) behind the gate, run by `self_exe`.
    pub fn wrap(&self, self_exe: &str, words: Vec<OsString>) -> Vec<OsString> {
        let mut gated: Vec<OsString> = [
            self_exe,
            "sandbox-gate",
            "--fd",
            &self.read.as_raw_fd().to_string(),
            "--",
        ]
        .map(OsString::from)
        .to_vec();
        gated.extend(words);
        gated
    }

    /// The gate's end of the pipe stays open across its exec (and only its end: the parent's
    /// end closes there, so the gate sees the pipe end when git-codex does).
    pub fn install(&self, cmd: &mut Command) {
        let fd = self.read.as_raw_fd();
        // SAFETY: fcntl is async-signal-safe and the only call between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// After the record names the gate's process: lets it start the agent.
    pub fn open(self) -> io::Result<()> {
        drop(self.read);
        std::fs::File::from(self.write).write_all(b"1")
    }
}

/// In the gate: waits until git-codex says the run is recorded (`true`), or has ended
/// without saying so (`false`). The pipe is closed either way, so the agent never sees it.
pub fn wait(fd: i32) -> io::Result<bool> {
    // SAFETY: fcntl on an arbitrary integer touches no memory; a bad fd is an error.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process alone.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut byte = [0u8; 1];
    loop {
        match pipe.read(&mut byte) {
            Ok(n) => return Ok(n == 1),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
