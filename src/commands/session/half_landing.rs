//! A landing of `session merge` killed halfway in the checkout of its target: git had written
//! some of the landed files but not moved the branch. The record says which landing was begun
//! (`landing`), so the next merge proves path by path what is the landing's
//! ([`crate::git::half_landed`]), puts it back and lands whole. The person's own changes there
//! (an edit of a half-landed file, an untracked file, a deletion) are committed aside at
//! `refs/codex/kept/<id>` first and written back byte for byte once the session has landed:
//! nothing of theirs is overwritten, lost or committed as the session's, and nothing of the
//! session's is committed as theirs. Shared by `session merge` and `doctor`.

use camino::Utf8Path;
use gix::ObjectId;

use crate::context::Ctx;
use crate::error::UserError;
use crate::git::half_landed::{LandingTree, RawPath, Sorted, shown};
use crate::git::land::Strategy;
use crate::output::{self, escape};
use crate::state::record::Kept;
use crate::state::{SessionRecord, id};

/// Where the person's changes are kept while a killed landing of session `id` is finished.
pub fn kept_ref(id: &str) -> String {
    format!("refs/codex/kept/{id}")
}

/// The trees the landing `record` says was begun on `target_ref` could have been writing in
/// `wt`: none when the record names no such landing, or the branch was rewritten since.
fn landing_trees(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
    target_ref: &str,
) -> anyhow::Result<Vec<LandingTree>> {
    let Some(begun) = record.landing.as_ref().filter(|l| l.target == target_ref) else {
        return Ok(Vec::new());
    };
    let Some(strategy) = Strategy::parse(&begun.strategy) else {
        return Ok(Vec::new());
    };
    let Ok(head) = ctx.git.run(wt, &["rev-parse", "HEAD"]) else {
        return Ok(Vec::new());
    };
    let moved = head != begun.old;
    // Committed on since (a commit of some paths of theirs): what is left of the landing is
    // what it makes on the branch as it is now. A branch rewritten since voids the note.
    if moved
        && ctx
            .git
            .run(wt, &["merge-base", "--is-ancestor", &begun.old, &head])
            .is_err()
    {
        return Ok(Vec::new());
    }
    let (old, tip) = (head.as_str(), begun.tip.as_str());
    let mut trees = Vec::new();
    if !moved && matches!(strategy, Strategy::Ff | Strategy::Rebase) {
        trees.extend(ctx.git.landing_tree(wt, old, tip, true)?);
    }
    // A rebase's tree is the tip's when the target did not move, else the merge's.
    if strategy != Strategy::Ff {
        trees.extend(ctx.git.landing_tree(wt, old, tip, false)?);
    }
    Ok(trees)
}

/// What a landing of `record`'s session on `target_ref`, begun in its checkout `wt` and killed
/// halfway, left there: `wt`'s changes sorted against the tree it was writing. `None` when the
/// record names no such landing or nothing is changed.
pub fn sorted(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
    target_ref: &str,
) -> anyhow::Result<Option<Sorted>> {
    let trees = landing_trees(ctx, wt, record, target_ref)?;
    if trees.is_empty() {
        return Ok(None);
    }
    let changed = ctx.git.changed_paths(wt)?;
    if changed.is_empty() {
        return Ok(None);
    }
    let mut best: Option<Sorted> = None;
    for tree in &trees {
        let started = record
            .landing
            .as_ref()
            .and_then(|l| l.started)
            .and_then(|at| u64::try_from(at.as_millisecond()).ok())
            .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
        let sorted = ctx.git.sort_half_landed(wt, tree, &changed, started)?;
        if best
            .as_ref()
            .is_none_or(|b| sorted.half.paths() > b.half.paths())
        {
            best = Some(sorted);
        }
    }
    Ok(best.filter(|b| b.half.paths() + b.others.len() > 0))
}

/// Text as a person would type it to a shell: bare when plain, else in single quotes; a name
/// holding what a terminal must not get raw is shown quoted as git quotes it.
pub fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=,:@%".contains(c);
    match escape::quote(text) {
        std::borrow::Cow::Borrowed(t) if !t.is_empty() && t.chars().all(plain) => t.to_string(),
        std::borrow::Cow::Borrowed(t) => format!("'{}'", t.replace('\'', "'\\''")),
        quoted => quoted.into_owned(),
    }
}

/// Up to ten of `paths`, then how many more.
fn some_of(paths: &[RawPath]) -> String {
    let words: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| shell_word(&shown(p)))
        .collect();
    let more = paths.len().saturating_sub(words.len());
    if more > 0 {
        format!("{} and {more} more", words.join(", "))
    } else {
        words.join(", ")
    }
}

fn branch(target_ref: &str) -> String {
    escape::quote(target_ref.trim_start_matches("refs/heads/")).into_owned()
}

/// Before a landing of `record`'s session on `target_ref` in its checkout `wt`: finishes what
/// an earlier one, killed there, left. Returns what of the person's was kept aside, to be
/// written back once the session has landed (or the landing failed).
pub fn prepare(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
    target_ref: &str,
) -> anyhow::Result<Option<Kept>> {
    refuse_others_there(ctx, wt, record, target_ref)?;
    let record = &bring_back_kept(ctx, wt, record)?;
    let Some(found) = sorted(ctx, wt, record, target_ref)? else {
        return Ok(None);
    };
    let mut kept = None;
    if !found.others.is_empty() {
        if let Some(dir) = ctx.git.any_dir(wt, &found.others) {
            return Err(UserError::refused(format!(
                "{wt} holds {} file(s) of a landing of session '{}' on {} killed halfway, and {} is a directory of yours where the landing has a file",
                found.half.paths(),
                record.id,
                branch(target_ref),
                escape::quote(&dir)
            ))
            .hint("move that directory out of the worktree, then run the merge again; it lands the session whole and keeps your other changes as they are")
            .into());
        }
        let (commit, staged) = ctx.git.keep_paths(
            wt,
            &ctx.state.scratch_dir(&record.id),
            &found.others,
            &kept_ref(&record.id),
            &format!(
                "git-codex: changes of yours kept aside while a killed landing of session '{}' is finished",
                record.id
            ),
        )?;
        let keep = Kept::new(commit, &found.others, &staged);
        let mut noted = ctx.state.record(&id::parse(&record.id)?)?;
        if let Some(landing) = noted.landing.as_mut() {
            landing.kept = Some(keep.clone());
        }
        ctx.state.write_record(&noted)?;
        output::note(&format!(
            "{wt}: kept {} changed path(s) of yours aside ({}) while the killed landing is finished: {}",
            found.others.len(),
            kept_ref(&record.id),
            some_of(&found.others)
        ));
        ctx.git.put_back(wt, &found.others)?;
        kept = Some(keep);
    }
    let half = &found.half;
    if let Err(err) = ctx.git.undo_half_landed(wt, half) {
        // The git killed with the landing may still have been dying (and so counted as its
        // lock's holder) when the locks were judged: once more, then again.
        if super::stale_locks::clear_main(&ctx.paths)? == 0 {
            return Err(err);
        }
        ctx.git.undo_half_landed(wt, half)?;
    }
    if half.paths() > 0 {
        output::note(&format!(
            "{wt} held {} file(s) of an earlier landing of this session killed halfway (the branch had not moved): put back as the branch has them",
            half.paths()
        ));
    }
    Ok(kept)
}

/// Writes the person's kept paths back as they were, then forgets them (the ref goes once
/// the record no longer names it).
pub fn write_back(ctx: &Ctx, wt: &Utf8Path, kept: &Kept) -> anyhow::Result<()> {
    let paths = kept.paths().unwrap_or_default();
    ctx.git.restore_kept(wt, &kept.commit, &paths)?;
    ctx.git
        .restore_staged(wt, &kept.commit, &kept.staged().unwrap_or_default())?;
    output::note(&format!(
        "{wt}: wrote back {} changed path(s) of yours as they were ('git diff' shows them against the branch): {}",
        paths.len(),
        some_of(&paths)
    ));
    let short = ctx.git.short_of(wt, "HEAD", &paths)?;
    if !short.is_empty() {
        output::warning(&format!(
            "{} hold(s) only the start of what the branch has there now: git was likely killed while writing it; if you did not cut it yourself, 'git checkout -- PATH' takes the branch's",
            some_of(&short)
        ));
    }
    Ok(())
}

/// Drops the kept ref of session `id` when it still holds `commit` (what was just written
/// back): anything else there is not proven written back, and stays.
pub fn drop_kept_ref(ctx: &Ctx, id: &str, commit: &str) -> anyhow::Result<()> {
    let name = kept_ref(id);
    if ctx
        .reader
        .ref_target(&name)?
        .is_some_and(|at| ObjectId::from_hex(commit.as_bytes()).is_ok_and(|c| c == at))
    {
        ctx.git
            .run(&ctx.paths.main_root, &["update-ref", "-d", &name, commit])?;
    }
    Ok(())
}

/// A merge killed while the person's changes were kept aside: each kept path that holds what
/// HEAD or the landing holds there (put back, landed, or being written by the killed git) is
/// written back as it was, with what was staged. One that holds something else again is the
/// person's newer work and stays as it is (their earlier version stays in the kept ref).
/// Returns the record as it is now.
pub fn bring_back_kept(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
) -> anyhow::Result<SessionRecord> {
    let Some(begun) = record.landing.as_ref() else {
        return Ok(record.clone());
    };
    let Some(kept) = begun.kept.clone() else {
        return Ok(record.clone());
    };
    let (Some(paths), Some(staged)) = (kept.paths(), kept.staged()) else {
        return Err(UserError::runtime(format!(
            "the record of session '{}' names kept paths that are not hex",
            record.id
        ))
        .hint(format!(
            "your changes are in {}: 'git show --stat {}' lists them",
            kept_ref(&record.id),
            kept_ref(&record.id)
        ))
        .into());
    };
    let as_kept = ctx.git.holds_as(wt, &kept.commit, &paths, true)?;
    let mut replaceable = ctx.git.holds_as(wt, "HEAD", &paths, false)?;
    let trees = ctx
        .git
        .landing_tree(wt, &begun.old, &begun.tip, begun.strategy == "ff")?;
    for tree in trees
        .iter()
        .map(|t| t.tree.as_str())
        .chain([begun.tip.as_str()])
    {
        let landed = ctx.git.holds_as(wt, tree, &paths, false)?;
        let short = ctx.git.short_of(wt, tree, &paths)?;
        for (n, path) in paths.iter().enumerate() {
            replaceable[n] |= landed[n] || short.contains(path);
        }
    }
    let mut back = Vec::new();
    let mut newer = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        if as_kept[n] {
            continue;
        }
        if replaceable[n] {
            back.push(path.clone());
        } else {
            newer.push(path.clone());
        }
    }
    ctx.git.restore_kept(wt, &kept.commit, &back)?;
    let staged: Vec<RawPath> = staged.into_iter().filter(|p| !newer.contains(p)).collect();
    ctx.git.restore_staged(wt, &kept.commit, &staged)?;
    if !back.is_empty() {
        output::note(&format!(
            "{wt}: wrote back {} changed path(s) of yours that a killed merge had kept aside: {}",
            back.len(),
            some_of(&back)
        ));
    }
    if !newer.is_empty() {
        output::note(&format!(
            "{wt}: {} changed again since a killed merge kept your earlier version aside: kept as it is now",
            some_of(&newer),
        ));
    }
    let mut now = ctx.state.record(&id::parse(&record.id)?)?;
    if let Some(landing) = now.landing.as_mut() {
        landing.kept = None;
    }
    ctx.state.write_record(&now)?;
    if newer.is_empty() {
        drop_kept_ref(ctx, &record.id, &kept.commit)?;
    }
    Ok(now)
}

/// Another session's landing killed halfway in the same checkout: finished first, by its
/// own merge.
fn refuse_others_there(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
    target_ref: &str,
) -> anyhow::Result<()> {
    let (records, _) = ctx.state.records()?;
    for other in records.iter().filter(|r| r.id != record.id) {
        if let Some(what) = left_there(ctx, wt, other, target_ref, true)? {
            return Err(UserError::refused(what)
                .hint(format!(
                    "finish it first: 'git codex session merge {} --into {}'",
                    other.id,
                    shell_word(&branch(target_ref))
                ))
                .into());
        }
    }
    Ok(())
}

/// A landing of this session begun on another branch and killed halfway there: finished first.
pub fn refuse_elsewhere(ctx: &Ctx, record: &SessionRecord, target_ref: &str) -> anyhow::Result<()> {
    let Some(begun) = record.landing.as_ref().filter(|l| l.target != target_ref) else {
        return Ok(());
    };
    let Some(wt) = ctx
        .git
        .worktree_with_branch(&ctx.paths.main_root, &begun.target)?
    else {
        return Ok(());
    };
    if let Some(what) = left_there(ctx, &wt, record, &begun.target, false)? {
        return Err(UserError::refused(what)
            .hint(format!(
                "finish it first: 'git codex session merge {} --into {}'",
                record.id,
                shell_word(&branch(&begun.target))
            ))
            .into());
    }
    Ok(())
}

/// What `record`'s landing on `target_ref`, killed halfway, left in `wt`, when anything.
/// With `proven_only`, only when a file of the landing is there (another session's note of a
/// landing begun, with nothing of it left, does not stop this one).
fn left_there(
    ctx: &Ctx,
    wt: &Utf8Path,
    record: &SessionRecord,
    target_ref: &str,
    proven_only: bool,
) -> anyhow::Result<Option<String>> {
    let Some(begun) = record.landing.as_ref().filter(|l| l.target == target_ref) else {
        return Ok(None);
    };
    if begun.kept.is_some() {
        return Ok(Some(format!(
            "{wt}: changes of yours are kept aside ({}) while a killed landing of session '{}' on {} is finished",
            kept_ref(&record.id),
            record.id,
            branch(target_ref)
        )));
    }
    Ok(sorted(ctx, wt, record, target_ref)?
        .filter(|s| s.half.paths() > 0 || !proven_only)
        .map(|s| {
            format!(
                "{wt} holds {} file(s) of a landing of session '{}' on {} killed halfway (the branch has not moved), and {} other changed path(s)",
                s.half.paths(),
                record.id,
                branch(target_ref),
                s.others.len()
            )
        }))
}

/// For `doctor`: what a killed landing of `record`'s session left in its target's checkout,
/// and the one command that finishes it.
pub fn describe(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<Option<(String, String)>> {
    let Some(begun) = record.landing.as_ref() else {
        return Ok(None);
    };
    let target = &begun.target;
    let Some(wt) = ctx.git.worktree_with_branch(&ctx.paths.main_root, target)? else {
        return Ok(None);
    };
    let again = format!(
        "run 'git codex session merge {} --into {}'",
        record.id,
        shell_word(&branch(target))
    );
    if begun.kept.is_some() {
        let what = left_there(ctx, &wt, record, target, false)?.unwrap_or_default();
        return Ok(Some((
            what,
            format!("{again}: it lands the session and writes your changes back as they were"),
        )));
    }
    let Some(found) = sorted(ctx, &wt, record, target)? else {
        return Ok(None);
    };
    let mut what = if found.half.paths() > 0 {
        format!(
            "{wt} holds {} file(s) of a landing of session '{}' on {} killed halfway (the branch has not moved)",
            found.half.paths(),
            record.id,
            branch(target)
        )
    } else {
        format!(
            "a landing of session '{}' on {} in {wt} was killed before it moved the branch",
            record.id,
            branch(target)
        )
    };
    let mut how =
        format!("{again}: it puts back what the landing wrote and lands the session whole");
    if !found.others.is_empty() {
        what.push_str(&format!(
            ", and {} changed path(s) there are not the landing's: {} (committing now could commit the session's files as yours)",
            found.others.len(),
            some_of(&found.others)
        ));
        how.push_str(", keeping those as they are");
        // A directory of the person's where the landing has a file is not kept aside.
        if let Some(dir) = ctx.git.any_dir(&wt, &found.others) {
            how = format!(
                "move {} (a directory of yours where the landing has a file) out of the worktree, then {again}",
                shell_word(&dir)
            );
        }
    }
    // What stands where the landing adds a path (once its own files are put back) stops it.
    let trees = landing_trees(ctx, &wt, record, target)?;
    if let (Some(tree), Ok(head)) = (trees.last(), ctx.git.run(&wt, &["rev-parse", "HEAD"])) {
        let mut blocked = ctx.git.ignored_in_the_way(&wt, &head, &tree.tree)?;
        let half: std::collections::HashSet<RawPath> = found.half.all().into_iter().collect();
        blocked.retain(|p| !half.contains(p) && !found.others.contains(p));
        if let Some(first) = blocked.first() {
            how = format!(
                "move {} (yours, where the landing adds a path) out of the worktree, then {again}",
                shell_word(&shown(first))
            );
        }
    }
    Ok(Some((what, how)))
}
