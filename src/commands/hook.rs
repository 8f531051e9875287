//! `git codex hook <name> …`: what the shims call. Each is a thin adapter that parses git's
//! arguments and stdin and asks the gate (src/gate), or prunes.

use std::io::Read as _;

use camino::Utf8Path;
use gix::ObjectId;
use jiff::Timestamp;

use super::session::prune;
use crate::cli::HookArgs;
use crate::config::Settings;
use crate::context::{Ctx, current_dir};
use crate::error::UserError;
use crate::gate::record;
use crate::gate::server::{self, CliHistory};
use crate::gate::{Gate, Violation};
use crate::git::Git;
use crate::git::ledger::LEDGER_PREFIX;
use crate::hooks;
use crate::output::{self, escape};
use crate::review::approval::Signers;
use crate::state::StateDir;

pub fn run(args: HookArgs) -> anyhow::Result<()> {
    match args.name.as_str() {
        "reference-transaction" => reference_transaction(&args.args),
        "pre-merge-commit" => pre_merge_commit(),
        "pre-commit" => pre_commit(),
        "pre-push" => pre_push(),
        "post-checkout" => post_checkout(),
        "pre-receive" => pre_receive(),
        other => Err(UserError::bad_input(format!("no hook '{other}'")).into()),
    }
}

fn stdin_text() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text)
}

/// An object id from a hook line; all zeros (a ref that does not exist) is `None`.
fn oid(text: &str) -> Option<ObjectId> {
    ObjectId::from_hex(text.as_bytes())
        .ok()
        .filter(|id| !id.is_null())
}

/// Prints the refusal git shows the user and fails the hook.
fn refuse(refname: &str, violations: &[Violation], recover: &str) -> anyhow::Result<()> {
    for v in violations {
        output::error(&format!(
            "git-codex: refusing to move {}: commit {} of session '{}' is not approved: {}",
            escape::quote(refname),
            &v.commit[..v.commit.len().min(12)],
            escape::quote(&v.session),
            escape::line(&v.reason())
        ));
    }
    let sessions: Vec<&str> = violations.iter().map(|v| v.session.as_str()).collect();
    let first = sessions.first().copied().unwrap_or("<id>");
    output::hint(&format!(
        "a person approves the session's tip with 'git codex session review {} --approve'; then try again",
        escape::quote(first)
    ));
    output::hint(recover);
    Err(UserError::refused(format!(
        "the review gate refused to move {}",
        escape::quote(refname)
    ))
    .into())
}

/// Asks the gate about each `(ref, old, new)` update; the first refusal fails the hook with
/// `recover` as the way back.
fn check_all<'r>(
    gate: &Gate<'_>,
    updates: impl IntoIterator<Item = (&'r str, Option<ObjectId>, ObjectId)>,
    recover: &str,
) -> anyhow::Result<()> {
    for (refname, old, new) in updates {
        let violations = gate.check(refname, old, new)?;
        if !violations.is_empty() {
            return refuse(refname, &violations, recover);
        }
    }
    Ok(())
}

fn reference_transaction(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) != Some("prepared") {
        return Ok(());
    }
    // Branches, HEAD (a detached commit in a session's worktree) and ledgers; symbolic-ref
    // updates ("ref:<target>") carry no commit.
    let updates: Vec<record::Update> = stdin_text()?
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = name == "HEAD"
                || name.starts_with("refs/heads/")
                || name.starts_with(LEDGER_PREFIX);
            (wanted && !new.starts_with("ref:")).then(|| (oid(old), oid(new), name.to_string()))
        })
        .collect();
    if updates.is_empty() {
        return Ok(());
    }
    let ctx = Ctx::open(&[])?;
    // git passes zeros as the old value when the caller named none (`git update-ref REF NEW`):
    // what the ref holds now, locked by this transaction, is what it moves from.
    let updates: Vec<record::Update> = updates
        .into_iter()
        .map(|(old, new, name)| {
            let old = match old {
                Some(old) => Some(old),
                None if name != "HEAD" => ctx.reader.ref_id(&name)?,
                None => None,
            };
            Ok((old, new, name))
        })
        .collect::<anyhow::Result<_>>()?;
    refuse_ledger_rewinds(&ctx, &updates)?;
    best_effort(
        "record session commits",
        record::record_updates(&ctx, &updates),
    );
    best_effort("refresh the hooks' cache", hooks::refresh_cache(&ctx.state));
    if !ctx.config.gate_reference_transaction {
        return Ok(());
    }
    let gate = Gate::load(&ctx)?;
    check_all(
        &gate,
        updates
            .iter()
            .filter_map(|(old, new, refname)| Some((refname.as_str(), *old, (*new)?))),
        "git may already have changed your files: undo with 'git merge --abort', 'git reset --merge' or 'git rebase --abort'",
    )?;
    Ok(())
}

/// Bookkeeping a hook does on the side, which must never fail git's operation: inside a
/// confined run the state dir and refs are read-only (the run's end records what the agent
/// made), so it says nothing there.
fn best_effort(what: &str, result: anyhow::Result<()>) {
    if let Err(err) = result
        && std::env::var_os("CODEX_SESSION_ID").is_none()
    {
        output::warning(&format!("git-codex could not {what}: {err:#}"));
    }
}

/// A ledger only ever gains entries, and only git-codex writes it (without firing hooks): a
/// transaction that deletes one or moves it anywhere but forward is someone else's, and
/// would turn a session's commits into ordinary ones.
fn refuse_ledger_rewinds(ctx: &Ctx, updates: &[record::Update]) -> anyhow::Result<()> {
    for (old, new, name) in updates {
        if !name.starts_with(LEDGER_PREFIX) {
            continue;
        }
        let forward = match (old, new) {
            // `git pack-refs` (and `gc`) deletes the loose copy of a ref it just packed.
            (_, None) => packing_refs(),
            (None, Some(_)) => true,
            (Some(old), Some(new)) => ctx.reader.commits_between(*old, &[*new])?.is_empty(),
        };
        if !forward {
            output::error(&format!(
                "git-codex: refusing to delete or rewind {name}: it records every commit the session ever had, for the review gate"
            ));
            output::hint(
                "git-codex keeps it until the session's commits are on a protected branch; to discard them for good, a person runs 'git -c core.hooksPath=/dev/null update-ref -d <ledger>' knowingly",
            );
            return Err(UserError::refused(format!("refused to move {name}")).into());
        }
    }
    Ok(())
}

/// Whether the git that runs this hook is `git pack-refs`: its deletions only drop the loose
/// copy of a ref it has just written to `packed-refs`. Defence in depth, as the whole check is
/// (confinement keeps an agent away from `refs/codex/`).
fn packing_refs() -> bool {
    let args = crate::sandbox::process::hook_callers_args();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-c" | "-C" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            command => return command == "pack-refs",
        }
    }
    false
}

fn pre_merge_commit() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    let Some((refname, head)) = ctx.reader.current_head()? else {
        return Ok(());
    };
    let merged: Vec<ObjectId> = std::env::vars_os()
        .filter_map(|(name, _)| oid(name.to_str()?.strip_prefix("GITHEAD_")?))
        .collect();
    let gate = Gate::load(&ctx)?;
    check_all(
        &gate,
        merged
            .into_iter()
            .map(|tip| (refname.as_str(), Some(head), tip)),
        "undo the merge with 'git merge --abort'",
    )
}

fn pre_commit() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    let Some((refname, head)) = ctx.reader.current_head()? else {
        return Ok(());
    };
    let squash = ctx.reader.current_git_dir().join("SQUASH_MSG");
    let Ok(text) = fs_err::read_to_string(&squash) else {
        return Ok(());
    };
    let squashed = text
        .lines()
        .filter_map(|l| oid(l.strip_prefix("commit ")?.trim()));
    let gate = Gate::load(&ctx)?;
    check_all(
        &gate,
        squashed.map(|commit| (refname.as_str(), Some(head), commit)),
        "undo the squash with 'git reset --merge'",
    )
}

fn pre_push() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    let text = stdin_text()?;
    let updates = text.lines().filter_map(|line| {
        let parts: Vec<&str> = line.split(' ').collect();
        let [_, local, remote_ref, remote] = parts[..] else {
            return None;
        };
        // The remote's old tip counts only if we have it.
        let old = oid(remote).filter(|id| ctx.reader.repo.has_object(id));
        Some((remote_ref, old, oid(local)?))
    });
    let gate = Gate::load(&ctx)?;
    check_all(&gate, updates, "nothing was pushed")
}

/// Never fails: a problem is a warning, and a busy lock means another git-codex command is
/// at work (a `session add` running `git worktree add`), so pruning waits for later.
fn post_checkout() -> anyhow::Result<()> {
    let result = (|| -> anyhow::Result<()> {
        let ctx = Ctx::open(&[])?;
        let Some(_lock) = ctx.state.try_lock()? else {
            return Ok(());
        };
        prune::prune_expired(&ctx, Timestamp::now())
    })();
    if let Err(err) = result {
        output::warning(&format!(
            "git-codex could not prune expired sessions: {err:#}"
        ));
    }
    Ok(())
}

fn pre_receive() -> anyhow::Result<()> {
    let git = Git::from_env();
    let cwd = current_dir()?;
    let common = git.run(
        &cwd,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let state = StateDir::new(Utf8Path::new(&common));
    let config = Settings::load(Some(&state.config_file()), &[])?.config();
    let updates: Vec<(Option<ObjectId>, Option<ObjectId>, String)> = stdin_text()?
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
            Some((oid(old), oid(new), name.to_string()))
        })
        .collect();
    let after: Vec<(Option<ObjectId>, String)> = updates
        .iter()
        .map(|(_, new, name)| (*new, name.clone()))
        .collect();
    let sessions = server::sessions_after_push(&git, &cwd, &config.branch_prefix, &after)?;
    let history = CliHistory {
        git: &git,
        cwd: &cwd,
    };
    let review = &config.review;
    let gate = Gate::new(
        &history,
        &git,
        &cwd,
        review.require_approval,
        &review.protected,
        sessions,
        Signers::from_config(review, &cwd),
    );
    check_all(
        &gate,
        updates
            .iter()
            .filter_map(|(old, new, name)| Some((name.as_str(), *old, (*new)?))),
        "nothing was accepted; push the approval (refs/codex/approvals/<id>) with the branch",
    )
}
