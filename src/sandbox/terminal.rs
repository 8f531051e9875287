//! An interactive agent gets a terminal: when git-codex itself runs in one, the agent runs on
//! a pseudo-terminal whose output git-codex copies to the real terminal and to the log, with
//! the real terminal in raw mode so keys (Ctrl-C included) reach the agent as typed.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

/// The parent's side of the agent's pseudo-terminal.
pub struct Pty {
    master: File,
    slave: Option<OwnedFd>,
}

/// Whether git-codex talks to a person in a terminal.
pub fn interactive() -> bool {
    // SAFETY: isatty only inspects the given descriptors.
    unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 }
}

/// Whether git-codex's stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(0) == 1 }
}

/// Gives `cmd` a pseudo-terminal as stdin, stdout and stderr, the size of ours, and makes it
/// the agent's controlling terminal.
pub fn attach(cmd: &mut Command) -> std::io::Result<Pty> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the provided integers; null name, termios
    // and window size pointers are allowed.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if opened != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty succeeded, so both descriptors are open and owned by us alone.
    let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    copy_window_size(slave.as_raw_fd());
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: only async-signal-safe calls between fork and exec: a new session, and the
    // pseudo-terminal (now stdin) as its controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(Pty {
        master,
        slave: Some(slave),
    })
}

fn copy_window_size(to: i32) {
    // SAFETY: a zeroed winsize filled by one ioctl and passed to another; both are
    // async-signal-safe, so this also runs inside the SIGWINCH handler.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &size);
        }
    }
}

/// The master of the agent's terminal, for the SIGWINCH handler (-1: none).
static RESIZE_TARGET: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_resize(_: libc::c_int) {
    let target = RESIZE_TARGET.load(Ordering::Relaxed);
    if target >= 0 {
        copy_window_size(target);
    }
}

/// When our terminal is resized, so is the agent's (which then gets its own SIGWINCH).
fn follow_resizes(master: i32) {
    RESIZE_TARGET.store(master, Ordering::Relaxed);
    // SAFETY: installs a handler that only makes async-signal-safe calls.
    unsafe {
        libc::signal(
            libc::SIGWINCH,
            on_resize as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// Our terminal in raw mode while the agent runs; restored when dropped.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> RawMode {
        // SAFETY: tcgetattr fills a zeroed termios; cfmakeraw and tcsetattr read it.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return RawMode(None);
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            RawMode(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read in `enter`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}

impl Pty {
    /// After the agent started: copies keys to it and its output to our terminal and `log`
    /// until it ends; returns how it ended.
    pub fn run(
        mut self,
        child: &mut Child,
        log: &Mutex<fs_err::File>,
    ) -> std::io::Result<std::process::ExitStatus> {
        // Our copy of the slave must go, or reading the master never sees the end.
        self.slave = None;
        follow_resizes(self.master.as_raw_fd());
        let _raw = RawMode::enter();
        let mut keys_to = self.master.try_clone()?;
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buffer = [0u8; 1024];
            while let Ok(n) = stdin.read(&mut buffer) {
                if n == 0 || keys_to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        });
        let mut stdout = std::io::stdout();
        let mut buffer = [0u8; 8192];
        // The read fails (EIO) once the agent and everything it started closed the terminal.
        while let Ok(n) = self.master.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let _ = stdout.write_all(&buffer[..n]);
            let _ = stdout.flush();
            if let Ok(mut log) = log.lock() {
                let _ = log.write_all(&buffer[..n]);
            }
        }
        let status = child.wait();
        RESIZE_TARGET.store(-1, Ordering::Relaxed);
        status
    }
}

/// Without a terminal of its own, the agent still starts a session of its own: it keeps no
/// controlling terminal of the person's, so it cannot push a command line into the person's
/// shell (`TIOCSTI`) nor be stopped by the shell's job control.
pub fn new_session(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and the only call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The agent's process group (its session leader's pid) for the signal handler (0: none).
static SIGNAL_TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    let target = SIGNAL_TARGET.load(Ordering::Relaxed);
    if target > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(-target, signal);
        }
    }
}

/// Ctrl-C, and a stop or hang-up sent to git-codex, reach the agent and everything it started
/// (its own session, so its own process group), while git-codex stays to record how it ended.
pub fn forward_signals_to(pid: u32) {
    SIGNAL_TARGET.store(i32::try_from(pid).unwrap_or(0), Ordering::Relaxed);
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only makes an async-signal-safe call.
        unsafe {
            libc::signal(
                signal,
                forward_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// Once the agent has ended, git-codex answers signals itself again: what is left to do
/// (recording, the review snapshot) can be interrupted or stopped as any command can.
pub fn stop_forwarding() {
    SIGNAL_TARGET.store(0, Ordering::Relaxed);
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: restores the default disposition; no handler code.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}
