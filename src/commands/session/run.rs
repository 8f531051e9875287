//! `git codex session run <id> [--] CMD…`: the agent in its session, with its environment,
//! its network policy (really cut in strict mode), both output streams logged, and a review
//! snapshot when it ends.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::review::{summarize, write_reports};
use crate::cli::{ReportFormat, SessionRunArgs};
use crate::context::Ctx;
use crate::error::{AgentExit, UserError};
use crate::output;
use crate::sandbox::{confine, launch, process, terminal};
use crate::state::record::{AgentRun, LastRun};
use crate::state::{SessionId, SessionRecord, id};

pub fn run(args: SessionRunArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let ctx = Ctx::open(&[])?;
    // One run of a session at a time, from its checks to its clean-up: two runs starting
    // together would each make the session's socket and admin dir, and the one refused
    // would remove what the other's sandbox uses.
    ctx.state.record(&id)?;
    let _one_run = hold_the_run(&ctx, &id)?;
    let record = check_runnable(&ctx, &id)?;
    ctx.warn_if_gate_off();
    let (mode, source) = launch::mode_of(&ctx, &record, args.sandbox.as_deref());
    let strict = mode == "strict";
    let (plan, fs) = launch::plans(&ctx);
    let problems = [
        ("cut the network", plan.problem.as_ref().filter(|_| strict)),
        ("confine the filesystem", fs.problem.as_ref()),
    ];
    for (what, problem) in problems {
        let Some(problem) = problem else { continue };
        if args.require_sandbox {
            return Err(UserError::refused(format!("cannot {what} for session '{id}': {problem}"))
                .hint("install bubblewrap, allow unprivileged user namespaces, or run without --require-sandbox")
                .into());
        }
    }
    if strict && let Some(problem) = &plan.problem {
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
    let logs = ctx.state.runs_dir(&record.id);
    fs_err::create_dir_all(&logs)?;
    let log_path = logs.join(format!(
        "run-{}.log",
        started.strftime("%Y%m%dT%H%M%S%.3fZ")
    ));
    let log = Arc::new(Mutex::new(fs_err::File::from_parts(
        crate::state::create_fresh(&log_path)?,
        &log_path,
    )));
    let tip = ctx
        .reader
        .ref_target(&format!("refs/heads/{}", record.branch))?;
    let feedback = crate::review::feedback::current(
        &ctx.reader,
        &record.id,
        record.earlier_rejection.as_deref(),
        tip,
    )?;
    let request = launch::Request {
        record: &record,
        mode: &mode,
        source,
        command: &args.command,
        agent: true,
        feedback: feedback.as_deref(),
        proxy_log: log.clone(),
    };
    let mut sandbox = launch::prepare(&ctx, &request, plan, fs)?;
    let argv = sandbox.argv.clone();
    if let Ok(mut log) = log.lock() {
        writeln!(
            log,
            "# git-codex session run: session {}, {}, command {argv:?}, started {started}",
            record.id, sandbox.describe
        )?;
    }
    output::note(&format!(
        "git-codex: session '{}': {}",
        record.id, sandbox.describe
    ));

    let cmd = &mut sandbox.command;
    // A person at a terminal gets the agent on a terminal of its own; otherwise both streams
    // are pipes. Either way the agent is in a session of its own: it has no controlling
    // terminal of the person's to push keys into.
    let pty = if terminal::interactive() {
        Some(terminal::attach(cmd)?)
    } else {
        // A terminal as stdin alone (stdout to a file or a pipe) stays the person's: through
        // it the agent could read what is typed there and change the terminal's settings.
        let stdin = if terminal::stdin_is_terminal() {
            Stdio::null()
        } else {
            Stdio::inherit()
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        terminal::new_session(cmd);
        None
    };
    let mut child = cmd.spawn().map_err(|err| {
        UserError::new(
            crate::error::Exit::Runtime,
            format!("cannot start {}: {err}", argv[0]),
        )
        .hint("check the command and PATH")
    })?;
    terminal::forward_signals_to(child.id());
    let network_enforced = sandbox.network_enforced();
    let filesystem_confined = sandbox.fs.confined();
    let confined = sandbox.confinement.is_some();
    // The command holds copies of the terminal's descriptors; the agent's end must be its own.
    drop(sandbox.command);
    let agent = AgentRun {
        pid: child.id(),
        start_ticks: process::start_ticks(child.id()).unwrap_or(0),
        command: argv.clone(),
        started,
        network_enforced,
        filesystem_confined,
        log: log_path.clone(),
    };
    if let Err(err) = record_agent(&ctx, &id, &record, &agent) {
        // Not recorded, so never started: the gate sees its pipe close and ends.
        drop(sandbox.gate.take());
        let _ = child.wait();
        terminal::stop_forwarding();
        return Err(err);
    }
    // Recorded: only now may the agent run its first instruction.
    if let Some(gate) = sandbox.gate.take()
        && let Err(err) = gate.open()
    {
        output::warning(&format!(
            "git-codex: the agent of session '{id}' ended before it could start: {err}"
        ));
    }
    let code = match pty {
        Some(pty) => exit_code(pty.run(&mut child, &log)?),
        None => wait_teeing(&mut child, log)?,
    };
    terminal::stop_forwarding();
    // The proxy lives as long as the agent did.
    drop(sandbox.proxy);
    let last = LastRun {
        command: argv,
        started,
        ended: Timestamp::now(),
        exit_code: code,
        sandbox: mode.clone(),
        network_enforced,
        filesystem_confined,
        log: log_path,
    };
    update_record(&ctx, &id, |r| {
        r.agent = None;
        r.last_run = Some(last.clone());
        r.last_activity = Timestamp::now();
    })?;
    if confined {
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

/// Takes the session's run lock (a lock on its `runs/<id>` dir, held until this process
/// ends; never inherited by the agent), or refuses when another run holds it.
fn hold_the_run(ctx: &Ctx, id: &SessionId) -> anyhow::Result<std::fs::File> {
    let dir = ctx.state.runs_dir(id.as_str());
    fs_err::create_dir_all(&dir)?;
    let held = std::fs::File::open(&dir)
        .map_err(|err| UserError::runtime(format!("cannot open {dir}: {err}")))?;
    match held.try_lock() {
        Ok(()) => Ok(held),
        Err(std::fs::TryLockError::WouldBlock) => Err(UserError::refused(format!(
            "session '{id}' is starting or ending a run already"
        ))
        .hint("wait for that run to end, or start another session")
        .into()),
        Err(std::fs::TryLockError::Error(err)) => {
            Err(UserError::runtime(format!("cannot lock {dir}: {err}")).into())
        }
    }
}

/// Under the lock: the session exists, has its worktree, and runs no agent yet.
fn check_runnable(ctx: &Ctx, id: &SessionId) -> anyhow::Result<SessionRecord> {
    let _lock = super::journal::lock(ctx)?;
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

/// Under the lock, names the agent in the session's record: only if the session is still the
/// one the run began with (a remove or prune may have taken it while the sandbox was made,
/// its worktree moved to the trash) and no other run recorded an agent meanwhile. Otherwise
/// the agent must not start.
fn record_agent(
    ctx: &Ctx,
    id: &SessionId,
    began: &SessionRecord,
    agent: &AgentRun,
) -> anyhow::Result<()> {
    let _lock = super::journal::lock(ctx)?;
    let gone = || {
        UserError::unknown_session(id.as_str())
            .hint(format!(
                "session '{id}' was removed while its run started; the agent was not started"
            ))
            .into()
    };
    let Ok(mut record) = ctx.state.record(id) else {
        return Err(gone());
    };
    if record.created != began.created
        || record.worktree != began.worktree
        || !record.worktree.is_dir()
    {
        return Err(gone());
    }
    if let Some(other) = record.agent.as_ref().filter(|a| a.is_alive()) {
        return Err(UserError::refused(format!(
            "session '{id}' already runs an agent (pid {}, {:?}), started while this run began",
            other.pid, other.command
        ))
        .hint("wait for it to end, or start another session")
        .into());
    }
    record.agent = Some(agent.clone());
    ctx.state.write_record(&record)
}

/// Reloads the record under the lock and changes it; a session removed meanwhile is left alone.
fn update_record(
    ctx: &Ctx,
    id: &SessionId,
    change: impl FnOnce(&mut SessionRecord),
) -> anyhow::Result<()> {
    let _lock = super::journal::lock(ctx)?;
    if let Ok(mut record) = ctx.state.record(id) {
        change(&mut record);
        ctx.state.write_record(&record)?;
    }
    Ok(())
}

/// Copies the agent's stdout and stderr to ours and to the log, then returns its exit code
/// (128 + signal for a signal, as shells report it).
fn wait_teeing(child: &mut Child, log: Arc<Mutex<fs_err::File>>) -> anyhow::Result<i32> {
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
