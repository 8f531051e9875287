//! Whether a recorded agent is still alive: its pid exists and started when it did (a pid
//! reused by another process does not count).

pub use crate::procfs::{is_alive, parent_of, start_ticks};
use crate::procfs::{pids, process_group};

/// The arguments of the git that runs this hook (a shim's parent, so our grandparent).
pub fn hook_callers_args() -> Vec<String> {
    let Some(git) = parent_of(std::process::id()).and_then(parent_of) else {
        return Vec::new();
    };
    crate::procfs::args(git)
}

/// Every live descendant of `pid`, from each process's parent in `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = pids()
        .into_iter()
        .filter_map(|child| Some((child, parent_of(child)?)))
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let current = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == current)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Sends `signal` to the agent's whole process group when it leads one (a run at a terminal
/// gets its own session), and to it and `family` (its descendants). Never to git-codex's own
/// group.
fn signal_agent(pid: u32, family: &[u32], signal: libc::c_int) {
    // SAFETY: kill and getpgrp take plain integers and touch no memory of ours.
    let own_group = unsafe { libc::getpgrp() } as u32;
    if process_group(pid) == Some(pid) && pid != own_group {
        // SAFETY: as above; a negative pid names the process group.
        unsafe { libc::kill(-(pid as libc::pid_t), signal) };
    }
    for target in family.iter().chain([&pid]) {
        // SAFETY: as above.
        unsafe { libc::kill(*target as libc::pid_t, signal) };
    }
}

/// Stops a recorded agent and its processes: SIGTERM, up to 3 seconds to end, then SIGKILL
/// for whatever of it is left. Returns whether it is gone. A pid reused by another process
/// is left alone.
pub fn stop(pid: u32, ticks: u64) -> bool {
    if !is_alive(pid, ticks) {
        return true;
    }
    let wait = |secs: u64| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if !is_alive(pid, ticks) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        !is_alive(pid, ticks)
    };
    // Taken first: once the agent is gone its children belong to someone else.
    let family: Vec<(u32, u64)> = descendants(pid)
        .into_iter()
        .filter_map(|p| start_ticks(p).map(|t| (p, t)))
        .collect();
    let pids: Vec<u32> = family.iter().map(|(p, _)| *p).collect();
    signal_agent(pid, &pids, libc::SIGTERM);
    let gone = wait(3);
    let left: Vec<u32> = family
        .iter()
        .filter(|(p, t)| is_alive(*p, *t))
        .map(|(p, _)| *p)
        .collect();
    if gone {
        for child in left {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(child as libc::pid_t, libc::SIGKILL) };
        }
        return true;
    }
    signal_agent(pid, &left, libc::SIGKILL);
    wait(2)
}
