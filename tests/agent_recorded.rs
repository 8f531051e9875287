//! Issue 16, point 3: the agent is recorded before it can run a single instruction. A
//! `session run` killed (`kill -9` of git-codex alone) at any moment leaves either no agent
//! or a recorded one: an expired session is never pruned while its agent still works, and
//! once the agent ends, prune takes the session and restore brings back what it wrote.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestEnv, each_git, json, run, sandbox, wait_until, wait_until_or, write_file};

/// Marks every process one `session run` starts (the variable is inherited), so the test
/// finds them after git-codex is gone and they belong to init.
const MARK: &str = "AGENT_RECORDED_MARK";

/// The agent: says it started (its first instruction), waits to be released, then writes
/// its work into the worktree and ends.
const AGENT: &str = "#!/bin/sh\n\
: > \"$CODEX_LOG_DIR/started\"\n\
while [ ! -e \"$CODEX_LOG_DIR/release\" ]; do /bin/sleep 0.02; done\n\
echo work > work.txt\n\
: > \"$CODEX_LOG_DIR/wrote\"\n";

/// A git that counts its calls and, at the call named in `$HOME/stop-at`, says so
/// (`$HOME/at`) and waits for `$HOME/go` before it goes on. Shell builtins only: PATH may
/// hold git-codex alone.
const GIT_WRAPPER: &str = "#!/bin/sh\n\
n=0; [ -e \"$HOME/calls\" ] && read -r n < \"$HOME/calls\"\n\
n=$((n + 1)); echo $n > \"$HOME/calls\"\n\
stop=; [ -e \"$HOME/stop-at\" ] && read -r stop < \"$HOME/stop-at\"\n\
if [ \"$n\" = \"$stop\" ]; then\n\
  : > \"$HOME/at\"\n\
  while [ ! -e \"$HOME/go\" ]; do /bin/sleep 0.01; done\n\
fi\n\
exec \"$REAL_GIT\" \"$@\"\n";

struct Setup {
    agent: String,
    wrapper: String,
    logs: PathBuf,
    mark: String,
}

fn setup(t: &TestEnv, confined: bool) -> Setup {
    let fs = if confined { "worktree" } else { "open" };
    t.set_config(&format!("[sandbox]\nfilesystem = \"{fs}\"\n"));
    let agent = sandbox::script(t, "agent.sh", AGENT);
    let wrapper = sandbox::script(t, "git-wrapper.sh", GIT_WRAPPER);
    Setup {
        agent,
        wrapper,
        logs: t.state_dir().join("logs/busy"),
        mark: t.root().display().to_string(),
    }
}

/// Starts `session run busy -- agent.sh`: with no bwrap or unshare on PATH when open (the
/// agent then outlives git-codex, in a session of its own), through the counting git.
fn start_run(t: &TestEnv, s: &Setup, confined: bool) -> Child {
    let mut cmd = Command::new(common::BIN);
    cmd.env_clear().envs(t.vars());
    if !confined {
        cmd.env("PATH", common::codex_only_path());
    }
    cmd.env("GIT_CODEX_GIT", &s.wrapper)
        .env("REAL_GIT", &t.git)
        .env(MARK, &s.mark)
        .current_dir(&t.repo)
        .args(["session", "run", "busy", "--", &s.agent])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git-codex")
}

/// The live processes carrying this test's mark.
fn marked(mark: &str) -> Vec<u32> {
    common::marked(MARK, mark)
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .into_owned()
}

/// Whether `pid` waits for a lock (`/proc/locks` lists it after "->").
fn waits_for_lock(pid: u32) -> bool {
    std::fs::read_to_string("/proc/locks").is_ok_and(|locks| {
        locks.lines().any(|l| {
            let mut words = l.split_whitespace().skip(1);
            words.next() == Some("->") && words.nth(3) == Some(pid.to_string().as_str())
        })
    })
}

/// The state lock as git-codex takes it (a flock on the state dir), then `go` written. When
/// git-codex holds the lock (it runs that git call under it), `go` first, and the lock once
/// git-codex lets go of it.
fn take_state_lock(t: &TestEnv, go: &Path) -> File {
    let dir = File::open(t.state_dir()).expect("open state dir");
    if dir.try_lock().is_err() {
        write_file(go, "");
        dir.lock().expect("lock state dir");
    }
    write_file(go, "");
    dir
}

fn listed(t: &TestEnv) -> bool {
    let list = json(&run(t.codex(&["session", "list", "--json"])).1);
    list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .any(|s| s["id"] == "busy")
}

/// Prunes; returns what it said.
fn prune(t: &TestEnv) -> String {
    let (code, out, err) = run(t.codex(&["session", "prune"]));
    assert_eq!(code, 0, "{out}{err}");
    format!("{out}{err}")
}

/// After git-codex was killed: once nothing it started is still on its way (each marked
/// process gone, or the agent started), a prune keeps the session while its agent lives;
/// once the agent ends, prune takes the session and restore brings back what it wrote.
fn check_after_kill(t: &TestEnv, s: &Setup, what: &str) {
    let started = s.logs.join("started");
    let settle = || {
        let family: Vec<String> = marked(&s.mark)
            .into_iter()
            .map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
                format!("{p} [{}] {stat} wchan {wchan}", cmdline(p))
            })
            .collect();
        format!("{what}: the killed run's processes to settle: {family:#?}")
    };
    wait_until_or(settle, || started.exists() || marked(&s.mark).is_empty());
    let agent_ran = started.exists();
    prune(t);
    if agent_ran && !listed(t) {
        // Pruned: right only when the agent was already on its way out (a confined one dies
        // with git-codex, bwrap's --die-with-parent): it then ends without its release. A
        // live agent waits for its release for good, and this fails.
        wait_until_or(
            || format!("{what}: the session was pruned while its agent runs"),
            || marked(&s.mark).is_empty(),
        );
    } else if agent_ran {
        assert!(t.worktree("busy").is_dir(), "{what}: the worktree went");
    }
    write_file(&s.logs.join("release"), "");
    wait_until("the agent to end", || marked(&s.mark).is_empty());
    // A process that is exiting has let go of its environment (no mark) a moment before it
    // is dead to git-codex (a zombie): prune rightly keeps a session whose agent still runs.
    wait_until("git-codex to see the run end", || {
        let (code, out, _) = run(t.codex(&["session", "show", "busy", "--json"]));
        code != 0 || json(&out)["state"] != "running"
    });
    let said = prune(t);
    assert!(
        !listed(t),
        "{what}: the ended session was not pruned; prune said: {said}; show: {}",
        run(t.codex(&["session", "show", "busy", "--json"])).1
    );
    assert!(
        !t.worktree("busy").exists(),
        "{what}: the worktree is still there"
    );
    let (code, out, err) = run(t.codex(&["session", "restore", "busy"]));
    assert_eq!(code, 0, "{what}: {out}{err}");
    // What the agent wrote is kept (a confined agent killed with git-codex wrote nothing).
    if s.logs.join("wrote").exists() {
        let work = std::fs::read_to_string(t.worktree("busy").join("work.txt"));
        assert_eq!(
            work.ok().as_deref(),
            Some("work\n"),
            "{what}: the agent's work is lost"
        );
    }
}

/// A fresh expired session `busy`, nothing left of an earlier round.
fn fresh_session(t: &TestEnv, s: &Setup) {
    if listed(t) {
        let (code, out, err) = run(t.codex(&["session", "remove", "busy", "--force"]));
        assert_eq!(code, 0, "{out}{err}");
    }
    t.add("busy");
    t.age("busy", 100);
    let _ = std::fs::remove_dir_all(&s.logs);
    for name in ["calls", "stop-at", "at", "go"] {
        let _ = std::fs::remove_file(t.home.join(name));
    }
}

/// The window between starting the agent and recording it, held open: the state lock is
/// taken at git-codex's Nth git call, git-codex is killed once it waits for the lock (or has
/// ended), and only then is the lock released.
fn kill_at_each_git_call(t: &TestEnv, confined: bool) {
    let s = setup(t, confined);
    for n in 1.. {
        fresh_session(t, &s);
        write_file(&t.home.join("stop-at"), &n.to_string());
        let mut child = start_run(t, &s, confined);
        let started = s.logs.join("started");
        wait_until(
            "git-codex to reach the git call, start the agent or end",
            || {
                t.home.join("at").exists()
                    || started.exists()
                    || child.try_wait().ok().flatten().is_some()
            },
        );
        if !t.home.join("at").exists() {
            // Past the last git call before the agent: the sweep is done.
            write_file(&t.home.join("go"), "");
            write_file(&s.logs.join("release"), "");
            let _ = child.wait();
            assert!(n > 1, "no git call before the agent");
            return;
        }
        let lock = take_state_lock(t, &t.home.join("go"));
        let pid = child.id();
        let what = || {
            let family: Vec<String> = marked(&s.mark).into_iter().map(cmdline).collect();
            format!(
                "git-codex to wait for the lock or end (at git call {n}; its processes: {family:?}; wchan {:?})",
                std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            )
        };
        wait_until_or(what, || {
            // git-codex itself, or a git it waits for (a hook of git-codex's takes the lock).
            // Or git-codex took the lock again before the test did, and the agent runs.
            marked(&s.mark).into_iter().any(waits_for_lock)
                || s.logs.join("started").exists()
                || child.try_wait().ok().flatten().is_some()
        });
        let _ = child.kill();
        let _ = child.wait();
        drop(lock);
        check_after_kill(t, &s, &format!("killed at git call {n}"));
        if s.logs.join("started").exists() {
            return;
        }
    }
}

/// Killed after swept delays, no lock held.
fn kill_after_delays(t: &TestEnv, confined: bool) {
    let s = setup(t, confined);
    for ms in (0..60).step_by(4) {
        fresh_session(t, &s);
        let mut child = start_run(t, &s, confined);
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        check_after_kill(t, &s, &format!("killed after {ms} ms"));
    }
}

#[test]
fn an_open_run_killed_before_its_record_never_leaves_an_unrecorded_agent() {
    each_git(|t| kill_at_each_git_call(t, false));
}

#[test]
fn an_open_run_killed_at_swept_moments_keeps_its_session_while_the_agent_works() {
    each_git(|t| kill_after_delays(t, false));
}

#[test]
fn a_confined_run_killed_before_its_record_never_leaves_an_unrecorded_agent() {
    if !sandbox::can_confine() {
        return;
    }
    each_git(|t| kill_at_each_git_call(t, true));
}

#[test]
fn a_confined_run_killed_at_swept_moments_keeps_its_session_while_the_agent_works() {
    if !sandbox::can_confine() {
        return;
    }
    each_git(|t| kill_after_delays(t, true));
}

/// The agent's first instruction runs only once the record names it: the state lock held
/// across the start, the agent has not begun.
#[test]
fn the_agent_waits_for_its_record() {
    each_git(|t| {
        let s = setup(t, false);
        fresh_session(t, &s);
        write_file(&t.home.join("stop-at"), "1");
        let mut child = start_run(t, &s, false);
        wait_until("the first git call", || t.home.join("at").exists());
        let lock = take_state_lock(t, &t.home.join("go"));
        let pid = child.id();
        wait_until("git-codex to wait for the lock", || waits_for_lock(pid));
        // git-codex has started what becomes the agent and waits to record it: that process
        // is still git-codex's own program, not yet the agent's.
        let agent = marked(&s.mark)
            .into_iter()
            .find(|p| p != &pid && cmdline(*p).contains("agent.sh"))
            .expect("the agent's process");
        let exe = std::fs::read_link(format!("/proc/{agent}/exe")).expect("exe");
        assert_eq!(
            exe,
            Path::new(common::BIN).canonicalize().unwrap(),
            "the agent ran before its record"
        );
        assert!(
            !s.logs.join("started").exists(),
            "the agent ran before its record"
        );
        drop(lock);
        wait_until("the agent to start", || s.logs.join("started").exists());
        assert!(t.show("busy")["agent"]["pid"].is_u64());
        write_file(&s.logs.join("release"), "");
        let status = child.wait().expect("wait");
        assert!(status.success());
    });
}

/// Outside attacker: a `remove` (or the prune of an add) that took the session while its run
/// was starting left the run to open its gate anyway, and the agent ran in the trash entry,
/// unrecorded. Here the run has started the agent's gate and waits for the state lock to
/// record it while a `remove` waits for the same lock: whichever gets it first, a remove that
/// succeeds means the agent never starts, and one that refuses means it runs, recorded, in
/// the session's worktree.
#[test]
fn a_session_removed_while_its_run_starts_never_starts_the_agent() {
    each_git(|t| {
        let s = setup(t, false);
        let started = s.logs.join("started");
        let mut removed = 0;
        for round in 0..8 {
            fresh_session(t, &s);
            // The run's last git call comes before it starts the gate: held there until the
            // test has the lock.
            write_file(&t.home.join("stop-at"), "1");
            let mut child = start_run(t, &s, false);
            wait_until("the run's git call", || t.home.join("at").exists());
            let dir = File::open(t.state_dir()).expect("open state dir");
            dir.lock().expect("lock state dir");
            let remover = t
                .codex_process(&["session", "remove", "busy"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start remove");
            let (remove_pid, run_pid) = (remover.id(), child.id());
            wait_until("the remove to wait for the lock", || {
                waits_for_lock(remove_pid)
            });
            write_file(&t.home.join("go"), "");
            wait_until("the run to wait for the lock to record its agent", || {
                waits_for_lock(run_pid) || child.try_wait().ok().flatten().is_some()
            });
            assert!(
                marked(&s.mark)
                    .into_iter()
                    .any(|p| cmdline(p).contains("sandbox-gate")),
                "round {round}: the run waits for the lock before it started the gate"
            );
            drop(dir);
            let out = remover.wait_with_output().expect("remove");
            let code = out.status.code().unwrap_or(-1);
            let what = format!(
                "round {round}: remove exit {code}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if code == 0 {
                removed += 1;
                let mut ran = None;
                wait_until("the run to end or its agent to start", || {
                    ran = child.try_wait().ok().flatten();
                    started.exists() || ran.is_some()
                });
                if started.exists() {
                    write_file(&s.logs.join("release"), "");
                    let _ = child.wait();
                    panic!("{what}: the removed session's agent started");
                }
                assert!(
                    ran.is_some_and(|r| !r.success()),
                    "{what}: the run said it succeeded"
                );
                wait_until("the run's processes to end", || marked(&s.mark).is_empty());
                assert!(
                    !started.exists(),
                    "{what}: the removed session's agent started"
                );
            } else {
                assert!(listed(t), "{what}");
                wait_until("the agent to start", || started.exists());
                write_file(&s.logs.join("release"), "");
                let _ = child.wait();
                assert!(t.worktree("busy").join("work.txt").is_file(), "{what}");
            }
        }
        eprintln!("the remove went first in {removed} of 8 rounds");
    });
}

/// Outside attacker: two runs of one session started together each made the session's
/// socket and admin dir, and the one refused removed what the other's sandbox used (its
/// agent never started). A second run is refused while the first is still starting.
#[test]
fn a_second_run_of_a_session_is_refused_while_the_first_starts() {
    each_git(|t| {
        let s = setup(t, false);
        fresh_session(t, &s);
        write_file(&t.home.join("stop-at"), "1");
        let mut first = start_run(t, &s, false);
        wait_until("the first run's git call", || t.home.join("at").exists());
        let mut second = t
            .codex_process(&["session", "run", "busy", "--", &s.agent])
            .env("PATH", common::codex_only_path())
            .env(MARK, &s.mark)
            .stderr(Stdio::piped())
            .spawn()
            .expect("second run");
        let mut ended = None;
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("the second run to be refused", || {
                ended = second.try_wait().ok().flatten();
                ended.is_some()
            })
        }));
        write_file(&t.home.join("go"), "");
        if refused.is_err() {
            write_file(&s.logs.join("release"), "");
            let _ = second.wait();
            let _ = first.wait();
            panic!("the second run started while the first was starting");
        }
        let mut err = String::new();
        if let Some(mut pipe) = second.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut err).expect("stderr");
        }
        assert_eq!(ended.and_then(|s| s.code()), Some(3), "{err}");
        assert!(err.contains("starting or ending a run"), "{err}");
        wait_until("the first run's agent to start", || {
            s.logs.join("started").exists()
        });
        write_file(&s.logs.join("release"), "");
        assert!(first.wait().expect("first").success());
        assert!(t.worktree("busy").join("work.txt").is_file());
    });
}
