//! The one rule of the review gate (SPEC §6): an update of a protected ref may not land a
//! session's commit unless that session's approval contains it — whether the commit lands as
//! itself or as a copy of its change (a cherry-pick, a squash, a merge that carries it, a whole
//! hunk retyped into another commit: see `copies`). A session's commits are what its branch
//! and its ledger (`git::ledger`) reach, less its base: renaming, resetting or deleting the
//! branch takes nothing out. Each session's commits need that session's approval: approving a
//! session started from another one's branch covers only its own. Every hook, `verify` and
//! `session merge` ask this module; there is no second copy of the rule. With
//! `review.require_signed` an approval counts only when its signature verifies; that is
//! checked here too, and only for a session whose commits a landing actually carries.

pub mod base;
mod copies;
mod footprint;
pub mod record;
pub mod server;

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use camino::Utf8Path;
use gix::ObjectId;
use serde::Serialize;

use crate::config::ProtectedPatterns;
use crate::context::Ctx;
use crate::git::Git;
use crate::git::hunks::{DiffOf, Hunk};
use crate::git::ledger::{self, Ledger};
use crate::git::read::Reader;
use crate::review::approval::{Signers, approval_ref};
use crate::state::SessionBrief;

/// `refs/codex/bases/<id>`: where a session started, kept as long as its branch, so the gate
/// knows a session's own commits even after its record is gone (and on a server).
pub fn base_ref(id: &str) -> String {
    format!("refs/codex/bases/{id}")
}

/// How the gate walks history: gix in a repository, the git CLI where gix cannot see the
/// objects (a server's quarantined push). Replace objects and grafts are off in both.
pub trait History {
    /// The commits reachable from any of `tips` but from none of `hidden`, each with its
    /// parents.
    fn commits_with_parents(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<(ObjectId, Vec<ObjectId>)>>;
    /// As [`History::commits_with_parents`], the commits alone.
    fn commits_between(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<ObjectId>> {
        Ok(self
            .commits_with_parents(tips, hidden)?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }
    /// A commit's parents, in order.
    fn parents(&self, id: ObjectId) -> anyhow::Result<Vec<ObjectId>>;
    /// The ledger whose newest entry is `head`.
    fn ledger(&self, head: ObjectId) -> anyhow::Result<Ledger>;
    /// A tag object as stored (an approval, whose signature is checked).
    fn raw_tag(&self, id: ObjectId) -> anyhow::Result<Vec<u8>>;
    /// The best common ancestor of two commits, if they have one.
    fn merge_base(&self, a: ObjectId, b: ObjectId) -> anyhow::Result<Option<ObjectId>>;
    /// What an approval tag names (`None`: not a tag).
    fn tag_target(&self, tag: ObjectId) -> anyhow::Result<Option<ObjectId>>;
    /// The object ref `name` names (not peeled), if it exists.
    fn ref_id(&self, name: &str) -> anyhow::Result<Option<ObjectId>>;
    /// The paths each diff of `items` changes; `None` for one whose trees cannot be read the
    /// way git reads them.
    fn paths_changed(&self, items: &[DiffOf]) -> anyhow::Result<Vec<Option<Vec<Vec<u8>>>>>;
    /// What the repository's `shallow` file holds (empty when it has none): where its history
    /// is cut off.
    fn shallow(&self) -> anyhow::Result<String>;
    /// What a branch's tip names, annotated tags peeled (as `rev-list` takes a tip).
    fn peel(&self, id: ObjectId) -> anyhow::Result<ObjectId> {
        Ok(id)
    }
}

impl History for Reader {
    fn parents(&self, id: ObjectId) -> anyhow::Result<Vec<ObjectId>> {
        Ok(self
            .repo
            .find_commit(id)?
            .parent_ids()
            .map(|p| p.detach())
            .collect())
    }

    fn ledger(&self, head: ObjectId) -> anyhow::Result<Ledger> {
        ledger::read(&self.repo, head)
    }

    fn raw_tag(&self, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        self.raw_object(id)
    }

    fn merge_base(&self, a: ObjectId, b: ObjectId) -> anyhow::Result<Option<ObjectId>> {
        Ok(self
            .repo
            .merge_base(a, b)
            .ok()
            .flatten()
            .map(|id| id.detach()))
    }

    fn tag_target(&self, tag: ObjectId) -> anyhow::Result<Option<ObjectId>> {
        let Ok(tag) = self.repo.find_object(tag)?.try_into_tag() else {
            return Ok(None);
        };
        Ok(Some(tag.decode()?.target()))
    }

    fn commits_with_parents(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<(ObjectId, Vec<ObjectId>)>> {
        Reader::commits_with_parents(self, tips, hidden)
    }

    fn paths_changed(&self, items: &[DiffOf]) -> anyhow::Result<Vec<Option<Vec<Vec<u8>>>>> {
        Reader::paths_changed(self, items)
    }

    fn ref_id(&self, name: &str) -> anyhow::Result<Option<ObjectId>> {
        Reader::ref_id(self, name)
    }

    fn shallow(&self) -> anyhow::Result<String> {
        shallow_of(self.repo.common_dir())
    }

    fn peel(&self, id: ObjectId) -> anyhow::Result<ObjectId> {
        Ok(self.repo.find_object(id)?.peel_tags_to_end()?.id)
    }
}

/// A session as the gate sees it.
#[derive(Debug, Clone)]
pub struct SessionLine {
    pub id: String,
    /// What the session's commits are reached from: its branch's tip, its ledger.
    pub tips: Vec<ObjectId>,
    /// The ledger's own entries, which are not session commits.
    pub chain: HashSet<ObjectId>,
    /// The tips the ledger recorded: commits made in the session, wherever they are now.
    pub recorded: HashSet<ObjectId>,
    /// The tip of its branch now, when it has one: the whole change a squash would land.
    pub branch_tip: Option<ObjectId>,
    pub base: Option<ObjectId>,
    pub approval: Option<Approval>,
    /// Ledger heads not read yet, and the approval tag not read yet: a line is made light
    /// (refs only) and read whole by [`complete`] only when a landing could concern it.
    pub ledgers: Vec<ObjectId>,
    pub approval_tag: Option<ObjectId>,
    /// Its approval ref is still to be looked up (`approval_tag` means nothing yet).
    pub approval_unread: bool,
}

impl SessionLine {
    /// A session known by its id alone so far.
    pub fn new(id: &str) -> SessionLine {
        SessionLine {
            id: id.to_string(),
            tips: Vec::new(),
            chain: HashSet::new(),
            recorded: HashSet::new(),
            branch_tip: None,
            base: None,
            approval: None,
            ledgers: Vec::new(),
            approval_tag: None,
            approval_unread: false,
        }
    }

    /// A ledger of the session, to be read by [`complete`].
    pub fn add_ledger_head(&mut self, head: ObjectId) {
        self.add_tip(head);
        if !self.ledgers.contains(&head) {
            self.ledgers.push(head);
        }
    }

    /// Adds what a ledger records: its head as a tip, its entries, and its base, which is
    /// the session's first (a ref or record that names another cannot shrink the session).
    pub fn add_ledger(&mut self, ledger: Ledger) {
        self.add_tip(ledger.head);
        self.chain.extend(ledger.chain);
        self.recorded.extend(ledger.tips);
        self.base = ledger.base.or(self.base);
    }

    pub fn add_tip(&mut self, tip: ObjectId) {
        if !self.tips.contains(&tip) {
            self.tips.push(tip);
        }
    }
}

/// What the `shallow` file of the repository whose common dir is `common_dir` holds (empty
/// when there is none).
pub fn shallow_of(common_dir: &std::path::Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(common_dir.join("shallow")) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(err.into()),
    }
}

/// `line` read whole: its ledgers (their entries, the commits they recorded, their base, which
/// wins over the one the line was given) and its approval.
pub fn complete(history: &dyn History, line: &SessionLine) -> anyhow::Result<SessionLine> {
    let mut full = line.clone();
    // Branch tips as listed (not peeled: that reads each one's object) are peeled here.
    for tip in full.tips.iter_mut().filter(|t| !line.ledgers.contains(t)) {
        *tip = history.peel(*tip)?;
    }
    if let Some(tip) = full.branch_tip {
        full.branch_tip = Some(history.peel(tip)?);
    }
    for head in std::mem::take(&mut full.ledgers) {
        full.add_ledger(history.ledger(head)?);
    }
    if std::mem::take(&mut full.approval_unread) {
        full.approval_tag = history.ref_id(&approval_ref(&full.id))?;
    }
    if let Some(tag) = full.approval_tag.take() {
        full.approval = history
            .tag_target(tag)?
            .map(|commit| Approval { tag, commit });
    }
    Ok(full)
}

/// A session's approval: the tag at `refs/codex/approvals/<id>` and the commit it names.
#[derive(Debug, Clone, Copy)]
pub struct Approval {
    pub tag: ObjectId,
    pub commit: ObjectId,
}

/// A commit that may not land, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub session: String,
    pub commit: String,
    /// The commit the session's approval is for, when there is one (then it is stale, or
    /// does not count: see `unverified`).
    pub approved: Option<String>,
    /// Why the session's approval does not count (signatures are required, and its does not
    /// verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<String>,
    /// The session commit that `commit` is a copy of (same patch-id), if it is one.
    pub copy_of: Option<String>,
}

impl Violation {
    pub fn reason(&self) -> String {
        let why = match (&self.approved, &self.unverified) {
            (_, Some(why)) => format!("its approval does not count: {why}"),
            (None, None) => "the session has no approval".to_string(),
            (Some(approved), None) => {
                format!("the approval is for another commit ({})", short(approved))
            }
        };
        match &self.copy_of {
            Some(original) => format!(
                "it is a copy of session commit {}, and {why}",
                short(original)
            ),
            None => why,
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

pub struct Gate<'a> {
    history: &'a dyn History,
    /// Where diffs are computed (the git CLI, in this repository).
    git: &'a Git,
    cwd: &'a Utf8Path,
    enabled: bool,
    protected: ProtectedPatterns,
    sessions: Vec<SessionLine>,
    /// The protected branches' tips: what they hold came in from upstream, and is no session's
    /// to answer for unless a ledger recorded it as made in the session (see `own_commits`).
    landed: Vec<ObjectId>,
    signers: Option<Signers>,
    /// Per session id: `None` when its approval counts, else why not.
    verdicts: RefCell<HashMap<String, Option<String>>>,
    /// Where the sessions' footprints are kept between landings (see `footprint`), and
    /// what was read of them.
    cache: Option<camino::Utf8PathBuf>,
    cache_written: bool,
    store: RefCell<Option<footprint::Store>>,
}

impl<'a> Gate<'a> {
    pub fn new(
        history: &'a dyn History,
        git: &'a Git,
        cwd: &'a Utf8Path,
        enabled: bool,
        protected: &ProtectedPatterns,
        sessions: Vec<SessionLine>,
        signers: Option<Signers>,
    ) -> Gate<'a> {
        Gate {
            history,
            git,
            cwd,
            enabled,
            protected: protected.clone(),
            sessions,
            landed: Vec::new(),
            signers,
            verdicts: RefCell::default(),
            cache: None,
            cache_written: false,
            store: RefCell::default(),
        }
    }

    /// Keeps the sessions' footprints in `path` between landings: a cache, which only makes
    /// the same verdicts faster (see `footprint`). Hooks keep it up to date; a command of
    /// git-codex's own only reads it (a refused command changes nothing on disk).
    pub fn with_cache(mut self, path: camino::Utf8PathBuf) -> Gate<'a> {
        self.cache = Some(path);
        self.cache_written = true;
        self
    }

    /// Tells the gate what the protected branches hold now (see `landed`).
    pub fn with_landed(mut self, tips: Vec<ObjectId>) -> Gate<'a> {
        self.landed = tips;
        self
    }

    /// The gate of a repository with a worktree: every session — live records, branches
    /// under the prefix, and ledgers kept after their session went — and their approvals.
    pub fn load(ctx: &'a Ctx) -> anyhow::Result<Gate<'a>> {
        Gate::load_with(ctx, &ctx.state.briefs()?)
    }

    /// As [`Gate::load`], with the records the caller has read already.
    pub fn load_with(ctx: &'a Ctx, records: &[SessionBrief]) -> anyhow::Result<Gate<'a>> {
        Gate::load_listed(ctx, records, Listings::read(ctx)?)
    }

    /// As [`Gate::load_with`], with the refs listed already.
    pub fn load_listed(
        ctx: &'a Ctx,
        records: &[SessionBrief],
        listings: Listings,
    ) -> anyhow::Result<Gate<'a>> {
        let review = &ctx.config.review;
        let Listings {
            branches,
            ledgers,
            store,
        } = listings;
        let gate = Gate::new(
            &ctx.reader,
            &ctx.git,
            &ctx.paths.main_root,
            review.require_approval,
            &review.protected,
            lines(ctx, records, &branches, &ledgers)?,
            ctx.signers(),
        );
        let landed = gate
            .protected_tips(branches.into_iter().collect())
            .into_iter()
            .map(|tip| ctx.reader.peel(tip))
            .collect::<anyhow::Result<_>>()?;
        let mut gate = gate.with_landed(landed);
        gate.cache = Some(ctx.state.gate_cache());
        gate.store = RefCell::new(store);
        Ok(gate)
    }

    /// The tips of the protected branches among `branches` (full names).
    pub fn protected_tips(&self, branches: Vec<(String, ObjectId)>) -> Vec<ObjectId> {
        branches
            .into_iter()
            .filter(|(name, _)| self.protects(name))
            .map(|(_, tip)| tip)
            .collect()
    }

    /// Whether `refname` (a full ref name) is a protected branch.
    pub fn protects(&self, refname: &str) -> bool {
        protects(&self.protected, refname)
    }

    /// The commits that moving `refname` from `old` (`None`: it is created) to `new` would
    /// land without an approval containing them. Empty means the update may go ahead.
    pub fn check(
        &self,
        refname: &str,
        old: Option<ObjectId>,
        new: ObjectId,
    ) -> anyhow::Result<Vec<Violation>> {
        if !self.protects(refname) {
            return Ok(Vec::new());
        }
        self.check_landing(old, new)
    }

    /// As [`Gate::check`], for what several commits bring to `refname` together (a squash
    /// of a range lists each of its commits: together they land the range's tip).
    pub fn check_together(
        &self,
        refname: &str,
        old: Option<ObjectId>,
        news: &[ObjectId],
    ) -> anyhow::Result<Vec<Violation>> {
        if !self.protects(refname) {
            return Ok(Vec::new());
        }
        self.check_landing_of(old, news)
    }

    /// As [`Gate::check`], for a range landing on a protected ref that is not named.
    pub fn check_landing(
        &self,
        old: Option<ObjectId>,
        new: ObjectId,
    ) -> anyhow::Result<Vec<Violation>> {
        self.check_landing_of(old, &[new])
    }

    fn check_landing_of(
        &self,
        old: Option<ObjectId>,
        news: &[ObjectId],
    ) -> anyhow::Result<Vec<Violation>> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let old_list: Vec<ObjectId> = old.into_iter().collect();
        let walked = self.history.commits_with_parents(news, &old_list)?;
        if walked.is_empty() {
            return Ok(Vec::new());
        }
        let landing: HashSet<ObjectId> = walked.iter().map(|(c, _)| *c).collect();
        let net = match (old, news) {
            (Some(old), [new]) => Some((old, *new)),
            _ => None,
        };
        let sessions = self.concerned(&walked, net)?;
        let mut violations = Vec::new();
        let mut session_commits = HashSet::new();
        // Session commits that do not land themselves, whose change might land as a copy.
        let mut elsewhere = Vec::new();
        for session in &sessions {
            let mut hidden = old_list.clone();
            match session.base {
                Some(base) => hidden.push(base),
                // Without a base and without an old value nothing tells its commits apart.
                None if old.is_none() => continue,
                None => {}
            }
            let own = self.own_commits(session, &hidden)?;
            if own.is_empty() {
                continue;
            }
            session_commits.extend(own.iter().copied());
            let all_own: HashSet<ObjectId> = own.iter().copied().collect();
            let (landed, rest): (Vec<ObjectId>, Vec<ObjectId>) =
                own.into_iter().partition(|c| landing.contains(c));
            if !landed.is_empty() {
                // An approval covers the history of its commit only when that commit lands
                // too: an older commit of the session alone (the branch reset back) was never
                // shown as it is, and may hold what a later commit took out again.
                let approved = match session.approval {
                    Some(approval) if landing.contains(&approval.commit) => {
                        self.approved(session, &hidden)?
                    }
                    _ => HashSet::new(),
                };
                for commit in landed.into_iter().filter(|c| !approved.contains(c)) {
                    violations.push(self.violation(session, commit, None));
                }
            }
            elsewhere.push(copies::Original {
                session,
                commits: rest,
                own: all_own,
                hidden,
            });
        }
        // Each with its parents, as the landing's walk read them.
        let foreign: Vec<(ObjectId, Vec<ObjectId>)> = walked
            .iter()
            .filter(|(c, _)| !session_commits.contains(c))
            .cloned()
            .collect();
        // A copy matters only when its original is not approved: approvals (and their
        // signatures) are looked at only for sessions a copy was found of.
        let mut seen = HashSet::new();
        // Per original: the hunks of the change its approval covers, diffed once.
        let mut approved_changes: HashMap<usize, Vec<Hunk>> = HashMap::new();
        let found_all = copies::find(self, &foreign, &elsewhere, net)?;
        // What the landing as a whole still carries when it is done (without its whole
        // change to look at, everything counts as carried).
        let still_carried = |found: &copies::Found| {
            net.is_none()
                || found_all
                    .iter()
                    .any(|g| g.in_net && g.original == found.original && g.hunk == found.hunk)
        };
        for found in &found_all {
            let original = &elsewhere[found.original];
            if seen.contains(&(found.original, found.copy)) {
                continue;
            }
            // What the approved change holds was shown and approved: landing it is no copy
            // of the rest (a session's rebased-away commits carry the same hunks).
            if let Some(approval) = original.session.approval
                && self.unverified(original.session)?.is_none()
            {
                let change = match approved_changes.entry(found.original) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(copies::approved_change(
                        self,
                        original.session,
                        approval.commit,
                    )?),
                };
                if change.iter().any(|h| found.hunk.within(h)) {
                    continue;
                }
            }
            // A commit of the approved history whose hunk the approved change does not hold
            // (a later commit took it out again): a replay of the range that takes it out
            // again too may land, as the range itself may; a copy that leaves it in may not
            // (a cherry-pick of it alone).
            let approved = self.approved(original.session, &original.hidden)?;
            if approved.contains(&found.of) && !still_carried(found) {
                continue;
            }
            seen.insert((found.original, found.copy));
            violations.push(self.violation(original.session, found.copy, Some(found.of)));
        }
        Ok(violations)
    }

    /// The sessions a landing of `walked` (each commit with its parents) could concern, read
    /// whole: the others provably have nothing to say about it (see `footprint`).
    fn concerned(
        &self,
        walked: &[(ObjectId, Vec<ObjectId>)],
        net: Option<(ObjectId, ObjectId)>,
    ) -> anyhow::Result<Vec<SessionLine>> {
        let mut store = self.store.borrow_mut();
        let store = store.get_or_insert_with(|| {
            self.cache
                .as_deref()
                .map(footprint::Store::load)
                .unwrap_or_default()
        });
        let mut found = footprint::concerned(self.history, store, &self.sessions, walked, net)?;
        if found.changed
            && self.cache_written
            && let Some(path) = &self.cache
        {
            store.save(path);
        }
        found
            .lines
            .into_iter()
            .map(|index| match found.completed.remove(&index) {
                Some(full) => Ok(full),
                None => complete(self.history, &self.sessions[index]),
            })
            .collect()
    }

    /// The session's own commits: what its tips reach, less `hidden` and its ledger entries.
    fn own_commits(
        &self,
        session: &SessionLine,
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<ObjectId>> {
        if session.tips.is_empty() {
            return Ok(Vec::new());
        }
        let mut own = self.history.commits_between(&session.tips, hidden)?;
        own.retain(|c| !session.chain.contains(c));
        // What the protected branches hold came in from upstream (a session that merged or
        // rebased onto main does not own main's commits), unless the ledger recorded it as
        // made in the session: that is a session commit that landed past the gate.
        if !self.landed.is_empty() && !own.is_empty() {
            let mut upstream_hidden = hidden.to_vec();
            upstream_hidden.extend(self.landed.iter().copied());
            let kept: HashSet<ObjectId> = self
                .history
                .commits_between(&session.tips, &upstream_hidden)?
                .into_iter()
                .collect();
            own.retain(|c| kept.contains(c) || session.recorded.contains(c));
        }
        Ok(own)
    }

    /// The commits of `session` (those not in `hidden`) that its approval contains: none when
    /// it has no approval, or one that does not count.
    fn approved(
        &self,
        session: &SessionLine,
        hidden: &[ObjectId],
    ) -> anyhow::Result<HashSet<ObjectId>> {
        match session.approval {
            Some(approval) if self.unverified(session)?.is_none() => Ok(self
                .history
                .commits_between(&[approval.commit], hidden)?
                .into_iter()
                .collect()),
            _ => Ok(HashSet::new()),
        }
    }

    /// Why the approval of `session` does not count, checked once per session: `None` when it
    /// counts (or there is none, or no signature is required).
    fn unverified(&self, session: &SessionLine) -> anyhow::Result<Option<String>> {
        let (Some(signers), Some(approval)) = (&self.signers, session.approval) else {
            return Ok(None);
        };
        if let Some(known) = self.verdicts.borrow().get(&session.id) {
            return Ok(known.clone());
        }
        let raw = self.history.raw_tag(approval.tag)?;
        let why = signers.verify(&raw).err();
        self.verdicts
            .borrow_mut()
            .insert(session.id.clone(), why.clone());
        Ok(why)
    }

    fn violation(
        &self,
        session: &SessionLine,
        commit: ObjectId,
        copy_of: Option<ObjectId>,
    ) -> Violation {
        Violation {
            session: session.id.clone(),
            commit: commit.to_string(),
            approved: session.approval.map(|a| a.commit.to_string()),
            unverified: self.verdicts.borrow().get(&session.id).cloned().flatten(),
            copy_of: copy_of.map(|c| c.to_string()),
        }
    }
}

/// The tips of the repository's protected branches.
pub fn protected_tips(ctx: &Ctx) -> anyhow::Result<Vec<ObjectId>> {
    Ok(ctx
        .reader
        .branches_where(|name| protects(&ctx.config.review.protected, name))?
        .into_iter()
        .map(|(_, tip)| tip)
        .collect())
}

/// Whether `refname` (a full ref name) is a branch `protected` protects.
pub fn protects(protected: &ProtectedPatterns, refname: &str) -> bool {
    refname
        .strip_prefix("refs/heads/")
        .is_some_and(|branch| protected.matches(branch))
}

/// Every session of a repository with a worktree, by id: records, branches under the prefix
/// and ledgers, each with its tips, base and approval — light (see `SessionLine::ledgers`):
/// what one listing of the refs tells, without reading a ledger or an approval.
pub(crate) fn sessions(ctx: &Ctx, records: &[SessionBrief]) -> anyhow::Result<Vec<SessionLine>> {
    let (branches, ledgers) = branches_and_ledgers(ctx)?;
    lines(ctx, records, &branches, &ledgers)
}

type Listed = BTreeMap<String, ObjectId>;

/// What a gate reads besides the records: every branch and ledger (nothing peeled), and the
/// footprints kept in `gate-cache`.
pub struct Listings {
    branches: Listed,
    ledgers: Listed,
    store: Option<footprint::Store>,
}

impl Listings {
    /// The footprints are read while the refs are listed: a landing needs both.
    pub fn read(ctx: &Ctx) -> anyhow::Result<Listings> {
        let cache = ctx.state.gate_cache();
        let (listed, store) = std::thread::scope(|scope| {
            let store = scope.spawn(|| footprint::Store::load(&cache));
            (branches_and_ledgers(ctx), store.join().ok())
        });
        let (branches, ledgers) = listed?;
        Ok(Listings {
            branches,
            ledgers,
            store,
        })
    }
}

/// Every local branch and every ledger, by full name, with what each names as listed (not
/// peeled: see `complete`).
fn branches_and_ledgers(ctx: &Ctx) -> anyhow::Result<(Listed, Listed)> {
    let mut both = ctx
        .reader
        .refs_with_prefixes(&["refs/heads/", ledger::LEDGER_PREFIX])?
        .into_iter();
    Ok((
        both.next().unwrap_or_default(),
        both.next().unwrap_or_default(),
    ))
}

/// As [`sessions`], with the branches read already.
fn lines(
    ctx: &Ctx,
    records: &[SessionBrief],
    branches: &Listed,
    ledgers: &Listed,
) -> anyhow::Result<Vec<SessionLine>> {
    let mut lines: BTreeMap<String, SessionLine> = BTreeMap::new();
    for record in records {
        let line = lines
            .entry(record.id.clone())
            .or_insert_with(|| SessionLine::new(&record.id));
        if let Some(tip) = branches.get(&format!("refs/heads/{}", record.branch)) {
            line.add_tip(*tip);
            line.branch_tip = Some(*tip);
        }
        // A ledger's base, when there is one, wins (see `complete`).
        line.base = ObjectId::from_hex(record.base_commit.as_bytes()).ok();
    }
    let prefix = format!("refs/heads/{}", ctx.config.branch_prefix);
    for (name, tip) in branches {
        let Some(id) = name.strip_prefix(&prefix) else {
            continue;
        };
        let line = lines
            .entry(id.to_string())
            .or_insert_with(|| SessionLine::new(id));
        line.add_tip(*tip);
        line.branch_tip = line.branch_tip.or(Some(*tip));
    }
    for (name, head) in ledgers {
        if let Some(id) = name.strip_prefix(ledger::LEDGER_PREFIX) {
            lines
                .entry(id.to_string())
                .or_insert_with(|| SessionLine::new(id))
                .add_ledger_head(*head);
        }
    }
    for line in lines.values_mut() {
        if line.base.is_none() {
            line.base = ctx.reader.ref_target(&base_ref(&line.id))?;
        }
        line.approval_unread = true;
    }
    Ok(lines.into_values().filter(|l| !l.tips.is_empty()).collect())
}
