//! The gate where a push is received: no records and no worktree, and the pushed objects
//! sit in a quarantine that only git itself (through its environment) can read.

use std::collections::HashMap;

use camino::Utf8Path;
use gix::ObjectId;

use super::{History, SessionLine, base_ref};
use crate::git::Git;
use crate::git::hunks::DiffOf;
use crate::git::ledger::{self, LEDGER_PREFIX, Ledger};
use crate::review::approval::approval_ref;

/// History through the git CLI, which sees the quarantined objects.
pub struct CliHistory<'a> {
    pub git: &'a Git,
    pub cwd: &'a Utf8Path,
    /// The repository's common dir (where its `shallow` file is).
    pub common_dir: &'a Utf8Path,
}

impl History for CliHistory<'_> {
    fn parents(&self, id: ObjectId) -> anyhow::Result<Vec<ObjectId>> {
        let out = self.git.run(
            self.cwd,
            &["rev-list", "--parents", "-n", "1", &id.to_string()],
        )?;
        Ok(out
            .split_whitespace()
            .skip(1)
            .filter_map(|p| ObjectId::from_hex(p.as_bytes()).ok())
            .collect())
    }

    fn ledger(&self, head: ObjectId) -> anyhow::Result<Ledger> {
        ledger::read_with_git(self.git, self.cwd, head)
    }

    fn merge_base(&self, a: ObjectId, b: ObjectId) -> anyhow::Result<Option<ObjectId>> {
        // Exit 1 with no output: no common ancestor.
        Ok(self
            .git
            .run(self.cwd, &["merge-base", &a.to_string(), &b.to_string()])
            .ok()
            .and_then(|out| ObjectId::from_hex(out.trim().as_bytes()).ok()))
    }

    fn ref_id(&self, name: &str) -> anyhow::Result<Option<ObjectId>> {
        let out = self
            .git
            .run(self.cwd, &["for-each-ref", "--format=%(objectname)", name])?;
        Ok(out
            .lines()
            .next()
            .and_then(|l| ObjectId::from_hex(l.as_bytes()).ok()))
    }

    fn shallow(&self) -> anyhow::Result<String> {
        super::shallow_of(self.common_dir.as_std_path())
    }

    fn paths_changed(&self, items: &[DiffOf]) -> anyhow::Result<Vec<Option<Vec<Vec<u8>>>>> {
        // git's own reading of the trees, whatever they hold.
        Ok(self
            .git
            .paths_changed(self.cwd, items)?
            .into_iter()
            .map(Some)
            .collect())
    }

    fn tag_target(&self, tag: ObjectId) -> anyhow::Result<Option<ObjectId>> {
        Ok(self
            .git
            .peel_to_commits(self.cwd, &[tag])?
            .into_iter()
            .next()
            .flatten())
    }

    fn commits_with_parents(
        &self,
        tips: &[ObjectId],
        hidden: &[ObjectId],
    ) -> anyhow::Result<Vec<(ObjectId, Vec<ObjectId>)>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<String> = vec!["rev-list".to_string(), "--parents".to_string()];
        args.extend(tips.iter().map(ObjectId::to_string));
        args.extend(hidden.iter().map(|h| format!("^{h}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.git.run(self.cwd, &args)?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut ids = l
                    .split(' ')
                    .filter_map(|h| ObjectId::from_hex(h.as_bytes()).ok());
                Some((ids.next()?, ids.collect()))
            })
            .collect())
    }

    fn raw_tag(&self, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        // `run` drops the final newline; the tag ends with one.
        Ok((self
            .git
            .run(self.cwd, &["cat-file", "tag", &id.to_string()])?
            + "\n")
            .into_bytes())
    }
}

/// Every branch the server holds now (before the push), with its tip.
pub fn branch_tips(git: &Git, cwd: &Utf8Path) -> anyhow::Result<Vec<(String, ObjectId)>> {
    let listing = git.run(
        cwd,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads/",
        ],
    )?;
    Ok(listing
        .lines()
        .filter_map(|line| {
            let (id, name) = line.split_once(' ')?;
            Some((name.to_string(), ObjectId::from_hex(id.as_bytes()).ok()?))
        })
        .collect())
}

/// One line of pre-receive's stdin: `name` moves from `old` to `new` (`None`: absent).
#[derive(Debug, Clone)]
pub struct RefUpdate {
    pub name: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

/// `updates` with, for each that names a symbolic ref of the server (`refs/heads/trunk`
/// pointing at `refs/heads/main`), the same update of the ref it points at: git moves the
/// target, and tells the hook only the name pushed.
pub fn through_symrefs(
    git: &Git,
    cwd: &Utf8Path,
    mut updates: Vec<RefUpdate>,
) -> anyhow::Result<Vec<RefUpdate>> {
    let mut names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
    // git itself follows at most 5 levels.
    for _ in 0..5 {
        if names.is_empty() {
            break;
        }
        let mut args = vec!["for-each-ref", "--format=%(refname) %(symref)"];
        args.extend(names.iter().map(String::as_str));
        let listing = git.run(cwd, &args)?;
        names.clear();
        for (name, target) in listing.lines().filter_map(|l| l.split_once(' ')) {
            let Some(update) = updates.iter().find(|u| u.name == name).cloned() else {
                continue;
            };
            if target.is_empty() || updates.iter().any(|u| u.name == target) {
                continue;
            }
            updates.push(RefUpdate {
                name: target.to_string(),
                ..update
            });
            names.push(target.to_string());
        }
    }
    Ok(updates)
}

/// The server's session branches and `refs/codex/*` before the push (as the server holds
/// them) and after it (with the push applied).
pub struct ServerRefs {
    prefix: String,
    before: HashMap<String, ObjectId>,
    after: HashMap<String, ObjectId>,
}

impl ServerRefs {
    pub fn load(
        git: &Git,
        cwd: &Utf8Path,
        branch_prefix: &str,
        updates: &[RefUpdate],
    ) -> anyhow::Result<ServerRefs> {
        let prefix = format!("refs/heads/{branch_prefix}");
        let listing = git.run(
            cwd,
            &[
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                &prefix,
                "refs/codex/",
            ],
        )?;
        let before: HashMap<String, ObjectId> = listing
            .lines()
            .filter_map(|line| {
                let (id, name) = line.split_once(' ')?;
                Some((name.to_string(), ObjectId::from_hex(id.as_bytes()).ok()?))
            })
            .collect();
        let mut after = before.clone();
        for update in updates {
            match update.new {
                Some(id) => after.insert(update.name.clone(), id),
                None => after.remove(&update.name),
            };
        }
        Ok(ServerRefs {
            prefix,
            before,
            after,
        })
    }

    fn session_id<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(self.prefix.as_str())
            .or_else(|| name.strip_prefix(LEDGER_PREFIX))
    }

    /// Every session the server knows before or after the push. A session's commits are
    /// what any of its tips reaches, before the push or after it (its branch and its ledger),
    /// so that a push cannot make them ordinary by moving or deleting a ref. Its base is the
    /// one the server held (a new one only for a new session); its approval the one it holds
    /// after the push (approvals arrive with pushes).
    /// Light (see `SessionLine::ledgers`): the gate reads a ledger or an approval only of a
    /// session a landing could concern.
    pub fn sessions(&self) -> Vec<SessionLine> {
        let mut ids: Vec<&str> = self
            .before
            .keys()
            .chain(self.after.keys())
            .filter_map(|name| self.session_id(name))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut sessions = Vec::new();
        for id in ids {
            let branch = format!("{}{id}", self.prefix);
            let ledger = format!("{LEDGER_PREFIX}{id}");
            let mut line = SessionLine::new(id);
            line.base = self
                .before
                .get(&base_ref(id))
                .or_else(|| self.after.get(&base_ref(id)))
                .copied();
            for tip in [self.after.get(&branch), self.before.get(&branch)]
                .into_iter()
                .flatten()
            {
                line.add_tip(*tip);
                line.branch_tip = line.branch_tip.or(Some(*tip));
            }
            for head in [self.after.get(&ledger), self.before.get(&ledger)]
                .into_iter()
                .flatten()
            {
                line.add_ledger_head(*head);
            }
            if line.tips.is_empty() {
                continue;
            }
            line.approval_tag = self.after.get(&approval_ref(id)).copied();
            sessions.push(line);
        }
        sessions
    }

    /// Whether the server held the branch of session `id` before the push.
    fn knew_branch(&self, id: &str) -> bool {
        self.before.contains_key(&format!("{}{id}", self.prefix))
    }
}

/// Why a push may not change git-codex's refs the way it does, or `None`.
/// Always: a ledger ref never goes away or moves back; a base never moves, and a session
/// branch the server holds gets no base later (either would let the pusher choose which
/// commits are the session's). While a push `lands` (moves the protected branch named): no
/// session branch and no `refs/codex/*` is deleted or rewound.
pub fn ref_change_refused(
    history: &dyn History,
    git: &Git,
    cwd: &Utf8Path,
    refs: &ServerRefs,
    updates: &[RefUpdate],
    lands: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let landing = lands.map_or(String::new(), |p| format!(" while it lands commits on {p}"));
    for update in updates {
        let name = update.name.as_str();
        let ledger = name.starts_with(LEDGER_PREFIX);
        let base_of = name.strip_prefix("refs/codex/bases/");
        let guarded = lands.is_some()
            && (name.starts_with(refs.prefix.as_str()) || name.starts_with("refs/codex/"));
        let why = match (update.old, update.new) {
            (_, Some(new))
                if (ledger || base_of.is_some())
                    && git.peel_to_commits(cwd, &[new])?.first() != Some(&Some(new)) =>
            {
                Some(format!("{name} must name a commit"))
            }
            (Some(old), Some(new)) if base_of.is_some() && old != new => Some(format!(
                "it moves {name}: a session's base never moves (delete it on its own first to reuse the session id)"
            )),
            (None, Some(_)) if base_of.is_some_and(|id| refs.knew_branch(id)) => Some(format!(
                "it creates {name} for a session branch the server already holds: a base comes with the branch's first push"
            )),
            _ if !ledger && !guarded => None,
            (Some(_), None) if ledger => Some(format!("it deletes {name}: ledgers are kept")),
            (Some(_), None) => Some(format!("it deletes {name}{landing}")),
            (Some(old), Some(new)) if !fast_forward(history, git, cwd, old, new)? => Some(format!(
                "it moves {name} back or sideways (not a fast-forward){landing}"
            )),
            _ => None,
        };
        if why.is_some() {
            return Ok(why);
        }
    }
    Ok(None)
}

/// Whether `new` contains `old` (both peeled to commits; what does not peel is not).
fn fast_forward(
    history: &dyn History,
    git: &Git,
    cwd: &Utf8Path,
    old: ObjectId,
    new: ObjectId,
) -> anyhow::Result<bool> {
    if old == new {
        return Ok(true);
    }
    let peeled = git.peel_to_commits(cwd, &[old, new])?;
    let (Some(Some(old)), Some(Some(new))) = (peeled.first(), peeled.get(1)) else {
        return Ok(false);
    };
    Ok(history.commits_between(&[*old], &[*new])?.is_empty())
}
