//! `git codex session run <id> [--] CMD…`: the agent in its session, with its environment,
//! its network policy (really cut in strict mode), both output streams logged, and a review
//! snapshot when it ends.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use camino::Utf8PathBuf;
use jiff::Timestamp;

use super::review::{summarize, write_reports};
use crate::cli::{ReportFormat, SessionRunArgs};
use crate::context::Ctx;
use crate::error::{AgentExit, UserError};
use crate::output;
use crate::sandbox::confine::{self, FsPlan};
use crate::sandbox::netns::{self, NetworkPlan};
use crate::sandbox::{agent_argv, apply_env, process, terminal};
use crate::state::record::{AgentRun, LastRun};
use crate::state::{SessionId, SessionRecord, id};

pub fn run(args: SessionRunArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    let record = check_runnable(&ctx, &id)?;
    let strict = record.sandbox == "strict";
    let plan = netns::plan(strict);
    let fs = confine::plan(ctx.config.filesystem_confined);
    for (what, problem) in [
        ("cut the network", &plan.problem),
        ("confine the filesystem", &fs.problem),
    ] {
        let Some(problem) = problem else { continue };
        if args.require_sandbox {
            return Err(UserError::refused(format!("cannot {what} for session '{id}': {problem}"))
                .hint("install bubblewrap, allow unprivileged user namespaces, or run without --require-sandbox")
                .into());
        }
    }
    if let Some(problem) = &plan.problem {
        output::warning(&format!(
            "the network is NOT cut for session '{id}': {problem}"
        ));
    }
    if let Some(problem) = &fs.problem {
        output::warning(&format!(
            "the filesystem is NOT confined for session '{id}': {problem}; the agent can write what you can, the gate's own files included"
        ));
    }
    // What an earlier confined run left (its git-codex killed): objects, branch, HEAD.
    if let Some(warning) = confine::settle(&ctx, &id)? {
        output::warning(&warning);
    }
    let started = Timestamp::now();
    let logs = ctx.state.logs_dir(&record.id);
    let tmp = ctx.state.tmp_dir(&record.id);
    fs_err::create_dir_all(&logs)?;
    fs_err::create_dir_all(&tmp)?;
    let log_path = logs.join(format!(
        "run-{}.log",
        started.strftime("%Y%m%dT%H%M%S%.3fZ")
    ));
    let argv = agent_argv(&args.command, strict);
    let mode = mode_line(&record, &plan, &fs);
    let mut log = fs_err::File::from_parts(crate::state::create_fresh(&log_path)?, &log_path);
    writeln!(
        log,
        "# git-codex session run: session {}, {mode}, command {argv:?}, started {started}",
        record.id
    )?;
    output::note(&format!("git-codex: session '{}': {mode}", record.id));

    let self_exe = Utf8PathBuf::from_path_buf(fs_err::canonicalize(std::env::current_exe()?)?)
        .map_err(|p| {
            UserError::runtime(format!(
                "the path of git-codex is not UTF-8: {}",
                p.display()
            ))
        })?;
    let confinement = match &fs.bwrap {
        Some(bwrap) => {
            let writable = writable_paths(&ctx, &tmp, &logs)?;
            let _lock = ctx.state.lock()?;
            Some(confine::prepare(&ctx, bwrap, &record, writable)?)
        }
        None => None,
    };
    let mut cmd = netns::command(&plan, confinement.as_ref(), &argv, &self_exe);
    cmd.current_dir(&record.worktree);
    // A person at a terminal gets the agent on a terminal; otherwise both streams are pipes.
    let pty = if terminal::interactive() {
        Some(terminal::attach(&mut cmd)?)
    } else {
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        None
    };
    apply_env(&mut cmd, &ctx.config, &record, &tmp, &logs);
    if let Some(c) = &confinement {
        cmd.envs(confine::object_env(c));
    }
    let mut child = cmd.spawn().map_err(|err| {
        UserError::new(
            crate::error::Exit::Runtime,
            format!("cannot start {}: {err}", argv[0]),
        )
        .hint("check the command and PATH")
    })?;
    // The command holds copies of the terminal's descriptors; the agent's end must be its own.
    drop(cmd);
    let agent = AgentRun {
        pid: child.id(),
        start_ticks: process::start_ticks(child.id()).unwrap_or(0),
        command: argv.clone(),
        started,
        network_enforced: plan.enforced(),
        filesystem_confined: fs.confined(),
        log: log_path.clone(),
    };
    update_record(&ctx, &id, |r| r.agent = Some(agent.clone()))?;
    ignore_interrupts();
    let code = match pty {
        Some(pty) => exit_code(pty.run(&mut child, &Mutex::new(log))?),
        None => wait_teeing(&mut child, log)?,
    };
    let last = LastRun {
        command: argv,
        started,
        ended: Timestamp::now(),
        exit_code: code,
        sandbox: record.sandbox.clone(),
        network_enforced: plan.enforced(),
        filesystem_confined: fs.confined(),
        log: log_path,
    };
    update_record(&ctx, &id, |r| {
        r.agent = None;
        r.last_run = Some(last.clone());
        r.last_activity = Timestamp::now();
    })?;
    if confinement.is_some() {
        match confine::settle(&ctx, &id) {
            Ok(Some(warning)) => output::warning(&warning),
            Ok(None) => {}
            Err(err) => output::warning(&format!(
                "git-codex: the commits of session '{id}' are not on its branch yet: {err:#}; 'git codex session run' or 'review' tries again"
            )),
        }
    }
    if let Ok(record) = ctx.state.record(&id)
        && let Err(err) = crate::gate::record::observe(&ctx, &record)
    {
        output::warning(&format!(
            "git-codex could not record the commits of session '{id}': {err:#}"
        ));
    }
    if ctx.config.cleanup_on_exit {
        after_run(&ctx, &id);
    }
    if code == 0 {
        Ok(())
    } else {
        Err(AgentExit(code).into())
    }
}

/// Under the lock: the session exists, has its worktree, and runs no agent yet.
fn check_runnable(ctx: &Ctx, id: &SessionId) -> anyhow::Result<SessionRecord> {
    let _lock = ctx.state.lock()?;
    let record = ctx.state.record(id)?;
    if !record.worktree.is_dir() {
        return Err(UserError::runtime(format!(
            "the worktree of session '{id}' is gone ({})",
            record.worktree
        ))
        .hint(format!(
            "run 'git codex session prune', then 'git codex session restore {id}'"
        ))
        .into());
    }
    if let Some(agent) = record.agent.as_ref().filter(|a| a.is_alive()) {
        return Err(UserError::refused(format!(
            "session '{id}' already runs an agent (pid {}, {:?})",
            agent.pid, agent.command
        ))
        .hint("wait for it to end, or start another session")
        .into());
    }
    Ok(record)
}

fn mode_line(record: &SessionRecord, plan: &NetworkPlan, fs: &FsPlan) -> String {
    let network = if record.sandbox == "strict" {
        format!(
            "sandbox strict, network enforced: {} ({})",
            plan.enforced(),
            plan.describe()
        )
    } else {
        format!("sandbox {}, network enabled", record.sandbox)
    };
    let files = if fs.confined() {
        "filesystem confined: true (bwrap)"
    } else if fs.problem.is_some() {
        "filesystem confined: false"
    } else {
        "filesystem open"
    };
    format!("{network}, {files}")
}

/// What a confined agent may write besides its worktree: its tmp and log dirs, and
/// `sandbox.writable_paths` (made when missing).
fn writable_paths(
    ctx: &Ctx,
    tmp: &camino::Utf8Path,
    logs: &camino::Utf8Path,
) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let mut paths = vec![tmp.to_path_buf(), logs.to_path_buf()];
    for path in &ctx.config.writable_paths {
        let path = crate::config::expand_path(path, &ctx.paths.main_root);
        fs_err::create_dir_all(&path)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Reloads the record under the lock and changes it; a session removed meanwhile is left alone.
fn update_record(
    ctx: &Ctx,
    id: &SessionId,
    change: impl FnOnce(&mut SessionRecord),
) -> anyhow::Result<()> {
    let _lock = ctx.state.lock()?;
    if let Ok(mut record) = ctx.state.record(id) {
        change(&mut record);
        ctx.state.write_record(&record)?;
    }
    Ok(())
}

/// Ctrl-C reaches the agent (same process group); git-codex stays to record how it ended.
fn ignore_interrupts() {
    // SAFETY: setting signal dispositions to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
}

/// Copies the agent's stdout and stderr to ours and to the log, then returns its exit code
/// (128 + signal for a signal, as shells report it).
fn wait_teeing(child: &mut Child, log: fs_err::File) -> anyhow::Result<i32> {
    let log = Arc::new(Mutex::new(log));
    let mut threads = Vec::new();
    if let Some(out) = child.stdout.take() {
        let log = Arc::clone(&log);
        threads.push(std::thread::spawn(move || {
            tee(out, std::io::stdout(), &log)
        }));
    }
    if let Some(err) = child.stderr.take() {
        let log = Arc::clone(&log);
        threads.push(std::thread::spawn(move || {
            tee(err, std::io::stderr(), &log)
        }));
    }
    let status = child.wait()?;
    for thread in threads {
        let _ = thread.join();
    }
    Ok(exit_code(status))
}

/// An exit status as shells report it: the code, or 128 + the signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn tee(mut from: impl Read, mut to: impl Write, log: &Mutex<fs_err::File>) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 {
            break;
        }
        let _ = to.write_all(&buffer[..n]);
        let _ = to.flush();
        if let Ok(mut log) = log.lock() {
            let _ = log.write_all(&buffer[..n]);
        }
    }
}

/// With `session.cleanup_on_exit`: the review snapshot and summary, so the session joins the
/// review queue. A failure here is a warning: the agent's exit code stays the answer.
fn after_run(ctx: &Ctx, id: &SessionId) {
    let summary = summarize(ctx, id, ReportFormat::Markdown).and_then(|(record, summary)| {
        write_reports(&ctx.state.root.join("reviews").join(&record.id), &summary)?;
        Ok(summary)
    });
    match summary {
        Ok(summary) => output::note(&format!(
            "git-codex: review summary of '{id}' at {}: {} file(s), +{} -{} (reviews/{id}/{}.md)",
            &summary.tip.to_string()[..12],
            summary.totals.files,
            summary.totals.insertions,
            summary.totals.deletions,
            summary.tip
        )),
        Err(err) => output::warning(&format!("git-codex: no review snapshot of '{id}': {err:#}")),
    }
}
