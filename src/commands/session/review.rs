//! `git codex session review <id> [--approve | --reject]`: commit the agent's changes, summarise
//! the range, run the review hook, and record a verdict bound to the exact tip.

use std::io::IsTerminal as _;

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;
use jiff::Timestamp;

use crate::cli::{ReportFormat, SessionReviewArgs};
use crate::context::Ctx;
use crate::error::UserError;
use crate::git::read::worktree_state_knowing;
use crate::output::{self, escape};
use crate::review::approval;
use crate::review::{Summary, patch, render};
use crate::state::session_file_excluded;
use crate::state::{SessionRecord, id, replace_file};

use super::review_hook::run_hook;
use super::status::known_head;
use super::verdict::{
    Verdict, moved_since, record_verdict, refuse_unless_tip, refuse_while_agent_runs, seen_tip,
};

pub fn run(args: SessionReviewArgs) -> anyhow::Result<()> {
    if args.approve {
        crate::sandbox::context::refuse_in_session("approve a session")?;
    }
    let id = id::parse(&args.id)?;
    if let Some(path) = &args.output {
        check_output(Utf8Path::new(path))?;
    }
    let ctx = Ctx::open(&[])?;
    // Whether git runs git-codex's hooks here (a git process) is asked while the review is
    // made, and said once it is.
    let health = {
        let (git, root, common) = (
            ctx.git.clone(),
            ctx.paths.main_root.clone(),
            ctx.paths.common_dir.clone(),
        );
        std::thread::spawn(move || crate::hooks::health::off(&git, &root, &common))
    };
    let view = View::of(&ctx, &args);
    let verdict = match (args.approve, args.reject) {
        (true, _) => Some(Verdict::Approve),
        (_, true) => Some(Verdict::Reject),
        _ => None,
    };
    let seen = match &args.tip {
        Some(tip) if verdict.is_some() => Some(seen_tip(&ctx, tip)?),
        Some(_) => {
            return Err(UserError::bad_input(
                "--tip names the tip an --approve or --reject is for",
            )
            .hint("add --approve or --reject, or leave --tip out")
            .into());
        }
        None => None,
    };
    if verdict == Some(Verdict::Approve) {
        refuse_while_agent_runs(&ctx, &id)?;
    }
    if let Some(seen) = seen {
        // Before anything is staged or run: the tip moved since the review that was read.
        refuse_unless_tip(&ctx, &id, seen)?;
    }
    let made = summarize(&ctx, &id, view.hook_report());
    if let Ok(Some(health)) = health.join() {
        crate::hooks::health::warn(&health);
    }
    let (record, mut summary) = made?;
    summary.json_hunks = args.patch;
    let tip = summary.tip;
    let report_dir = ctx.state.root.join("reviews").join(&record.id);
    if let Some(seen) = seen
        && seen != tip
    {
        // Review staged the worktree's changes: they are not what was read.
        write_reports(&report_dir, &summary)?;
        return Err(moved_since(&ctx, &id, seen, tip)?);
    }

    let verdict_line = match verdict {
        Some(Verdict::Approve) => {
            let hook_failed = summary.hook.as_ref().is_some_and(|h| !h.passed);
            if hook_failed && !args.force {
                let saved = write_reports(&report_dir, &summary)?;
                view.emit(&ctx, &report_dir, &summary, saved, args.output.as_deref())?;
                return Err(UserError::refused(format!(
                    "not approved: the review hook failed for session '{id}' at {}",
                    short(&tip)
                ))
                .hint(
                    "fix what the hook reports and review again, or pass --force to approve anyway",
                )
                .into());
            }
            Some(record_verdict(
                &ctx,
                &record,
                tip,
                Verdict::Approve,
                args.message.as_deref(),
                &summary,
            )?)
        }
        Some(Verdict::Reject) => Some(record_verdict(
            &ctx,
            &record,
            tip,
            Verdict::Reject,
            args.message.as_deref(),
            &summary,
        )?),
        None => None,
    };
    summary.approval = approval::state(&ctx.reader, &record.id, tip, ctx.signers().as_ref())?;
    let saved = write_reports(&report_dir, &summary)?;
    view.emit(&ctx, &report_dir, &summary, saved, args.output.as_deref())?;
    if let Some(line) = verdict_line {
        output::note(&line);
    }
    Ok(())
}

/// What the review prints, and where.
struct View {
    format: Option<ReportFormat>,
    stat: bool,
}

impl View {
    fn of(ctx: &Ctx, args: &SessionReviewArgs) -> View {
        let configured = (ctx.config.review.summary_format == "json").then_some(ReportFormat::Json);
        // A file gets the markdown report unless told otherwise; stdout gets the summary and
        // the patch as git shows them.
        let format = args
            .format
            .or(configured)
            .or(args.output.as_ref().map(|_| ReportFormat::Markdown));
        View {
            format,
            stat: args.stat,
        }
    }

    /// The report the review hook reads (`CODEX_REVIEW_REPORT`).
    fn hook_report(&self) -> ReportFormat {
        if self.format == Some(ReportFormat::Json) {
            ReportFormat::Json
        } else {
            ReportFormat::Markdown
        }
    }

    /// Prints the review (or writes it to `file`); `saved` is what [`write_reports`] saved.
    fn emit(
        &self,
        ctx: &Ctx,
        report_dir: &Utf8Path,
        summary: &Summary,
        saved: Reports,
        file: Option<&str>,
    ) -> anyhow::Result<()> {
        let text = match self.format {
            Some(ReportFormat::Html) => {
                let saved = write_page(report_dir, summary)?;
                if let Some(path) = file {
                    fs_err::write(path, crate::review::html::page(summary).as_bytes())?;
                    output::note(&format!(
                        "Wrote the review page of '{}' to {path} (also saved as {saved})",
                        summary.session
                    ));
                } else {
                    output::note(&format!(
                        "Wrote the review page of '{}': open it in a browser",
                        summary.session
                    ));
                    output::data(saved.as_str());
                }
                return Ok(());
            }
            Some(ReportFormat::Json) => saved.json,
            Some(ReportFormat::Markdown) if self.stat => render::summary_markdown(summary),
            Some(ReportFormat::Markdown) => saved.markdown,
            None => {
                let mut text = render::summary_markdown(summary);
                if !self.stat && !summary.patches.is_empty() {
                    let colors = patch_colors(ctx);
                    text.push('\n');
                    text.push_str(&render::terminal_patch(summary, colors.as_deref()));
                }
                text
            }
        };
        match file {
            Some(path) => {
                fs_err::write(path, text.as_bytes())?;
                output::note(&format!(
                    "Wrote the review of '{}' to {path}",
                    summary.session
                ));
                Ok(())
            }
            None => {
                let pager = std::io::stdout()
                    .is_terminal()
                    .then(|| ctx.git.pager(&ctx.paths.main_root))
                    .flatten();
                output::pager::show(&text, pager.as_deref())
            }
        }
    }
}

/// git's colours for the patch on stdout: at a terminal unless colour is off (`--color`,
/// `NO_COLOR`, git's `color.diff` / `color.ui`), always with `--color=always`.
fn patch_colors(ctx: &Ctx) -> Option<Vec<(&'static str, String)>> {
    use anstream::ColorChoice;
    let forced = ColorChoice::global() == ColorChoice::Always;
    let wanted = forced
        || matches!(
            anstream::AutoStream::choice(&std::io::stdout()),
            ColorChoice::Always | ColorChoice::AlwaysAnsi
        );
    if !wanted {
        return None;
    }
    match ctx.git.diff_colors(&ctx.paths.main_root) {
        Some(colors) => Some(colors),
        None if forced => Some(
            crate::git::patch::COLOR_SLOTS
                .iter()
                .map(|(slot, seq)| (*slot, (*seq).to_string()))
                .collect(),
        ),
        None => None,
    }
}

/// Everything `review` does short of a verdict: stage the agent's changes, summarise the
/// range, run the review hook. `session run` calls it when an agent ends. The caller saves
/// the reports ([`write_reports`]) once it knows the verdict.
pub fn summarize(
    ctx: &Ctx,
    id: &crate::state::SessionId,
    format: ReportFormat,
) -> anyhow::Result<(SessionRecord, Summary)> {
    // A confined run whose git-codex was killed: its commits join the branch first.
    if let Some(warning) = crate::sandbox::confine::settle(ctx, id)? {
        output::warning(&warning);
    }
    let record = ctx.state.record(id)?;
    if record
        .agent
        .as_ref()
        .is_some_and(|a| a.is_alive() && a.filesystem_confined)
    {
        return Err(UserError::refused(format!(
            "session '{id}' has a confined agent at work: its commits reach the branch when it ends"
        ))
        .hint(format!(
            "review it when the agent is done; 'git codex session show {id}' shows it"
        ))
        .into());
    }
    if !record.worktree.is_dir() {
        return Err(UserError::runtime(format!("the worktree of session '{id}' is gone ({})", record.worktree))
            .hint(format!("run 'git codex session prune' to save what remains, then 'git codex session restore {id}'"))
            .into());
    }
    let tip = branch_tip(ctx, &record)?;
    let base = crate::gate::base::current(ctx, &record, tip)?;
    // Git computes the patch of the branch as it is while the rest is looked at: used when
    // nothing was staged (the usual case), computed again for the snapshot otherwise. The
    // second thread only waits on git's pipe; gix's work stays on this one (unmapping while
    // another thread of this process runs costs a TLB flush).
    let (git, main_root) = (&ctx.git, &ctx.paths.main_root);
    let (record, staged, early, nested) = std::thread::scope(|scope| {
        let early = scope.spawn(move || git.patch(main_root, base, tip));
        // A git killed there (with its agent, say) left its locks: git would refuse to stage,
        // and to move the branch (its ref lock is the repository's).
        super::stale_locks::clear_main(&ctx.paths)?;
        super::stale_locks::clear_session(&ctx.paths, &(&record).into())?;
        let nested = crate::git::nested::nested_repositories(&record.worktree);
        let known = known_head(
            ctx,
            &record.branch,
            session_file_excluded(&ctx.paths.common_dir),
        );
        let clean = matches!(
            worktree_state_knowing(&record.worktree, known.as_ref(), false),
            Ok(state) if state.head == Some(tip) && matches!(state.dirty, Ok(false))
        );
        let staged = stage(ctx, id, clean);
        let early = early.join();
        staged.map(|(record, staged)| (record, staged, early, nested))
    })?;
    let (base, tip, raw) = match (&staged, early) {
        (None, Ok(early)) => (base, tip, early?),
        (None, Err(_)) => (base, tip, ctx.git.patch(&ctx.paths.main_root, base, tip)?),
        (Some(_), _) => {
            let tip = branch_tip(ctx, &record)?;
            let base = crate::gate::base::current(ctx, &record, tip)?;
            (base, tip, ctx.git.patch(&ctx.paths.main_root, base, tip)?)
        }
    };
    let patches = patch::parse(&raw);
    let mut summary = Summary::build(
        &ctx.reader,
        &record.id,
        &record.branch,
        (base, tip),
        patches,
    )?;
    let tip = summary.tip;
    summary.staged = staged;
    summary.max_patch_lines = ctx.config.review.max_patch_lines;
    summary.nested = nested;
    for warning in summary
        .nested_warnings()
        .into_iter()
        .chain(summary.hook_config_warnings())
        .chain(summary.content_warnings())
    {
        output::warning(&warning);
    }
    summary.approval = approval::state(&ctx.reader, &record.id, tip, ctx.signers().as_ref())?;
    let report_dir = ctx.state.root.join("reviews").join(&record.id);
    if !ctx.config.review.hook.is_empty() {
        // The hook reads the report through CODEX_REVIEW_REPORT: it must exist first.
        write_reports(&report_dir, &summary)?;
        summary.hook = run_hook(ctx, &record, &summary, &report_dir, format);
    }
    Ok((record, summary))
}

/// Under the lock: commits the agent's changes (with `review.auto_stage`, unless the
/// worktree was found `clean`) and counts the review as activity.
fn stage(
    ctx: &Ctx,
    id: &crate::state::SessionId,
    clean: bool,
) -> anyhow::Result<(SessionRecord, Option<String>)> {
    let _lock = super::journal::lock(ctx)?;
    let mut record = ctx.state.record(id)?;
    let staged = if ctx.config.review.auto_stage && !clean {
        let branch_ref = format!("refs/heads/{}", record.branch);
        ctx.git.commit_worktree(
            &record.worktree,
            &branch_ref,
            &record.id,
            &record.copied_files,
        )?
    } else {
        None
    };
    record.last_activity = Timestamp::now();
    ctx.state.write_record(&record)?;
    crate::gate::record::observe(ctx, &record)?;
    Ok((record, staged))
}

pub(super) fn branch_tip(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<ObjectId> {
    ctx.reader
        .ref_target(&format!("refs/heads/{}", record.branch))?
        .ok_or_else(|| {
            UserError::runtime(format!(
                "the branch {} of session '{}' is gone",
                record.branch, record.id
            ))
            .hint("nothing can be reviewed without it; remove the session")
            .into()
        })
}

/// The two reports of a review as saved: what `--format markdown` and `--format json` print
/// (each rendered once: a 300-file change takes about a millisecond each).
pub(super) struct Reports {
    markdown: String,
    json: String,
}

/// Saves `<tip>.md` and `<tip>.json` under `reviews/<id>/`.
pub(super) fn write_reports(dir: &camino::Utf8Path, summary: &Summary) -> anyhow::Result<Reports> {
    let tip = summary.tip.to_string();
    let markdown = render::markdown(summary);
    replace_file(&dir.join(format!("{tip}.md")), markdown.as_bytes())?;
    let json = format!("{}\n", escape::json_pretty(&render::json(summary))?);
    replace_file(&dir.join(format!("{tip}.json")), json.as_bytes())?;
    // A page saved earlier for this tip shows its approval state as it is now.
    if dir.join(format!("{tip}.html")).is_file() {
        write_page(dir, summary)?;
    }
    Ok(Reports { markdown, json })
}

/// Saves the review page as `<tip>.html` beside the other reports.
fn write_page(dir: &Utf8Path, summary: &Summary) -> anyhow::Result<Utf8PathBuf> {
    let path = dir.join(format!("{}.html", summary.tip));
    replace_file(&path, crate::review::html::page(summary).as_bytes())?;
    Ok(path)
}

/// `-o PATH` must be writable before anything is committed or recorded: its directory there,
/// and it not a directory itself.
fn check_output(path: &Utf8Path) -> anyhow::Result<()> {
    use rustix::fs::{Access, access};
    let refuse = |why: String| -> anyhow::Error {
        UserError::bad_input(format!("cannot write the review to {path}: {why}"))
            .hint("give -o a file in an existing directory you can write; nothing was reviewed")
            .into()
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir,
        _ => Utf8Path::new("."),
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".into()));
    }
    if !dir.is_dir() {
        return Err(refuse(format!("the directory {dir} does not exist")));
    }
    let target = if path.exists() { path } else { dir };
    access(target.as_std_path(), Access::WRITE_OK)
        .map_err(|err| refuse(format!("{target} is not writable ({err})")))
}

pub(super) fn short(id: &ObjectId) -> String {
    id.to_string()[..12].to_string()
}
