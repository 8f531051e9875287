//! What git-codex starts dies with it: a git killed along with git-codex (SIGKILL, the OOM
//! killer) cannot go on changing the repository behind the next command, which finishes or
//! rolls back what the killed one left (see `commands::session::journal`).

use std::io;

/// Asks the kernel to kill this process when its parent dies, and checks the parent is still
/// the one it was (it may have died just before). Meant for `pre_exec`: async-signal-safe.
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
