//! `git codex verify [<old>..<new>] [--ref REF]`: the gate rule for CI and server hooks.

use gix::ObjectId;
use serde_json::json;

use crate::cli::VerifyArgs;
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::{Gate, Violation};
use crate::output::{self, escape};

/// One landing to check: a ref (if named) moving from `old` to `new`.
struct Landing {
    refname: Option<String>,
    label: String,
    old: Option<ObjectId>,
    new: ObjectId,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    let refname = args.refname.as_deref().map(|r| full_ref(&ctx, r));
    let landings = landings(&ctx, args.range.as_deref(), refname)?;
    let gate = Gate::load(&ctx)?;
    let mut results = Vec::new();
    for landing in &landings {
        let violations = match &landing.refname {
            Some(name) => gate.check(name, landing.old, landing.new)?,
            None => gate.check_landing(landing.old, landing.new)?,
        };
        results.push((landing, violations));
    }
    let count: usize = results.iter().map(|(_, v)| v.len()).sum();
    if args.json {
        let items: Vec<_> = results
            .iter()
            .map(|(l, v)| json!({"ref": l.refname, "range": l.label, "ok": v.is_empty(), "violations": v}))
            .collect();
        output::json(&json!({"schema": 1, "ok": count == 0, "checks": items}))?;
    } else {
        for (landing, violations) in &results {
            report(landing, violations);
        }
    }
    if count > 0 {
        return Err(UserError::refused(format!("{count} unapproved session commit(s) would land"))
            .hint("approve the session's tip with 'git codex session review <id> --approve', or leave its commits out")
            .into());
    }
    Ok(())
}

fn report(landing: &Landing, violations: &[Violation]) {
    if violations.is_empty() {
        output::note(&format!(
            "ok: {} lands no unapproved session commit",
            escape::quote(&landing.label)
        ));
    }
    for v in violations {
        output::error(&format!(
            "{}: commit {} of session '{}' is not approved: {}",
            escape::quote(&landing.label),
            &v.commit[..v.commit.len().min(12)],
            escape::quote(&v.session),
            escape::line(&v.reason())
        ));
    }
}

fn full_ref(ctx: &Ctx, name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_string()
    } else {
        ctx.reader
            .branch_named(name)
            .unwrap_or_else(|| format!("refs/heads/{name}"))
    }
}

/// The checks a command line asks for: a range, one revision's history, or every protected
/// branch's history.
fn landings(
    ctx: &Ctx,
    range: Option<&str>,
    refname: Option<String>,
) -> anyhow::Result<Vec<Landing>> {
    if let Some(range) = range {
        let (old, new) = match range.split_once("..") {
            Some((old, new)) => (
                resolve_old(ctx, old)?,
                resolve(ctx, if new.is_empty() { "HEAD" } else { new })?,
            ),
            None => (None, resolve(ctx, range)?),
        };
        return Ok(vec![Landing {
            refname,
            label: range.to_string(),
            old,
            new,
        }]);
    }
    let names = match refname {
        Some(name) => vec![name],
        None => protected_branches(ctx)?,
    };
    names
        .into_iter()
        .map(|name| {
            let new = ctx
                .reader
                .ref_target(&name)?
                .ok_or_else(|| UserError::bad_input(format!("ref '{name}' does not exist")))?;
            Ok(Landing {
                label: name.clone(),
                refname: Some(name),
                old: None,
                new,
            })
        })
        .collect()
}

fn resolve(ctx: &Ctx, rev: &str) -> anyhow::Result<ObjectId> {
    ctx.reader.resolve_commit(rev).map_err(|_| {
        UserError::bad_input(format!("bad revision '{rev}'"))
            .hint("give a range like origin/main..HEAD")
            .into()
    })
}

/// The old side of a range; all zeros (as hooks pass for a new ref) means none.
fn resolve_old(ctx: &Ctx, rev: &str) -> anyhow::Result<Option<ObjectId>> {
    if rev.is_empty() || rev.chars().all(|c| c == '0') {
        return Ok(None);
    }
    resolve(ctx, rev).map(Some)
}

fn protected_branches(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    let gate = Gate::load(ctx)?;
    Ok(ctx
        .reader
        .branches_with_prefix("refs/heads/")?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| gate.protects(name))
        .collect())
}
