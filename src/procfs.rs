//! The one reader of `/proc` (Linux): which processes run, their parents, start times and
//! environments. Used to tell a live agent from a reused pid, to find what a killed
//! git-codex left running, and whether a git lock's holder still runs.

use std::path::{Path, PathBuf};

/// The pids of every process now running (a snapshot: some may end while it is read).
pub fn pids() -> Vec<u32> {
    let Ok(list) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    list.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// Whether a process `pid` exists (a zombie included).
pub fn exists(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// The fields of `/proc/<pid>/stat` after the command name (0 is the state): the name is in
/// parentheses and may hold spaces, so fields are counted after its last `)`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn stat_field(pid: u32, index: usize) -> Option<u64> {
    stat_fields(pid)?.get(index)?.parse().ok()
}

/// The start time of a process in clock ticks since boot (field 22).
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_field(pid, 19)
}

/// Whether the process `pid` that started at `ticks` still runs: a zombie (dead, not yet
/// reaped by its parent) does not.
pub fn is_alive(pid: u32, ticks: u64) -> bool {
    let Some(fields) = stat_fields(pid) else {
        return false;
    };
    let running = !matches!(fields.first().map(String::as_str), Some("Z" | "X" | "x"));
    running && fields.get(19).and_then(|t| t.parse().ok()) == Some(ticks)
}

/// The parent of process `pid` (field 4).
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_field(pid, 1).and_then(|p| u32::try_from(p).ok())
}

/// Whether `pid` is on its way out (killed, say): the kernel's PF_EXITING in its flags (field
/// 9). It runs no more instruction of its own, and its environment may be gone already.
pub fn is_exiting(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    stat_field(pid, 6).is_some_and(|flags| flags & PF_EXITING != 0)
}

/// The process group of `pid` (field 5).
pub fn process_group(pid: u32) -> Option<u32> {
    stat_field(pid, 2).and_then(|p| u32::try_from(p).ok())
}

/// The environment `pid` started with, as `NAME=value` byte strings (empty when it cannot be
/// read: another user's process, or one that ended).
pub fn environ(pid: u32) -> Vec<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|v| !v.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
        .unwrap_or_default()
}

/// The value of `name` in the environment `pid` started with.
pub fn env_var(pid: u32, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    environ(pid).into_iter().find_map(|var| {
        String::from_utf8(var)
            .ok()?
            .strip_prefix(prefix.as_str())
            .map(str::to_string)
    })
}

/// What each of `pid`'s open descriptors points at (`/proc/<pid>/fd/*`: a path, or a name
/// like `socket:[123]`).
pub fn open_files(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The working directory of `pid`.
pub fn cwd(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// The program name of `pid` (`comm`, at most 15 bytes).
pub fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The arguments `pid` runs with.
pub fn args(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A killed process is flagged exiting from its first step out until it is reaped; a
    /// running one is not (the flag is field 9 of `stat`, after a name that may hold spaces
    /// and parentheses).
    #[test]
    fn a_dead_unreaped_child_is_exiting_and_a_running_process_is_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        assert!(!is_exiting(pid));
        assert!(!is_exiting(std::process::id()));
        child.kill().expect("kill");
        let mut waited = 0;
        while stat_fields(pid).and_then(|f| f.first().cloned()).as_deref() != Some("Z") {
            assert!(waited < 1000, "the killed child never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        assert!(is_exiting(pid));
        child.wait().expect("reap");
        assert!(!is_exiting(pid));
    }
}
