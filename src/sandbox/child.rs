//! `sandbox-exec` keeps the bridge's threads alive, so it cannot become the agent: it runs the
//! agent as a child and stands in for it. Signals for the agent reach it once (see
//! [`GROUP_SIGNALS`]), its exit code is
//! the agent's (128 + signal, as shells say), and it dies when its parent dies, taking the
//! agent with it, so nothing lingers.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

/// The signals a terminal or git-codex sends to the agent's whole process group: only the
/// agent acts on them. Everything between git-codex and the agent (bwrap, this) ignores them,
/// so a Ctrl-C reaches the agent once and does not tear its sandbox down around it.
pub const GROUP_SIGNALS: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

pub use crate::lifetime::die_with_parent;

/// Ignores the group's signals in this process (see [`GROUP_SIGNALS`]).
pub fn ignore_group_signals() {
    for signal in GROUP_SIGNALS {
        // SAFETY: setting a disposition to SIG_IGN installs no handler code; async-signal-safe.
        unsafe {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
}

/// The default disposition of the group's signals back, for the agent: an ignored signal
/// stays ignored across exec.
fn default_group_signals() {
    for signal in GROUP_SIGNALS {
        // SAFETY: as above.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}

/// Starts `cmd` (the agent, with the group's signals as they should be), waits for it to end
/// and returns its exit code. Other
/// children that end meanwhile (orphans, when this is a namespace's first process) are reaped.
pub fn run(mut cmd: Command) -> io::Result<i32> {
    ignore_group_signals();
    // SAFETY: prctl and signal are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            default_group_signals();
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`.
        let ended = unsafe { libc::waitpid(-1, &mut status, 0) };
        if ended == pid {
            return Ok(exit_code(status));
        }
        if ended < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// The exit code a shell would report for a `waitpid` status (128 + signal when killed).
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}
