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
use crate::gate::server::{self, CliHistory, RefUpdate, ServerRefs};
use crate::gate::{self, Gate, Violation};
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
    // Branches, ledgers, and (shown from a linked worktree) HEAD and the stash; a symbolic
    // ref's new value is "ref:<target>".
    let mut symrefs: Vec<(String, String)> = Vec::new();
    let updates: Vec<record::Update> = stdin_text()?
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = matches!(name, "HEAD" | "refs/stash")
                || name.starts_with("refs/heads/")
                || name.starts_with(LEDGER_PREFIX);
            if let Some(target) = new.strip_prefix("ref:") {
                symrefs.push((name.to_string(), target.to_string()));
                return None;
            }
            wanted.then(|| (oid(old), oid(new), name.to_string()))
        })
        .collect();
    if updates.is_empty() && symrefs.is_empty() {
        return Ok(());
    }
    let ctx = Ctx::open(&[]).map_err(unreadable_config)?;
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
    ctx.state.remember_reads();
    let verdict = gate_transaction(&ctx, &updates, &symrefs);
    if std::env::var_os("CODEX_SESSION_ID").is_none() {
        best_effort("keep what it read", ctx.state.keep_reads());
    }
    verdict
}

/// [`reference_transaction`] once the transaction's lines are read.
fn gate_transaction(
    ctx: &Ctx,
    updates: &[record::Update],
    symrefs: &[(String, String)],
) -> anyhow::Result<()> {
    refuse_ledger_rewinds(ctx, updates)?;
    // `git branch -M <branch> main` deletes <branch> in a transaction but writes main outside
    // any: the deletion is where the rename shows.
    let mut checks: Vec<(String, Option<ObjectId>, ObjectId)> = updates
        .iter()
        .filter(|(_, _, name)| name.starts_with("refs/heads/"))
        .filter_map(|(old, new, name)| Some((name.clone(), *old, (*new)?)))
        .collect();
    let deletes = updates.iter().any(|(_, new, _)| new.is_none());
    if deletes && let Some(target) = renamed_onto() {
        for (old, new, _) in updates {
            if let (Some(moved), None) = (old, new) {
                checks.push((target.clone(), ctx.reader.ref_target(&target)?, *moved));
            }
        }
    }
    // Only a protected branch is gated: a commit on a session's own branch (an agent's, on
    // every commit) lists no session.
    checks.retain(|(refname, _, _)| gate::protects(&ctx.config.review.protected, refname));
    // A detached commit, a stash or a session's commit is only recorded; nothing lands.
    let gated = ctx.config.gate_reference_transaction && !(checks.is_empty() && symrefs.is_empty());
    // Read once (the ledger's bookkeeping, the shim's cache and the gate all need them), while
    // the gate's refs are listed beside them.
    let state = &ctx.state;
    let (records, listings) = if gated {
        std::thread::scope(|scope| {
            let records = scope.spawn(|| state.briefs());
            let listings = gate::Listings::read(ctx);
            (records.join(), Some(listings))
        })
    } else {
        // Nothing lands (an agent's commit, a stash): no refs to list beside them.
        (Ok(state.briefs()), None)
    };
    let records = records.map_err(|_| anyhow::anyhow!("reading the session records failed"))??;
    let recorded = record::record_updates(ctx, &records, updates);
    // Written, or perhaps written before it failed.
    let wrote = !matches!(recorded, Ok(false));
    best_effort("record session commits", recorded.map(|_| ()));
    best_effort(
        "refresh the hooks' cache",
        hooks::refresh_cache(&ctx.state, &records),
    );
    if !gated {
        return Ok(());
    }
    // A ledger written just now is not in the listing taken beside the records.
    let listings = match listings {
        Some(Ok(listings)) if !wrote => listings,
        _ => gate::Listings::read(ctx)?,
    };
    let gate = Gate::load_listed(ctx, &records, listings)?.with_cache(ctx.state.gate_cache());
    if ctx.config.review.require_approval {
        refuse_protected_symrefs(&gate, symrefs)?;
    }
    check_all(
        &gate,
        checks
            .iter()
            .map(|(refname, old, new)| (refname.as_str(), *old, *new)),
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

/// A protected branch may be a symbolic ref only to another protected branch: otherwise every
/// later commit on its target would land on it unseen.
fn refuse_protected_symrefs(gate: &Gate<'_>, symrefs: &[(String, String)]) -> anyhow::Result<()> {
    for (name, target) in symrefs {
        if gate.protects(name) && !gate.protects(target) {
            output::error(&format!(
                "git-codex: refusing to make {name} a symbolic ref to {target}: commits on {target} would land on {name} without the review gate"
            ));
            output::hint("point it at another protected branch, or leave it a plain branch");
            return Err(UserError::refused(format!("refused to move {name}")).into());
        }
    }
    Ok(())
}

/// The branch `git branch -m/-M <old> <new>` (the git running this hook) renames onto, as a
/// full ref name.
fn renamed_onto() -> Option<String> {
    let (command, args) = hook_caller_command()?;
    if command != "branch" {
        return None;
    }
    let moving = args.iter().any(|a| {
        a == "--move" || (a.starts_with('-') && !a.starts_with("--") && a.contains(['m', 'M']))
    });
    let target = args.iter().rev().find(|a| !a.starts_with('-'))?;
    moving.then(|| format!("refs/heads/{target}"))
}

/// Whether the git that runs this hook is `git pack-refs`: its deletions only drop the loose
/// copy of a ref it has just written to `packed-refs`. Defence in depth, as the whole check is
/// (confinement keeps an agent away from `refs/codex/`).
fn packing_refs() -> bool {
    hook_caller_command().is_some_and(|(command, _)| command == "pack-refs")
}

/// The git command running this hook and its arguments (git's own options, `-c k=v` and
/// `-C dir` included, left out).
fn hook_caller_command() -> Option<(String, Vec<String>)> {
    let args = crate::sandbox::process::hook_callers_args();
    let mut rest = args.into_iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-c" | "-C" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            _ => return Some((arg, rest.collect())),
        }
    }
    None
}

fn pre_merge_commit() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[]).map_err(unreadable_config)?;
    let Some((refname, head)) = ctx.reader.current_head()? else {
        return Ok(());
    };
    let merged: Vec<ObjectId> = std::env::vars_os()
        .filter_map(|(name, _)| oid(name.to_str()?.strip_prefix("GITHEAD_")?))
        .collect();
    let gate = Gate::load(&ctx)?.with_cache(ctx.state.gate_cache());
    check_all(
        &gate,
        merged
            .into_iter()
            .map(|tip| (refname.as_str(), Some(head), tip)),
        "undo the merge with 'git merge --abort'",
    )
}

fn pre_commit() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[]).map_err(unreadable_config)?;
    let Some((refname, head)) = ctx.reader.current_head()? else {
        return Ok(());
    };
    let squash = ctx.reader.current_git_dir().join("SQUASH_MSG");
    let Ok(text) = fs_err::read_to_string(&squash) else {
        return Ok(());
    };
    let squashed: Vec<ObjectId> = text
        .lines()
        .filter_map(|l| oid(l.strip_prefix("commit ")?.trim()))
        .collect();
    if squashed.is_empty() {
        return Ok(());
    }
    let gate = Gate::load(&ctx)?.with_cache(ctx.state.gate_cache());
    // The squash brings its commits together: an approval of the range's tip covers them.
    let violations = gate.check_together(&refname, Some(head), &squashed)?;
    if violations.is_empty() {
        return Ok(());
    }
    refuse(
        &refname,
        &violations,
        "undo the squash with 'git reset --merge'",
    )
}

fn pre_push() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[]).map_err(unreadable_config)?;
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
    let gate = Gate::load(&ctx)?.with_cache(ctx.state.gate_cache());
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
        super::session::journal::replay(&ctx);
        prune::prune_expired(&ctx, Timestamp::now())
    })();
    if let Err(err) = result {
        output::warning(&format!(
            "git-codex could not prune expired sessions: {err:#}"
        ));
    }
    Ok(())
}

/// The gate where pushes arrive. It trusts only the server: the repository's own config
/// file (never the pusher's environment or user file, which a push over a local path
/// carries), and the refs the server holds plus the push.
fn pre_receive() -> anyhow::Result<()> {
    let git = Git::from_env();
    let cwd = current_dir()?;
    let common = git.run(
        &cwd,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let state = StateDir::new(Utf8Path::new(&common));
    let config = Settings::load_server(&state.config_file())
        .map_err(unreadable_config)?
        .config();
    let updates: Vec<RefUpdate> = stdin_text()?
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
            Some(RefUpdate {
                name: name.to_string(),
                old: oid(old),
                new: oid(new),
            })
        })
        .collect();
    let updates = server::through_symrefs(&git, &cwd, updates)?;
    let refs = ServerRefs::load(&git, &cwd, &config.branch_prefix, &updates)?;
    let history = CliHistory {
        git: &git,
        cwd: &cwd,
        common_dir: Utf8Path::new(&common),
    };
    let review = &config.review;
    let gate = Gate::new(
        &history,
        &git,
        &cwd,
        review.require_approval,
        &review.protected,
        refs.sessions(),
        Signers::from_config(review, &cwd),
    );
    let landed = gate.protected_tips(server::branch_tips(&git, &cwd)?);
    let gate = gate.with_landed(landed).with_cache(state.gate_cache());
    let lands = updates
        .iter()
        .find(|u| u.new.is_some() && gate.protects(&u.name))
        .filter(|_| review.require_approval)
        .map(|u| u.name.as_str());
    if let Some(why) = server::ref_change_refused(&history, &git, &cwd, &refs, &updates, lands)? {
        output::error(&format!("git-codex: refusing the push: {why}"));
        output::hint(
            "push deletions and forced updates of session branches and refs/codex/* on their own, not with a protected branch",
        );
        return Err(UserError::refused("the review gate refused the push").into());
    }
    check_all(
        &gate,
        updates
            .iter()
            .filter_map(|u| Some((u.name.as_str(), u.old, u.new?))),
        "nothing was accepted; push the approval (refs/codex/approvals/<id>) with the branch",
    )
}

/// A hook that cannot read the configuration fails closed, and says so.
fn unreadable_config(err: anyhow::Error) -> anyhow::Error {
    let hint = "until its configuration can be read, the review gate refuses every branch update here: fix it, then check with 'git codex config validate'";
    match err.downcast::<UserError>() {
        Ok(user) => {
            let mut user = UserError {
                message: format!(
                    "the review gate cannot load its configuration: {}",
                    user.message
                ),
                ..user
            };
            user.hints.push(hint.to_string());
            user.into()
        }
        Err(err) => UserError::runtime(format!(
            "the review gate cannot load its configuration: {err:#}"
        ))
        .hint(hint)
        .into(),
    }
}
