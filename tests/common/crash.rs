//! The crash harness (issue 16): a session worktree worth losing, a `GIT_CODEX_GIT` wrapper that
//! kills git-codex (alone or with its process group) just before or after its Nth git call, and
//! a kill after a delay. What must hold afterwards is in `crash_check.rs`.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{BIN, TestEnv, write_file};

/// Where and how git-codex dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Not killed: counts the git calls.
    Count,
    /// SIGKILL just before (or after) the Nth git call, of git-codex alone or its group.
    Call { n: u32, after: bool, group: bool },
    /// SIGKILL `ms` milliseconds after the start.
    Delay { ms: u64, group: bool },
    /// SIGKILL just before (or after) the first git call whose arguments hold `args`.
    Matching {
        args: &'static str,
        after: bool,
        group: bool,
    },
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = |group: bool| if group { "group" } else { "alone" };
        match *self {
            Plan::Count => write!(f, "not killed"),
            Plan::Call { n, after, group } => {
                let when = if after { "after" } else { "before" };
                write!(f, "git call #{n} {when}, {}", who(group))
            }
            Plan::Delay { ms, group } => write!(f, "after {ms} ms, {}", who(group)),
            Plan::Matching { args, after, group } => {
                let when = if after { "after" } else { "before" };
                write!(f, "git {args} {when}, {}", who(group))
            }
        }
    }
}

/// What became of the crashed command.
#[derive(Debug)]
pub struct Outcome {
    pub killed: bool,
    pub code: Option<i32>,
    pub stderr: String,
    /// Git calls made (by git-codex and every git-codex its hooks started).
    pub calls: u32,
    pub calls_log: String,
}

/// The wrapper's dir: `<root>/crash`, holding the script, its counter and the plan.
fn crash_dir(t: &TestEnv) -> PathBuf {
    t.root().join("crash")
}

/// Writes the wrapper. It counts every call under a lock (hooks run git-codex, which runs git,
/// concurrently at times); at the planned call it waits for the pid the test writes once the
/// command is spawned (the group's id: the command leads its own group) and kills.
pub fn wrapper(t: &TestEnv) -> PathBuf {
    let dir = crash_dir(t);
    std::fs::create_dir_all(&dir).expect("crash dir");
    let script = dir.join("git");
    let text = format!(
        r#"#!/bin/sh
d='{dir}'
real='{real}'
exec 9>>"$d/lock"
flock 9
n=$(cat "$d/count" 2>/dev/null)
n=$((${{n:-0}} + 1))
echo "$n" > "$d/count"
printf '%s %s\n' "$n" "$*" >> "$d/calls"
read -r at when who pattern < "$d/plan" 2>/dev/null || at=0
if [ "$at" = match ] && [ ! -e "$d/matched" ]; then
  case " $* " in *" $pattern "*) at=$n; : > "$d/matched" ;; esac
fi
exec 9>&-
if [ "$n" != "$at" ]; then exec "$real" "$@"; fi
i=0
while [ ! -s "$d/pid" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
pid=$(cat "$d/pid")
target=$pid
[ "$who" = group ] && target=-$pid
if [ "$when" = before ]; then
  : > "$d/killed"
  kill -9 "$target" || echo "kill -9 $target failed" >> "$d/kill-failed"
  exit 137
fi
"$real" "$@"
rc=$?
: > "$d/killed"
kill -9 "$target" || echo "kill -9 $target failed" >> "$d/kill-failed"
exit $rc
"#,
        dir = dir.display(),
        real = t.git.display(),
    );
    write_file(&script, &text);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// Runs `git-codex ARGS` with the wrapper as its git, killed as `plan` says; waits until every
/// process of its group has gone (but `keep`, a live agent the caller deals with).
pub fn run_crashed(t: &TestEnv, args: &[String], plan: Plan, keep: Option<&str>) -> Outcome {
    let script = wrapper(t);
    let dir = crash_dir(t);
    for name in ["count", "calls", "pid", "killed", "kill-failed", "matched"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let planned = match plan {
        Plan::Call { n, after, group } => {
            let when = if after { "after" } else { "before" };
            let who = if group { "group" } else { "alone" };
            format!("{n} {when} {who}\n")
        }
        Plan::Matching { args, after, group } => {
            let when = if after { "after" } else { "before" };
            let who = if group { "group" } else { "alone" };
            format!("match {when} {who} {args}\n")
        }
        _ => "0 - -\n".to_string(),
    };
    std::fs::write(dir.join("plan"), planned).expect("plan");
    let mut child = Command::new(BIN)
        .env_clear()
        .envs(t.vars())
        .env("GIT_CODEX_GIT", &script)
        .current_dir(&t.repo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn git-codex");
    let pid = child.id() as i32;
    let mut file = std::fs::File::create(dir.join("pid.tmp")).expect("pid file");
    writeln!(file, "{pid}").expect("pid");
    std::fs::rename(dir.join("pid.tmp"), dir.join("pid")).expect("pid file");
    let mut killed = false;
    if let Plan::Delay { ms, group } = plan {
        std::thread::sleep(Duration::from_millis(ms));
        if child.try_wait().ok().flatten().is_none() {
            killed = true;
            // SAFETY: a plain kill(2) of the group we started (or its leader).
            unsafe { libc::kill(if group { -pid } else { pid }, libc::SIGKILL) };
        }
    }
    let out = child.wait_with_output().expect("wait for git-codex");
    wait_group_gone(pid, keep);
    // dash's kill takes no `--`: a wrapper that could not kill would test a failing git, not a
    // crash.
    let failed = std::fs::read_to_string(dir.join("kill-failed")).unwrap_or_default();
    assert!(
        failed.is_empty(),
        "the crash wrapper could not kill: {failed}"
    );
    let calls_log = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    Outcome {
        killed: killed || dir.join("killed").exists(),
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        calls: calls_log.lines().count() as u32,
        calls_log,
    }
}

/// Pids of the processes in group `pgid`, with their command lines.
pub fn group_members(pgid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) : state ppid pgrp ...
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") || fields.get(2) != Some(&pgid.to_string().as_str()) {
            continue;
        }
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        out.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
    }
    out
}

/// Whether a live process has `needle` in its command line.
pub fn process_alive(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        !zombie
            && std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}

/// Waits (up to 30 s) until group `pgid` has no process but ones whose command line has `keep`:
/// a git left running by a kill of git-codex alone finishes its work first.
fn wait_group_gone(pgid: i32, keep: Option<&str>) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let left = group_members(pgid)
            .into_iter()
            .filter(|(_, cmd)| keep.is_none_or(|k| !cmd.contains(k)))
            .count();
        if left == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("note: group {pgid} still has {:?}", group_members(pgid));
}

/// Waits (up to 30 s) until no process has `needle` in its command line.
pub fn wait_gone(needle: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if !process_alive(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The main repository gets ~300 committed files (one executable, one symlink, a .gitignore);
/// session `id` then gets uncommitted changes, untracked and ignored files, an untracked
/// executable and a mode change, plus one commit on its branch. Returns the worktree.
pub fn big_session(t: &TestEnv, id: &str) -> PathBuf {
    t.write(".gitignore", "*.log\nbuild/\n");
    for i in 0..300 {
        let body: Vec<u8> = (0..(i % 7) * 40 + 5).map(|b| (b * 31 + i) as u8).collect();
        let path = t.repo.join(format!("src/d{}/f{i}.txt", i % 12));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(&path, body).expect("write");
    }
    write_file(&t.repo.join("tools/run.sh"), "#!/bin/sh\necho run\n");
    chmod(&t.repo.join("tools/run.sh"), 0o755);
    std::os::unix::fs::symlink("README.md", t.repo.join("link")).expect("symlink");
    t.git(&["add", "-A"]);
    t.git(&["commit", "-q", "-m", "a big tree"]);
    let wt = t.add(id);
    t.commit_in(&wt, "work/committed.txt", "committed by the agent\n");
    for i in 0..20 {
        let path = wt.join(format!("src/d{}/f{i}.txt", i % 12));
        std::fs::write(&path, format!("changed {i}\n")).expect("change");
    }
    for i in 0..30 {
        write_file(
            &wt.join(format!("new/u{i}.txt")),
            &format!("untracked {i}\n"),
        );
    }
    write_file(&wt.join("new/tool.sh"), "#!/bin/sh\necho tool\n");
    chmod(&wt.join("new/tool.sh"), 0o755);
    chmod(&wt.join("src/d0/f0.txt"), 0o755);
    for i in 0..5 {
        write_file(
            &wt.join(format!("build/out{i}.o")),
            &format!("ignored {i}\n"),
        );
    }
    write_file(&wt.join("debug.log"), "ignored log\n");
    wt
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The sample of kill plans for `calls` git calls: every call, both sides, alone and group,
/// and swept delays with the full sweep; else two spread over the calls, whose
/// side and target rotate with `seed` (so the gits and scenarios cover all four).
pub fn plans(calls: u32, full: bool, seed: usize) -> Vec<Plan> {
    let kinds = [(false, false), (true, false), (false, true), (true, true)];
    if full {
        let mut out = Vec::new();
        for n in 1..=calls {
            for (after, group) in kinds {
                out.push(Plan::Call { n, after, group });
            }
        }
        // A kill between git calls never catches a git mid-write; a delay does (with the
        // group, git dies too, leaving its lock files).
        for ms in [0, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320] {
            out.push(Plan::Delay { ms, group: false });
            out.push(Plan::Delay { ms, group: true });
        }
        return out;
    }
    let mut picks = vec![calls / 3 + 1, calls * 2 / 3 + 1];
    picks.dedup();
    picks
        .into_iter()
        .filter(|n| *n <= calls)
        .enumerate()
        .map(|(i, n)| {
            let (after, group) = kinds[(seed + i) % 4];
            Plan::Call { n, after, group }
        })
        .collect()
}

/// Whether the full sweep was asked for (`scripts/crash`).
pub fn full() -> bool {
    std::env::var_os("GIT_CODEX_CRASH_FULL").is_some_and(|v| v == "1")
}

/// Adds the line for a failing case: scenario, git, kill point (with the git call it hit),
/// how the command ended, and each problem.
pub fn report(
    failures: &mut Vec<String>,
    name: &str,
    git: &std::path::Path,
    plan: Plan,
    out: &Outcome,
    problems: Vec<String>,
) {
    if problems.is_empty() {
        return;
    }
    let call = match plan {
        Plan::Call { n, .. } => out
            .calls_log
            .lines()
            .find(|l| l.split(' ').next() == Some(&n.to_string()))
            .map(|l| format!(" [{}]", strip_config(l)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let line = format!(
        "CRASH {name} | {} | {plan}{call} | killed: {}, exit {:?}{} | {}",
        git.display(),
        out.killed,
        out.code,
        out.stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .map(|l| format!(" ({l})"))
            .unwrap_or_default(),
        problems.join(" || ")
    );
    eprintln!("{line}");
    failures.push(line);
}

/// A logged git call without the `-c` settings git-codex passes every git.
fn strip_config(line: &str) -> String {
    let mut words = line.split(' ').peekable();
    let mut out = Vec::new();
    while let Some(w) = words.next() {
        if w == "-c" {
            words.next();
            continue;
        }
        out.push(w);
    }
    out.join(" ")
}
