//! The review hook: a program (never a shell string) run in the session worktree with the
//! review's facts in its environment, bounded by `review.hook_timeout`.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use camino::Utf8Path;
use serde::Serialize;

/// How much of the hook's output goes into the report.
const OUTPUT_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResult {
    pub command: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub passed: bool,
    pub duration_ms: u64,
    /// stdout and stderr, interleaved as written, cut to 64 KiB.
    pub output: String,
}

/// Runs the hook as `cmd` (its sandbox, cwd and environment already set: see
/// `sandbox::launch`), its output going to `out` (the log at `log`) and into the result. It
/// starts a session of its own, so it has no controlling terminal of the person's. A hook
/// that outlives `timeout` is killed with everything it started (its process group).
pub fn run(
    cmd: Command,
    label: &str,
    timeout: Duration,
    out: std::fs::File,
    log: &Utf8Path,
) -> HookResult {
    let started = Instant::now();
    let mut result = HookResult {
        command: label.to_string(),
        exit_code: None,
        timed_out: false,
        passed: false,
        duration_ms: 0,
        output: String::new(),
    };
    match spawn_and_wait(cmd, out, timeout) {
        Ok((code, timed_out)) => {
            result.exit_code = code;
            result.timed_out = timed_out;
            result.passed = code == Some(0) && !timed_out;
            result.output = read_log(log);
        }
        Err(err) => result.output = format!("cannot run the review hook {label}: {err}"),
    }
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

fn spawn_and_wait(
    mut cmd: Command,
    out: std::fs::File,
    timeout: Duration,
) -> std::io::Result<(Option<i32>, bool)> {
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    crate::sandbox::terminal::new_session(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    match receiver.recv_timeout(timeout) {
        Ok(status) => Ok((status?.code(), false)),
        Err(_) => {
            kill_group(pid);
            let status = receiver.recv().map_err(std::io::Error::other)??;
            Ok((status.code(), true))
        }
    }
}

/// Kills the hook and every process it started: they share its process group.
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group we created for the
        // hook; it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

fn read_log(log: &Utf8Path) -> String {
    let bytes = fs_err::read(log).unwrap_or_default();
    let cut = bytes.len().min(OUTPUT_LIMIT);
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    if bytes.len() > OUTPUT_LIMIT {
        text.push_str("\n[output cut at 64 KiB; the whole of it is in the log]\n");
    }
    text
}
