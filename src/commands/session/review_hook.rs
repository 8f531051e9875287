//! The review hook as `session review` runs it: the project's checks on the agent's code, in
//! the agent's sandbox, with the review's facts in its environment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::Utf8PathBuf;

use crate::cli::ReportFormat;
use crate::context::Ctx;
use crate::output;
use crate::review::{Summary, hook};
use crate::sandbox::launch;
use crate::state::SessionRecord;

pub(super) fn run_hook(
    ctx: &Ctx,
    record: &SessionRecord,
    summary: &Summary,
    report_dir: &camino::Utf8Path,
    format: ReportFormat,
) -> Option<hook::HookResult> {
    let configured = &ctx.config.review.hook;
    if configured.is_empty() {
        return None;
    }
    let program = Utf8PathBuf::from(configured);
    let program = if program.is_absolute() {
        program
    } else {
        ctx.paths
            .main_root
            .join(configured.trim_start_matches("./"))
    };
    let extension = if format == ReportFormat::Json {
        "json"
    } else {
        "md"
    };
    let report = report_dir.join(format!("{}.{extension}", summary.tip));
    let env = [
        ("CODEX_SESSION_ID", record.id.clone()),
        ("CODEX_BASE", summary.base.to_string()),
        ("CODEX_TIP", summary.tip.to_string()),
        ("CODEX_WORKTREE", record.worktree.to_string()),
        ("CODEX_REVIEW_REPORT", report.to_string()),
    ];
    let timeout = match ctx.config.review.hook_timeout.seconds() {
        Some(secs) => Duration::from_secs(secs),
        None => Duration::MAX,
    };
    let log = ctx.state.runs_dir(&record.id).join("review-hook.log");
    Some(
        confined_hook(ctx, record, &program, &env, timeout, &log).unwrap_or_else(|err| {
            hook::HookResult {
                command: program.to_string(),
                exit_code: None,
                timed_out: false,
                passed: false,
                duration_ms: 0,
                output: format!("cannot run the review hook {program}: {err:#}"),
            }
        }),
    )
}

/// The hook runs the project's checks on the agent's code: it gets the agent's sandbox (the
/// session's mode and egress policy, its confinement), and what it writes of the agent's
/// commits reaches the branch as a run's would.
fn confined_hook(
    ctx: &Ctx,
    record: &SessionRecord,
    program: &camino::Utf8Path,
    env: &[(&str, String)],
    timeout: Duration,
    log: &camino::Utf8Path,
) -> anyhow::Result<hook::HookResult> {
    if let Some(dir) = log.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let out = crate::state::create_fresh(log)?;
    let proxy_log: Arc<Mutex<std::fs::File>> = Arc::new(Mutex::new(out.try_clone()?));
    let (mode, source) = launch::mode_of(ctx, record, None);
    let (network, fs) = launch::plans(ctx);
    let command = [program.to_string()];
    let request = launch::Request {
        record,
        mode: &mode,
        source,
        command: &command,
        agent: false,
        feedback: None,
        proxy_log,
    };
    let mut sandbox = launch::prepare(ctx, &request, network, fs)?;
    {
        use std::io::Write as _;
        let mut header = &out;
        writeln!(header, "# git-codex review hook: {}", sandbox.describe)?;
    }
    sandbox
        .command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let confined = sandbox.confinement.is_some();
    let result = hook::run(sandbox.command, program.as_str(), timeout, out, log);
    drop(sandbox.proxy);
    if confined
        && let Some(warning) =
            crate::sandbox::confine::settle(ctx, &crate::state::id::parse(&record.id)?)?
    {
        output::warning(&warning);
    }
    Ok(result)
}
