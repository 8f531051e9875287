//! `git codex session add <id>`: branch, worktree, copied files, setup, port, metadata, record.
//! Everything happens under the lock, and any failure rolls back completely.

use std::io::Write as _;

use anyhow::Context as _;
use camino::Utf8PathBuf;
use jiff::Timestamp;
use toml::Value;

use super::provision::{copy_files, run_setup, write_metadata};
use super::prune;
use super::status::is_expired;
use super::trash;
use crate::cli::SessionAddArgs;
use crate::config::schema;
use crate::context::Ctx;
use crate::error::UserError;
use crate::gate::base_ref;
use crate::git::worktrees::{admin_dir_of, forget_worktree};
use crate::output::{self, escape};
use crate::state::journal::{Intent, Op};
use crate::state::{BrokenRecord, SessionId, SessionRecord, id, record};

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
    ctx.warn_if_gate_off();

    let _lock = super::journal::lock(&ctx)?;
    let now = Timestamp::now();
    prune::prune_expired(&ctx, now)?;
    let (records, broken) = ctx.state.records()?;
    check_policy(&ctx, &id, &records, &broken, now)?;
    crate::gate::record::refuse_reused_id(&ctx, id.as_str())?;
    let branch = format!("{}{}", ctx.config.branch_prefix, id);
    let full_branch = format!("refs/heads/{branch}");
    if ctx.reader.ref_target(&full_branch)?.is_some() {
        return Err(UserError::refused(format!("branch '{branch}' already exists"))
            .hint(format!("if it is a removed session's, bring it back with 'git codex session restore {id}'"))
            .hint(format!("otherwise pick another id, or delete the branch with 'git branch -D {branch}'"))
            .into());
    }
    let mut record = new_record(
        &ctx,
        &id,
        branch,
        base,
        base_commit,
        (&records, &broken),
        now,
    )?;
    record.sandbox_pinned = args.sandbox.is_some();
    // A new session: an earlier one's agent state (same id) is not its to start from.
    if let Some(to) = super::trash::discard_agent_state(&ctx.paths.common_dir, id.as_str())? {
        output::note(&format!(
            "git-codex: the agent state an earlier session '{id}' left is in the trash: {to}"
        ));
    }
    let plan = Plan {
        start: record.base_commit.clone(),
        record,
        full_branch,
        new_branch: true,
        snapshot: None,
        trash: None,
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
    /// A trash entry whose worktree comes back whole instead of a checkout (`restore`);
    /// `start` is the commit it was on.
    pub trash: Option<trash::Entry>,
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

/// A fresh record for a new or restored session: a free path and port (none that a record,
/// readable or not, holds), a fresh expiry.
pub fn new_record(
    ctx: &Ctx,
    id: &SessionId,
    branch: String,
    base: &str,
    base_commit: gix::ObjectId,
    (records, broken): (&[SessionRecord], &[BrokenRecord]),
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
        sandbox_pinned: false,
        port: free_port(ctx.config.port_range, records, broken)?,
        copied_files: Vec::new(),
        agent: None,
        last_run: None,
        landed: None,
        landing: None,
        earlier_rejection: ctx
            .reader
            .ref_id(&crate::review::approval::rejection_ref(&id.to_string()))?
            .map(|tag| tag.to_string()),
    })
}

/// The lowest port in the range that no session holds, corrupt records' included.
/// Deliberately not probed with a bind: the agent may not be listening yet, and allocation
/// must not depend on the moment. A corrupt record whose port cannot be read stops
/// allocation: its session may be using any port.
fn free_port(
    (low, high): (u16, u16),
    records: &[SessionRecord],
    broken: &[BrokenRecord],
) -> anyhow::Result<u16> {
    if let Some(unknown) = broken.iter().find(|b| b.port.is_none()) {
        return Err(UserError::refused(format!(
            "cannot pick a port: the record of session '{}' is corrupt ({}) and names no port",
            escape::quote(&unknown.id),
            escape::line(&unknown.problem)
        ))
        .hint(format!(
            "repair {} or remove that session with 'git codex session remove {}'",
            escape::quote(unknown.path.as_str()),
            escape::quote(&unknown.id)
        ))
        .into());
    }
    let taken = |port: u16| {
        records.iter().any(|r| r.port == port) || broken.iter().any(|b| b.port == Some(port))
    };
    (low..=high).find(|port| !taken(*port)).ok_or_else(|| {
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
            // A restore's files may already be back in it: those go to the trash again. A new
            // checkout holds nothing of anyone's (a snapshot's files stay in its ref): deleted.
            let base = ctx.worktree_base();
            let moved =
                trash::prove(&ctx.paths, &base, &record.worktree, true).and_then(
                    |proof| match proof {
                        Some(proof) if plan.trash.is_some() => trash::discard(
                            &ctx.paths.common_dir,
                            &proof,
                            &record.id,
                            &record.branch,
                            None,
                            &record.copied_files,
                            None,
                        )
                        .map(|_| ()),
                        Some(proof) => trash::delete(&ctx.paths.common_dir, &proof),
                        None => forget_worktree(&ctx.paths.common_dir, &record.worktree),
                    },
                );
            if let Err(err) = moved {
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
        // Undone here: nothing is left for the next command to finish.
        let _ = ctx.state.drop_intent(&record.id);
    }

    fn delete_new_branch(&self, ctx: &Ctx, plan: &Plan) {
        let record = &plan.record;
        match ctx.reader.ref_target(&plan.full_branch) {
            Ok(Some(tip)) if gix::ObjectId::from_hex(plan.start.as_bytes()).ok() == Some(tip) => {
                let mut doomed = vec![(plan.full_branch.clone(), plan.start.clone())];
                if let Ok(Some(base)) = ctx.reader.ref_target(&base_ref(&record.id)) {
                    doomed.push((base_ref(&record.id), base.to_string()));
                }
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
    match &result {
        Err(_) => undo.run(ctx, plan),
        // So that the first `session list` does not read every file of the new session.
        Ok(()) => crate::git::read::settle_checkout(&plan.record.worktree),
    }
    result
}

/// The session whose recorded commits the new worktree's HEAD holds, beyond what protected
/// branches have: a restored session's own work, or another session's (`--base codex/x`).
/// `session.setup` runs the project's code unconfined, so it must not run that.
fn session_work_in(ctx: &Ctx, record: &SessionRecord) -> anyhow::Result<Option<String>> {
    let Some(tip) = ctx
        .reader
        .ref_target(&format!("refs/heads/{}", record.branch))?
    else {
        return Ok(None);
    };
    let protected = crate::gate::protected_tips(ctx)?;
    if protected.is_empty() {
        // No protected branch: no gate, and nothing to tell the person's code from a session's.
        return Ok(None);
    }
    let unlanded: std::collections::HashSet<gix::ObjectId> = ctx
        .reader
        .commits_between(tip, &protected)?
        .into_iter()
        .collect();
    if unlanded.is_empty() {
        return Ok(None);
    }
    let repo = &ctx.reader.repo;
    for (id, _) in crate::git::ledger::all(repo)? {
        let Some(ledger) = crate::git::ledger::of(repo, &id)? else {
            continue;
        };
        // A ledger also records where its branch started (the base, a branch of the person's
        // for `--base feature`): only what lies beyond the base is the session's work.
        let base = if id == record.id {
            gix::ObjectId::from_hex(record.base_commit.as_bytes()).ok()
        } else {
            ledger.base
        };
        for tip in ledger.tips.iter().filter(|t| unlanded.contains(*t)) {
            let beyond_base = match base {
                Some(base) => !ctx.reader.commits_between(*tip, &[base])?.is_empty(),
                None => true,
            };
            if beyond_base {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

fn create_steps(ctx: &Ctx, plan: &Plan, undo: &mut Undo) -> anyhow::Result<()> {
    let record = &plan.record;
    super::journal::begin(
        ctx,
        &Intent {
            op: if plan.new_branch && plan.trash.is_none() && plan.snapshot.is_none() {
                Op::Add
            } else {
                Op::Restore
            },
            id: record.id.clone(),
            branch: record.branch.clone(),
            worktree: record.worktree.clone(),
            started: jiff::Timestamp::now(),
            new_branch_at: plan.new_branch.then(|| plan.start.clone()),
            entry: plan.trash.as_ref().map(|e| e.dir.clone()),
            keep_branch: false,
            copied_files: Vec::new(),
        },
    )?;
    let base_dir = ctx.worktree_base();
    if !base_dir.exists() {
        fs_err::create_dir_all(&base_dir)?;
        undo.base_dir = Some(base_dir.clone());
    }
    undo.worktree = true;
    let root = &ctx.paths.main_root;
    let added = if plan.trash.is_some() {
        let start = plan.new_branch.then_some(plan.start.as_str());
        ctx.git
            .worktree_add_no_checkout(root, &record.worktree, &record.branch, start)
    } else if plan.new_branch {
        ctx.git
            .worktree_add(root, &record.worktree, &record.branch, &plan.start)
    } else {
        ctx.git
            .worktree_add_existing(root, &record.worktree, &record.branch)
    };
    added.map_err(|err| UserError::runtime(format!("cannot create the worktree: {err}")))?;
    // The gate needs the session's base even after its record is gone.
    let base = base_ref(&record.id);
    ctx.git
        .run(root, &["update-ref", &base, &record.base_commit])?;
    if let Some(snapshot) = &plan.snapshot {
        let scratch = ctx.state.scratch_dir(&record.id);
        ctx.git
            .restore_files(&record.worktree, snapshot, &scratch)?;
        ctx.git
            .restore_unfiltered(&ctx.reader, &record.worktree, snapshot)?;
    }
    let mut record = record.clone();
    if let Some(entry) = &plan.trash {
        // The saved index is from the agent's admin dir: used only when it is a regular
        // file (never read through a link it left there), else made again from HEAD.
        let saved = match trash::put_back(entry, &record.worktree)? {
            Some(index) => crate::state::read_regular_file(&index)?,
            None => None,
        };
        let admin = admin_dir_of(&record.worktree, &ctx.paths.common_dir);
        match saved {
            Some(bytes) => {
                let admin = admin
                    .as_ref()
                    .context("the restored worktree has no admin dir")?;
                crate::state::create_fresh(&admin.join("index"))?.write_all(&bytes)?;
            }
            None => ctx.git.read_head_into_index(&record.worktree)?,
        }
        if let Some(warning) = super::modules::take_back(entry, &record.worktree, admin) {
            output::warning(&warning);
        }
        if let Some(meta) = &entry.meta {
            record.copied_files = meta.copied_files.clone();
        }
    }
    for copied in copy_files(root, &record.worktree, &ctx.config.copy_files, &base_dir)? {
        if !record.copied_files.contains(&copied) {
            record.copied_files.push(copied);
        }
    }
    write_metadata(ctx, &record)?;
    for dir in [
        ctx.state.tmp_dir(&record.id),
        ctx.state.logs_dir(&record.id),
    ] {
        if !dir.exists() {
            fs_err::create_dir_all(&dir)?;
            undo.dirs.push(dir);
        }
    }
    match &plan.trash {
        None => match session_work_in(ctx, &record)? {
            None => run_setup(ctx, &record)?,
            Some(session) if !ctx.config.setup.is_empty() => {
                output::warning(&format!(
                    "session.setup was not run: the worktree of '{}' holds commits made in session '{session}' that no protected branch has, code nobody approved that setup would run unconfined",
                    record.id
                ));
                output::hint(&format!(
                    "run each setup command in the session's sandbox: git codex session run {} -- CMD…",
                    record.id
                ));
            }
            Some(_) => {}
        },
        // The whole dir came back, setup's output with it; the emptied entry goes.
        Some(entry) => {
            if let Some(left) = trash::drop_taken(entry)? {
                output::warning(&format!(
                    "{left} still holds what could not go back (a .git of its own); left in the trash"
                ));
            }
        }
    }
    ctx.state.write_record(&record)?;
    ctx.state.drop_intent(&record.id)?;
    // From now on the session's commits are recorded for the gate, whatever its branch does.
    if let Err(err) = crate::gate::record::observe(ctx, &record) {
        output::warning(&format!(
            "could not start the ledger of session '{}': {err:#}",
            record.id
        ));
    }
    let records = ctx.state.briefs().unwrap_or_default();
    if let Err(err) = crate::hooks::refresh_cache(&ctx.state, &records) {
        output::warning(&format!("could not refresh the hooks' cache: {err:#}"));
    }
    Ok(())
}
