//! `git codex session prune`: expired sessions go and orphans are repaired, their work saved
//! first (SPEC §5, §8). `session add` runs the expired part before counting the limit.

mod report;

use report::{report_json, report_text};

use std::collections::HashSet;

use camino::Utf8PathBuf;
use jiff::Timestamp;

use super::remove::{Removed, Target, save_and_remove_worktree, settle};
use super::status::{describe_expiry, expiry, is_expired};
use super::trash;
use crate::cli::SessionPruneArgs;
use crate::context::Ctx;
use crate::error::UserError;
use crate::git::worktrees::{admin_entries, is_locked, owned_admin_dir};
use crate::output;
use crate::parallel;
use crate::state::{SessionId, SessionRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session past its expiry.
    Expired,
    /// A record whose worktree dir is gone.
    MissingWorktree,
    /// A worktree of this repository under the worktree base that no record owns.
    OrphanDir,
    /// Something under the worktree base git-codex cannot prove it made: reported, never
    /// deleted (SPEC §8).
    Unowned,
    /// A trash entry older than `session.trash_retention`.
    Trash,
    /// A git admin entry whose worktree dir is gone (locked ones too).
    StaleAdmin,
    /// A session branch with no record and no worktree: reported, never deleted.
    OrphanBranch,
    /// Expired but left alone (a locked worktree).
    Skipped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Expired => "expired",
            Kind::MissingWorktree => "missing-worktree",
            Kind::OrphanDir => "orphan-dir",
            Kind::Unowned => "unowned",
            Kind::Trash => "trash",
            Kind::StaleAdmin => "stale-admin-entry",
            Kind::OrphanBranch => "orphan-branch",
            Kind::Skipped => "skipped",
        }
    }

    /// Whether pruning changes anything for this finding.
    fn acts(self) -> bool {
        !matches!(self, Kind::OrphanBranch | Kind::Skipped | Kind::Unowned)
    }
}

#[derive(Debug)]
pub struct Finding {
    kind: Kind,
    id: String,
    path: Option<Utf8PathBuf>,
    branch: Option<String>,
    reason: String,
    /// Files `copy_files` put in a session's worktree.
    copied_files: Vec<String>,
}

#[derive(Debug)]
struct Outcome {
    finding: Finding,
    removed: Option<Removed>,
    error: Option<String>,
}

pub fn run(args: SessionPruneArgs) -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    let now = Timestamp::now();
    let outcomes: Vec<Outcome> = if args.dry_run {
        find(&ctx, now, false)?
            .into_iter()
            .map(|finding| Outcome {
                finding,
                removed: None,
                error: None,
            })
            .collect()
    } else {
        let _lock = super::journal::lock(&ctx)?;
        execute(&ctx, find(&ctx, now, false)?)?
    };
    if args.json {
        report_json(&outcomes, args.dry_run)?;
    } else {
        report_text(&outcomes, args.dry_run);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 {
        return Err(UserError::runtime(format!(
            "{failed} item(s) could not be pruned; nothing of theirs was deleted"
        ))
        .hint("fix the cause named above and run 'git codex session prune' again")
        .into());
    }
    Ok(())
}

/// Prunes expired sessions only; the caller holds the lock. Used by `session add` and the
/// post-checkout hook.
pub fn prune_expired(ctx: &Ctx, now: Timestamp) -> anyhow::Result<()> {
    let findings = find(ctx, now, true)?;
    if findings.iter().any(|f| f.kind.acts()) {
        let outcomes = execute(ctx, findings)?;
        report_text(&outcomes, false);
    }
    refresh_stamp(ctx)
}

/// Under the lock: session `record`, whose worktree is gone (removed by hand with `git
/// worktree remove`, as doctor suggests), is pruned as `session prune` would: what is left is
/// saved, its record goes, its branch and ledger stay. `restore` then brings it back.
pub fn prune_missing(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<()> {
    let finding = session_finding(
        Kind::MissingWorktree,
        record,
        format!("its worktree {} is gone", record.worktree),
    );
    let outcomes = execute(ctx, vec![finding])?;
    report_text(&outcomes, false);
    refresh_stamp(ctx)
}

/// The expiry stamp with commits on the branches counted as activity, so that checkouts
/// stop asking until something really may expire.
fn refresh_stamp(ctx: &Ctx) -> anyhow::Result<()> {
    let (records, _) = ctx.state.records()?;
    let mut earliest = None;
    for record in &records {
        let tip = ctx
            .reader
            .ref_target(&format!("refs/heads/{}", record.branch))?;
        if let Some(at) = expiry(ctx, record, tip) {
            earliest = Some(earliest.map_or(at, |e: Timestamp| e.min(at)));
        }
    }
    ctx.state.set_expiry_stamp(earliest)
}

/// What a prune would do now, as (kind, id, reason), for `doctor`.
pub fn preview(ctx: &Ctx, now: Timestamp) -> anyhow::Result<Vec<(&'static str, String, String)>> {
    Ok(find(ctx, now, false)?
        .into_iter()
        .map(|f| (f.kind.as_str(), f.id, f.reason))
        .collect())
}

/// What prune would do, and why. `expired_only` skips the orphan scan.
fn find(ctx: &Ctx, now: Timestamp, expired_only: bool) -> anyhow::Result<Vec<Finding>> {
    let (records, broken) = ctx.state.records()?;
    let mut out = Vec::new();
    for record in &records {
        if !record.worktree.is_dir() {
            if !expired_only {
                out.push(session_finding(
                    Kind::MissingWorktree,
                    record,
                    format!("its worktree {} is gone", record.worktree),
                ));
            }
        } else if is_expired(ctx, record, now) {
            let tip = ctx
                .reader
                .ref_target(&format!("refs/heads/{}", record.branch))?;
            let ago = describe_expiry(expiry(ctx, record, tip), now);
            if is_locked(&record.worktree, &ctx.paths.common_dir) {
                out.push(session_finding(
                    Kind::Skipped,
                    record,
                    format!("expired {ago}, but its worktree is locked"),
                ));
            } else {
                out.push(session_finding(
                    Kind::Expired,
                    record,
                    format!("expired {ago}"),
                ));
            }
        }
    }
    if expired_only {
        return Ok(out);
    }
    let mut owned: HashSet<Utf8PathBuf> = records.iter().map(|r| r.worktree.clone()).collect();
    owned.extend(
        broken
            .iter()
            .map(|b| Target::by_convention(ctx, &b.id).worktree),
    );
    // What an interrupted operation the journal could not finish names is left to it.
    owned.extend(
        ctx.state
            .pending()?
            .into_iter()
            .filter_map(|p| p.intent.ok())
            .map(|i| i.worktree),
    );
    find_orphan_dirs(ctx, &owned, &mut out)?;
    find_old_trash(ctx, now, &mut out)?;
    find_stale_admin(ctx, &records, &mut out)?;
    find_orphan_branches(ctx, &records, &mut out)?;
    Ok(out)
}

fn session_finding(kind: Kind, record: &SessionRecord, reason: String) -> Finding {
    Finding {
        kind,
        id: record.id.clone(),
        path: Some(record.worktree.clone()),
        branch: Some(record.branch.clone()),
        reason,
        copied_files: record.copied_files.clone(),
    }
}

fn find_orphan_dirs(
    ctx: &Ctx,
    owned: &HashSet<Utf8PathBuf>,
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let base = ctx.worktree_base();
    let entries = match fs_err::read_dir(&base) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else {
            continue;
        };
        let kind = entry.file_type()?;
        if owned.contains(&path) || !(kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        let name = path.file_name().unwrap_or_default();
        let (kind, reason) = if kind.is_symlink() {
            let to = fs_err::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            (
                Kind::Unowned,
                format!("a symlink (to {to}) under the worktree base; not followed, never deleted"),
            )
        } else if is_session_name(name) && owned_admin_dir(&path, &ctx.paths.common_dir).is_some() {
            (
                Kind::OrphanDir,
                "a worktree of this repository that no session owns".to_string(),
            )
        } else {
            (
                Kind::Unowned,
                "no session owns it and its .git does not point into this repository's worktrees; left alone (move or delete it yourself)".to_string(),
            )
        };
        out.push(Finding {
            kind,
            id: orphan_id(name),
            path: Some(path.clone()),
            branch: None,
            reason,
            copied_files: Vec::new(),
        });
    }
    Ok(())
}

/// Trash entries older than `session.trash_retention` ("never": none).
fn find_old_trash(ctx: &Ctx, now: Timestamp, out: &mut Vec<Finding>) -> anyhow::Result<()> {
    let Some(keep) = ctx.config.trash_retention.seconds() else {
        return Ok(());
    };
    for entry in trash::entries(&ctx.paths.common_dir)? {
        let Some(removed) = entry.removed() else {
            continue;
        };
        let age = now.as_second() - removed.as_second();
        if age < i64::try_from(keep).unwrap_or(i64::MAX) {
            continue;
        }
        let id = entry.meta.as_ref().map_or_else(
            || entry.dir.file_name().unwrap_or_default().to_string(),
            |m| m.id.clone(),
        );
        out.push(Finding {
            kind: Kind::Trash,
            id,
            reason: format!(
                "moved to the trash {}, past session.trash_retention",
                describe_expiry(Some(removed), now)
            ),
            path: Some(entry.dir),
            branch: None,
            copied_files: Vec::new(),
        });
    }
    Ok(())
}

/// Whether `name` is one git-codex gives a worktree: `wt-<id>`. A linked worktree a person
/// made under the base by another name is theirs.
fn is_session_name(name: &str) -> bool {
    name.strip_prefix("wt-")
        .is_some_and(|id| SessionId::parse(id).is_ok())
}

/// The id an orphan dir's snapshot is filed under: its name without `wt-`, made valid.
fn orphan_id(name: &str) -> String {
    let stem = name.strip_prefix("wt-").unwrap_or(name);
    if SessionId::parse(stem).is_ok() {
        return stem.to_string();
    }
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    format!("orphan-{}", cleaned.trim_matches('-'))
}

fn find_stale_admin(
    ctx: &Ctx,
    records: &[SessionRecord],
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let base = ctx.worktree_base();
    for entry in admin_entries(&ctx.paths.common_dir)? {
        let Some(worktree) = entry.worktree else {
            continue;
        };
        // Outside our base a missing dir may be a worktree on removable media: git's business.
        let ours = worktree.starts_with(&base);
        if worktree.exists() || !ours || records.iter().any(|r| r.worktree == worktree) {
            continue;
        }
        let locked = if entry.locked { " (locked)" } else { "" };
        out.push(Finding {
            kind: Kind::StaleAdmin,
            id: entry.admin_dir.file_name().unwrap_or_default().to_string(),
            path: Some(entry.admin_dir.clone()),
            branch: None,
            reason: format!("git still lists worktree {worktree}{locked}, but its dir is gone"),
            copied_files: Vec::new(),
        });
    }
    Ok(())
}

fn find_orphan_branches(
    ctx: &Ctx,
    records: &[SessionRecord],
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let prefix = format!("refs/heads/{}", ctx.config.branch_prefix);
    let all_tips = ctx.reader.branch_tips_except(&[])?;
    for (name, tip) in ctx.reader.branches_with_prefix(&prefix)? {
        let short = name.trim_start_matches("refs/heads/").to_string();
        let id = short
            .trim_start_matches(&ctx.config.branch_prefix)
            .to_string();
        let has_worktree = ctx.worktree_base().join(format!("wt-{id}")).exists();
        if records.iter().any(|r| r.branch == short) || has_worktree {
            continue;
        }
        let others: Vec<_> = all_tips.iter().copied().filter(|t| *t != tip).collect();
        let unmerged = ctx.reader.count_exclusive(tip, &others)?;
        out.push(Finding {
            kind: Kind::OrphanBranch,
            reason: format!(
                "no session and no worktree; {unmerged} commit(s) on no other branch; kept (restore it with 'git codex session restore {id}'{})",
                if unmerged > 0 {
                    // A squash merge lands a copy: the originals stay on this branch alone.
                    format!(
                        ", or, when a squash merge landed its work, delete it and those commits with 'git branch -D {short}'"
                    )
                } else {
                    format!(", or delete it with 'git branch -d {short}'")
                }
            ),
            id,
            path: None,
            branch: Some(short),
            copied_files: Vec::new(),
        });
    }
    Ok(())
}

/// Carries the findings out. Sessions' work is saved and their worktrees removed in parallel;
/// branches and records are settled one by one, and refs deleted in one transaction at the
/// end. One failure does not stop the others.
fn execute(ctx: &Ctx, findings: Vec<Finding>) -> anyhow::Result<Vec<Outcome>> {
    let mut jobs = Vec::new();
    for (index, finding) in findings.iter().enumerate() {
        if matches!(finding.kind, Kind::Expired | Kind::MissingWorktree) {
            let target = session_target(finding);
            super::remove::intend_removal(ctx, &target, false)?;
            let tip = match super::remove::prepare_removal(ctx, &target) {
                Ok(tip) => tip,
                Err(err) => {
                    let _ = ctx.state.drop_intent(&target.id);
                    return Err(err);
                }
            };
            let scratch = ctx.state.scratch_dir(&target.id);
            jobs.push((index, target, tip, scratch));
        }
    }
    type Saved = anyhow::Result<(Option<String>, Option<Utf8PathBuf>)>;
    let mut saved: Vec<Option<Saved>> = findings.iter().map(|_| None).collect();
    let (git, paths, base) = (&ctx.git, &ctx.paths, &ctx.worktree_base());
    let results = parallel::map(&jobs, |(_, target, tip, scratch)| {
        save_and_remove_worktree(git, paths, base, target, *tip, scratch, true)
    });
    for ((index, ..), result) in jobs.iter().zip(results) {
        saved[*index] = Some(result);
    }
    let mut doomed = Vec::new();
    let mut outcomes = Vec::new();
    for (finding, saved) in findings.into_iter().zip(saved) {
        let result = match (finding.kind, saved) {
            (_, Some(Ok((snapshot, trash)))) => {
                settle(ctx, &session_target(&finding), false, &mut doomed, snapshot).map(
                    |mut removed| {
                        removed.trash = trash;
                        Some(removed)
                    },
                )
            }
            (_, Some(Err(err))) => {
                let _ = ctx.state.drop_intent(&finding.id);
                Err(err)
            }
            (Kind::OrphanDir, None) => remove_orphan_dir(ctx, &finding).map(Some),
            (Kind::Trash, None) => match &finding.path {
                Some(entry) => trash::delete_entry(entry).map(|()| None),
                None => Ok(None),
            },
            (Kind::StaleAdmin, None) => match &finding.path {
                Some(admin) => super::modules::drop_stale_admin(
                    &ctx.paths.common_dir,
                    admin,
                    &orphan_id(&finding.id),
                )
                .map(|()| None),
                None => Ok(None),
            },
            _ => Ok(None),
        };
        outcomes.push(match result {
            Ok(removed) => Outcome {
                finding,
                removed,
                error: None,
            },
            Err(err) => Outcome {
                finding,
                removed: None,
                error: Some(format!("{err:#}")),
            },
        });
    }
    if let Err(err) = ctx.git.delete_refs(&ctx.paths.main_root, &doomed) {
        output::warning(&format!("merged branches were kept: {err:#}"));
    }
    for outcome in outcomes.iter().filter(|o| o.removed.is_some()) {
        ctx.state.drop_intent(&outcome.finding.id)?;
    }
    Ok(outcomes)
}

fn session_target(finding: &Finding) -> Target {
    Target {
        id: finding.id.clone(),
        branch: finding.branch.clone().unwrap_or_default(),
        worktree: finding.path.clone().unwrap_or_default(),
        copied_files: finding.copied_files.clone(),
    }
}

/// Snapshots an orphan worktree of this repository, then moves it whole to the trash. It
/// was proven ours when found, and is proven again before anything is touched.
fn remove_orphan_dir(ctx: &Ctx, finding: &Finding) -> anyhow::Result<Removed> {
    let target = session_target(finding);
    let scratch = ctx.state.scratch_dir(&finding.id);
    let base = ctx.worktree_base();
    let (snapshot, trash) =
        save_and_remove_worktree(&ctx.git, &ctx.paths, &base, &target, None, &scratch, false)?;
    super::remove::remove_dir_if_exists(&scratch)?;
    Ok(Removed {
        snapshot,
        trash,
        ..Removed::default()
    })
}
