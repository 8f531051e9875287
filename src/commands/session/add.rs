//! `git codex session add <id>`: branch, worktree, copied files, setup, port, metadata, record.
//! Everything happens under the lock, and any failure rolls back completely.

use std::process::{Command, Stdio};

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use jiff::Timestamp;
use serde_json::json;
use toml::Value;

use super::prune;
use super::status::is_expired;
use crate::cli::SessionAddArgs;
use crate::config::schema;
use crate::context::Ctx;
use crate::error::UserError;
use crate::output;
use crate::state::{BrokenRecord, SessionId, SessionRecord, atomic_write, id, record};

pub fn run(args: SessionAddArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let mut flags = Vec::new();
    if let Some(ttl) = &args.ttl {
        flags.push(flag("session.ttl", "--ttl", ttl)?);
    }
    if let Some(mode) = &args.sandbox {
        flags.push(flag("sandbox.mode", "--sandbox", mode)?);
    }
    let ctx = Ctx::open(&flags)?;
    let base = args.base.as_deref().unwrap_or("HEAD");
    let base_commit = ctx.reader.resolve_commit(base)?;
    ctx.ensure_init()?;

    let _lock = ctx.state.lock()?;
    let now = Timestamp::now();
    prune::prune_expired(&ctx, now)?;
    let (records, broken) = ctx.state.records()?;
    check_policy(&ctx, &id, &records, &broken, now)?;
    let branch = format!("{}{}", ctx.config.branch_prefix, id);
    let full_branch = format!("refs/heads/{branch}");
    if ctx.reader.ref_target(&full_branch)?.is_some() {
        return Err(UserError::refused(format!("branch '{branch}' already exists"))
            .hint(format!("if it is a removed session's, bring it back with 'git codex session restore {id}'"))
            .hint(format!("otherwise pick another id, or delete the branch with 'git branch -D {branch}'"))
            .into());
    }
    let record = new_record(&ctx, &id, branch, base, base_commit, &records, now)?;
    let plan = Plan {
        start: record.base_commit.clone(),
        record,
        full_branch,
        new_branch: true,
        snapshot: None,
    };
    create(&ctx, &plan)?;
    output::data(plan.record.worktree.as_str());
    output::note(&format!(
        "Created session '{id}' on branch {} (port {})",
        plan.record.branch, plan.record.port
    ));
    Ok(())
}

/// A command-line flag as a config value of the command-line layer.
pub fn flag(key: &'static str, name: &str, text: &str) -> anyhow::Result<(&'static str, Value)> {
    let def = schema::find(key).with_context(|| format!("internal: unknown key {key}"))?;
    let value = def
        .parse_text(text)
        .map_err(|why| UserError::bad_input(format!("{name}: {why}")))?;
    Ok((def.key, value))
}

/// What `create` makes: the record to write, and how to get the worktree.
pub struct Plan {
    pub record: SessionRecord,
    pub full_branch: String,
    /// Create the branch at `start` (`add`, or `restore` of a deleted branch), or check out
    /// the existing one.
    pub new_branch: bool,
    pub start: String,
    /// A snapshot whose files are put back into the new worktree (`restore`).
    pub snapshot: Option<String>,
}

/// Refuses (exit 3) an id that is taken, ignoring case, or a session over the limit.
pub fn check_policy(
    ctx: &Ctx,
    id: &SessionId,
    records: &[SessionRecord],
    broken: &[BrokenRecord],
    now: Timestamp,
) -> anyhow::Result<()> {
    let mut taken = records
        .iter()
        .map(|r| &r.id)
        .chain(broken.iter().map(|b| &b.id));
    if let Some(existing) = taken.find(|e| e.eq_ignore_ascii_case(id.as_str())) {
        let message = if existing == id.as_str() {
            format!("session '{id}' already exists")
        } else {
            format!(
                "session '{id}' clashes with existing session '{existing}' (ids are unique ignoring case)"
            )
        };
        return Err(UserError::refused(message)
            .hint(format!(
                "pick another id, or run 'git codex session remove {existing}'"
            ))
            .into());
    }
    let live: Vec<&str> = records
        .iter()
        .filter(|r| !is_expired(ctx, r, now))
        .map(|r| r.id.as_str())
        .collect();
    let limit = ctx.config.max_parallel as usize;
    if live.len() >= limit {
        return Err(UserError::refused(format!(
            "the limit of {limit} live sessions is reached: {}",
            live.join(", ")
        ))
        .hint(
            "remove a session with 'git codex session remove <id>', or raise session.max_parallel",
        )
        .into());
    }
    Ok(())
}

/// A fresh record for a new or restored session: a free path and port, a fresh expiry.
pub fn new_record(
    ctx: &Ctx,
    id: &SessionId,
    branch: String,
    base: &str,
    base_commit: gix::ObjectId,
    records: &[SessionRecord],
    now: Timestamp,
) -> anyhow::Result<SessionRecord> {
    let worktree = ctx.worktree_base().join(format!("wt-{id}"));
    if worktree.exists() || worktree.is_symlink() {
        return Err(UserError::runtime(format!("the worktree path {worktree} already exists"))
            .hint("move it aside, or run 'git codex session prune' to snapshot and remove orphans")
            .into());
    }
    Ok(SessionRecord {
        schema: record::SCHEMA,
        id: id.to_string(),
        branch,
        worktree,
        base: base.to_string(),
        base_commit: base_commit.to_string(),
        base_ref: ctx.reader.branch_named(base),
        created: now,
        last_activity: now,
        ttl_seconds: ctx.config.ttl.seconds(),
        sandbox: ctx.config.sandbox_mode.clone(),
        port: free_port(ctx.config.port_range, records)?,
    })
}

/// The lowest port in the range that no session holds. Deliberately not probed with a bind:
/// the agent may not be listening yet, and allocation must not depend on the moment.
fn free_port((low, high): (u16, u16), records: &[SessionRecord]) -> anyhow::Result<u16> {
    (low..=high)
        .find(|port| !records.iter().any(|r| r.port == *port))
        .ok_or_else(|| {
            UserError::refused(format!(
                "no free port left in session.port_range {low}-{high}"
            ))
            .hint("widen session.port_range or remove sessions")
            .into()
        })
}

/// What `create` made so far, undone in reverse on failure.
#[derive(Default)]
struct Undo {
    base_dir: Option<Utf8PathBuf>,
    worktree: bool,
    dirs: Vec<Utf8PathBuf>,
}

impl Undo {
    fn run(&self, ctx: &Ctx, plan: &Plan) {
        let record = &plan.record;
        let _ = ctx.state.delete_record(&record.id);
        for dir in self.dirs.iter().rev() {
            let _ = fs_err::remove_dir_all(dir);
        }
        if self.worktree {
            let paths = &ctx.paths;
            if let Err(err) =
                ctx.git
                    .worktree_remove(&paths.main_root, &paths.common_dir, &record.worktree)
            {
                output::warning(&format!(
                    "rollback: cannot remove {}: {err}",
                    record.worktree
                ));
            }
            if plan.new_branch {
                self.delete_new_branch(ctx, plan);
            }
        }
        if let Some(base) = &self.base_dir {
            // Only removes it if empty: other sessions may live there.
            let _ = fs_err::remove_dir(base);
        }
    }

    fn delete_new_branch(&self, ctx: &Ctx, plan: &Plan) {
        let record = &plan.record;
        match ctx.reader.ref_target(&plan.full_branch) {
            Ok(Some(tip)) if gix::ObjectId::from_hex(plan.start.as_bytes()).ok() == Some(tip) => {
                let doomed = [(plan.full_branch.clone(), plan.start.clone())];
                if let Err(err) = ctx.git.delete_refs(&ctx.paths.main_root, &doomed) {
                    output::warning(&format!(
                        "rollback: cannot delete branch {}: {err}",
                        record.branch
                    ));
                }
            }
            Ok(Some(_)) => output::warning(&format!(
                "rollback: kept branch {} because setup committed to it",
                record.branch
            )),
            _ => {}
        }
    }
}

/// Makes the session: worktree, copied files, snapshot files, metadata, dirs, setup, record.
/// The caller holds the lock. Any failure undoes everything made here.
pub fn create(ctx: &Ctx, plan: &Plan) -> anyhow::Result<()> {
    let mut undo = Undo::default();
    let result = create_steps(ctx, plan, &mut undo);
    if result.is_err() {
        undo.run(ctx, plan);
    }
    result
}

fn create_steps(ctx: &Ctx, plan: &Plan, undo: &mut Undo) -> anyhow::Result<()> {
    let record = &plan.record;
    let base_dir = ctx.worktree_base();
    if !base_dir.exists() {
        fs_err::create_dir_all(&base_dir)?;
        undo.base_dir = Some(base_dir.clone());
    }
    undo.worktree = true;
    let root = &ctx.paths.main_root;
    let added = if plan.new_branch {
        ctx.git
            .worktree_add(root, &record.worktree, &record.branch, &plan.start)
    } else {
        ctx.git
            .worktree_add_existing(root, &record.worktree, &record.branch)
    };
    added.map_err(|err| UserError::runtime(format!("cannot create the worktree: {err}")))?;
    if let Some(snapshot) = &plan.snapshot {
        ctx.git.restore_files(&record.worktree, snapshot)?;
    }
    copy_files(root, &record.worktree, &ctx.config.copy_files, &base_dir)?;
    write_metadata(ctx, record)?;
    for dir in [
        ctx.state.tmp_dir(&record.id),
        ctx.state.logs_dir(&record.id),
    ] {
        if !dir.exists() {
            fs_err::create_dir_all(&dir)?;
            undo.dirs.push(dir);
        }
    }
    run_setup(ctx, record)?;
    ctx.state.write_record(record)
}

/// `<worktree>/.codex-session.json`: the seed's keys for UIs, plus ours.
pub fn write_metadata(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<()> {
    let review_hook = match ctx.settings.get("review.hook") {
        Some((Value::String(s), _)) => s.clone(),
        _ => String::new(),
    };
    let meta = json!({
        "id": record.id,
        "created": record.created,
        "sandbox": record.sandbox,
        "reviewHook": review_hook,
        "isolationPath": record.worktree,
        "branch": record.branch,
        "base": record.base,
        "expiresAt": record.expires_at(None),
        "port": record.port,
    });
    let mut text = serde_json::to_vec_pretty(&meta)?;
    text.push(b'\n');
    atomic_write(&record.worktree.join(".codex-session.json"), &text)
}

/// Copies the `copy_files` globs (relative to the main worktree) into the new worktree,
/// keeping mode bits. Files the checkout already has are left alone.
fn copy_files(
    main_root: &Utf8Path,
    worktree: &Utf8Path,
    patterns: &[String],
    base_dir: &Utf8Path,
) -> anyhow::Result<()> {
    for pattern in patterns {
        if Utf8Path::new(pattern).is_absolute() || pattern.split('/').any(|part| part == "..") {
            return Err(UserError::bad_input(format!(
                "session.copy_files: pattern '{pattern}' must be relative and stay inside the main worktree"
            ))
            .into());
        }
        let full = format!("{}/{pattern}", glob::Pattern::escape(main_root.as_str()));
        let matches = glob::glob(&full).map_err(|err| {
            UserError::bad_input(format!("session.copy_files: bad glob '{pattern}': {err}"))
        })?;
        for found in matches {
            let found = found.with_context(|| format!("cannot read a match of '{pattern}'"))?;
            let Ok(found) = Utf8PathBuf::from_path_buf(found) else {
                continue;
            };
            let Ok(relative) = found.strip_prefix(main_root) else {
                continue;
            };
            if relative.starts_with(".git") || found.starts_with(base_dir) {
                continue;
            }
            copy_entry(&found, &worktree.join(relative))?;
        }
    }
    Ok(())
}

fn copy_entry(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    if to.exists() || to.is_symlink() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let meta = fs_err::symlink_metadata(from)?;
    if meta.is_symlink() {
        let target = fs_err::read_link(from)?;
        std::os::unix::fs::symlink(&target, to)
            .with_context(|| format!("cannot copy symlink {from}"))?;
    } else if meta.is_dir() {
        fs_err::create_dir_all(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            copy_entry(&from.join(name), &to.join(name))?;
        }
    } else {
        // fs::copy keeps the permission bits.
        fs_err::copy(from, to)?;
    }
    Ok(())
}

/// Runs each `setup` command in the worktree, as argv (never through a shell).
fn run_setup(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<()> {
    for words in &ctx.config.setup {
        let Some((program, rest)) = words.split_first() else {
            continue;
        };
        let shown = words.join(" ");
        let status = Command::new(program)
            .args(rest)
            .current_dir(&record.worktree)
            .env("CODEX_SESSION_ID", &record.id)
            .env("CODEX_WORKTREE", record.worktree.as_str())
            .env("CODEX_PORT", record.port.to_string())
            .stdin(Stdio::null())
            // stdout is reserved for the worktree path.
            .stdout(std::io::stderr())
            .status()
            .map_err(|err| {
                UserError::runtime(format!("setup command '{shown}' could not start: {err}"))
                    .hint("fix session.setup; the session was rolled back")
            })?;
        if !status.success() {
            return Err(
                UserError::runtime(format!("setup command '{shown}' failed ({status})"))
                    .hint("fix session.setup or the command; the session was rolled back")
                    .into(),
            );
        }
    }
    Ok(())
}
