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
    pub fn wrap(
        &self,
        self_exe: &str,
        words: Vec<OsString>,
        die_with_parent: bool,
    ) -> Vec<OsString> {
        let mut gated: Vec<OsString> = [
            self_exe,
            "sandbox-gate",
            "--fd",
            &self.read.as_raw_fd().to_string(),
        ]
        .map(OsString::from)
        .to_vec();
        if die_with_parent {
            gated.push("--die-with-parent".into());
        }
        gated.push("--".into());
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

/// `words` (a program and its arguments) run by this binary's gate without waiting for a
/// record, ending with git-codex while it runs, and what it started with it (session.setup,
/// which must not write into a worktree the next command has rolled back).
pub fn dying_with_us(words: &[String]) -> io::Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["sandbox-gate", "--die-with-parent", "--leave", "--"])
        .args(words);
    Ok(cmd)
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

/// Runs `program` as a child and stays its parent until it and everything it started have
/// ended (a child subreaper: what they leave behind is reparented here, not to init), then
/// returns its exit code. The gate's pid is what the record names: it lives exactly as long
/// as any process of the run does, whatever bwrap's own processes do when git-codex dies
/// (bwrap forks, and its first process may end while the sandbox lives on).
///
/// With `leave`, returns as soon as the program itself ends and leaves what it started in
/// the background running (session.setup may start a server for the session).
pub fn supervise(
    program: &str,
    args: &[String],
    die_with_parent: bool,
    leave: bool,
) -> io::Result<i32> {
    // SAFETY: prctl with integer arguments touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let parent = std::os::unix::process::parent_id();
    if die_with_parent {
        // git-codex's death arrives as SIGTERM, taken below between waits (blocked, so that
        // it is never lost and never kills the gate before it has ended the run).
        block_term(libc::SIG_BLOCK)?;
        // SAFETY: as above.
        if unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        if std::os::unix::process::parent_id() != parent {
            return Ok(1); // git-codex is gone already: nothing starts.
        }
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    if die_with_parent {
        // SAFETY: sigprocmask is async-signal-safe and the only call between fork and exec.
        unsafe {
            cmd.pre_exec(|| block_term(libc::SIG_UNBLOCK));
        }
    }
    let child = cmd.spawn()?;
    let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
    let mut code = 1;
    let mut ending = false;
    loop {
        // Once git-codex is gone, every round: what forked while the last round killed is
        // found by the next.
        ending = ending || (die_with_parent && term_pending());
        if ending {
            end_descendants();
        }
        let mut status = 0;
        let flags = if die_with_parent { libc::WNOHANG } else { 0 };
        // SAFETY: waitpid writes only `status`.
        let ended = unsafe { libc::waitpid(-1, &mut status, flags) };
        if ended == pid {
            code = super::child::exit_code(status);
            // Once git-codex is gone, what the program started goes too, even what it forked
            // as it was killed: the rounds go on until nothing is left.
            if leave && !ending {
                return Ok(code);
            }
        } else if ended == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        } else if ended < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ECHILD) => return Ok(code),
                Some(libc::EINTR) => {}
                _ => return Err(err),
            }
        }
    }
}

/// Blocks or unblocks SIGTERM in this thread.
fn block_term(how: libc::c_int) -> io::Result<()> {
    // SAFETY: the set is initialised by sigemptyset before use; sigprocmask reads it only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(how, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether a (blocked) SIGTERM is pending, taking it.
fn term_pending() -> bool {
    // SAFETY: as in `block_term`; sigtimedwait with a zero timeout only polls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGTERM
    }
}

/// SIGKILL to every process below this one (children, and what was reparented here).
fn end_descendants() {
    let me = std::process::id();
    for pid in crate::procfs::pids() {
        let mut up = pid;
        for _ in 0..64 {
            match crate::procfs::parent_of(up) {
                Some(p) if p == me => {
                    // SAFETY: kill with integer arguments touches no memory.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    break;
                }
                Some(p) if p > 1 => up = p,
                _ => break,
            }
        }
    }
}
