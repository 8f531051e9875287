//! Whether a recorded agent is still alive: its pid exists and started when it did (a pid
//! reused by another process does not count).

/// The start time of a process in clock ticks since boot (`/proc/<pid>/stat`, field 22).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `ticks` still runs: a zombie (dead, not yet
/// reaped by its parent) does not.
pub fn is_alive(pid: u32, ticks: u64) -> bool {
    let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let running = !matches!(fields.next(), Some("Z" | "X" | "x"));
    running && fields.nth(18).and_then(|t| t.parse().ok()) == Some(ticks)
}

/// The parent of process `pid` (`/proc/<pid>/stat`, field 4).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The arguments of the git that runs this hook (a shim's parent, so our grandparent).
pub fn hook_callers_args() -> Vec<String> {
    let Some(git) = parent_of(std::process::id()).and_then(parent_of) else {
        return Vec::new();
    };
    fs_err::read(format!("/proc/{git}/cmdline"))
        .map(|bytes| {
            // Each argument ends with a NUL.
            bytes
                .strip_suffix(&[0])
                .unwrap_or(&bytes)
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}
