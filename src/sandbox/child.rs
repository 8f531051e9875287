//! `sandbox-exec` keeps the bridge's threads alive, so it cannot become the agent: it runs the
//! agent as a child and stands in for it. Signals sent to it reach the agent, its exit code is
//! the agent's (128 + signal, as shells say), and it dies when its parent dies, taking the
//! agent with it, so nothing lingers.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// The agent's pid once it runs; 0 before.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before the agent ran, to send it when it does.
static PENDING: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Asks the kernel to kill this process when its parent dies, and checks the parent is still
/// the one it was (it may have died just before).
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: getppid and prctl with integer arguments have no memory effects.
    unsafe {
        let parent = libc::getppid();
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
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A terminal's ^C or hangup goes to the whole foreground process group, the agent
    // included (si_code SI_KERNEL): passing it on would deliver it twice.
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    if !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL {
        return;
    }
    PENDING.store(signal, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        let signal = PENDING.swap(0, Ordering::SeqCst);
        if signal != 0 {
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(child, signal) };
        }
    }
}

fn install_forwarding() -> io::Result<()> {
    for signal in FORWARDED {
        // SAFETY: a zeroed sigaction with a handler of the SA_SIGINFO shape, an empty mask.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Starts `cmd`, forwards signals to it until it ends and returns its exit code. Other
/// children that end meanwhile (orphans, when this is a namespace's first process) are reaped.
pub fn run(mut cmd: Command) -> io::Result<i32> {
    install_forwarding()?;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
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
    CHILD.store(pid, Ordering::SeqCst);
    let early = PENDING.swap(0, Ordering::SeqCst);
    if early != 0 {
        // SAFETY: the child is ours and not yet reaped.
        unsafe { libc::kill(pid, early) };
    }
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

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}
