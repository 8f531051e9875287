//! Whether git runs git-codex's hooks here: the hooks dir git uses now, what is at each hook's
//! name there, and who put it there. A hook manager that moves `core.hooksPath` or rewrites the
//! hooks dir turns the gate off without a word; every command that creates, runs, reviews or
//! merges a session asks this (one `git rev-parse` and a few `stat`s) and says so loudly.

use camino::{Utf8Path, Utf8PathBuf};

use super::managers::{self, Manager};
use super::{CLIENT_HOOKS, HookState, hooks_dir, is_ours, shim_binary, status};
use crate::git::Git;

pub struct Health {
    pub dir: Utf8PathBuf,
    pub states: Vec<HookState>,
    /// The manager that owns the hooks dir as a whole (husky's `.husky/_`).
    pub dir_manager: Option<Manager>,
    /// The hooks dir that holds git-codex's shims while git now looks elsewhere
    /// (`core.hooksPath` set by a manager after `git codex init`).
    pub left_behind_in: Option<Utf8PathBuf>,
    /// The shims' binary is gone and none is on PATH: they only warn.
    pub binary_missing: bool,
}

pub fn check(git: &Git, main_root: &Utf8Path, common_dir: &Utf8Path) -> anyhow::Result<Health> {
    let dir = hooks_dir(git, main_root)?;
    let states = status(&dir, CLIENT_HOOKS);
    let default = common_dir.join("hooks");
    let left_behind_in = (default != dir
        && !states.iter().any(HookState::effective)
        && CLIENT_HOOKS.iter().any(|name| is_ours(&default.join(name))))
    .then_some(default);
    let binary_missing = shim_binary(&dir.join("reference-transaction"))
        .is_some_and(|bin| !bin.exists() && which::which("git-codex").is_err());
    Ok(Health {
        dir_manager: managers::of_dir(&dir),
        dir,
        states,
        left_behind_in,
        binary_missing,
    })
}

impl Health {
    /// One line per way git-codex's hooks are not in place; empty when they all run.
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(old) = &self.left_behind_in {
            let by = self
                .dir_manager
                .map(|m| format!(", {}'s,", m.name()))
                .unwrap_or_default();
            lines.push(format!(
                "core.hooksPath now points at {}{by} and git-codex's hooks are in {old}, where git no longer looks: no git-codex hook runs",
                self.dir
            ));
        } else {
            // One line per reason, naming every hook it took.
            let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
            for state in self.states.iter().filter(|s| !s.effective()) {
                let why = describe_missing(state, &self.dir);
                match reasons.iter_mut().find(|(r, _)| *r == why) {
                    Some((_, names)) => names.push(&state.name),
                    None => reasons.push((why, vec![&state.name])),
                }
            }
            for (why, names) in reasons {
                lines.push(format!("{}: {why}", names.join(", ")));
            }
        }
        if self.binary_missing {
            lines.push(
                "the hooks' git-codex binary is gone and none is on PATH: the hooks only warn"
                    .to_string(),
            );
        }
        lines
    }

    /// The command that puts the hooks back.
    pub fn repair(&self) -> String {
        let mut hint = "run 'git codex hooks install'".to_string();
        if self.binary_missing {
            hint = "reinstall git-codex ('cargo install --locked --path .'), then run 'git codex hooks install'".to_string();
        }
        let managed: Vec<&str> = self.states.iter().filter_map(|s| s.manager).collect();
        if !managed.is_empty() || self.dir_manager.is_some() {
            hint.push_str(
                " (it chains the hook manager's hooks, which keep running; run it again after the manager reinstalls its hooks)",
            );
        }
        hint
    }
}

/// Why a hook of git-codex's does not run, in words for `status` and `doctor`.
pub fn describe_missing(state: &HookState, dir: &Utf8Path) -> String {
    match (state.state, state.manager) {
        ("foreign", Some(name)) => managers::by_name(name)
            .map(|m| m.what_it_did(&state.name, dir))
            .unwrap_or_else(|| format!("replaced by {name}'s hook")),
        ("foreign", None) => "another hook is there, and git-codex's does not run".to_string(),
        _ => "missing".to_string(),
    }
}

/// Prints the loud warning when git-codex's hooks are not all in place. Never fails: a
/// command goes on, the person is told.
pub fn warn_if_off(git: &Git, main_root: &Utf8Path, common_dir: &Utf8Path) {
    if let Some(health) = off(git, main_root, common_dir) {
        warn(&health);
    }
}

/// The hooks' health when git does not run all of git-codex's hooks here (see [`warn`]).
pub fn off(git: &Git, main_root: &Utf8Path, common_dir: &Utf8Path) -> Option<Health> {
    let health = check(git, main_root, common_dir).ok()?;
    (!health.problems().is_empty()).then_some(health)
}

/// Says that the review gate is not in place, and why.
pub fn warn(health: &Health) {
    let problems = health.problems();
    crate::output::warning(
        "the review gate is not in place: git does not run all of git-codex's hooks here, so unapproved work can land on a protected branch",
    );
    for line in problems {
        crate::output::warning(&line);
    }
    crate::output::hint(&health.repair());
}

/// git-lfs is set up here (its store, or `filter=lfs` in `.gitattributes`) but nothing runs
/// its pre-push hook, which sends the LFS objects: `git lfs install` refuses a hook that is not
/// its own, so installed after git-codex it installs nothing.
pub fn lfs_problem(health: &Health, main_root: &Utf8Path, common_dir: &Utf8Path) -> Option<String> {
    let attributes = fs_err::read_to_string(main_root.join(".gitattributes")).unwrap_or_default();
    let in_use = common_dir.join("lfs").is_dir() || attributes.contains("filter=lfs");
    if !in_use {
        return None;
    }
    let runs_lfs = |path: Utf8PathBuf| {
        matches!(
            Manager::of_file(&path),
            Some(Manager::GitLfs | Manager::Lefthook)
        )
    };
    let pre_push = health.dir.join("pre-push");
    if runs_lfs(pre_push.clone()) || runs_lfs(super::chained_path(&health.dir, "pre-push")) {
        return None;
    }
    Some(format!(
        "git-lfs is used here but its hooks are not installed in {} ('git lfs install' refuses hooks that are not its own): a push sends LFS pointers without their objects",
        health.dir
    ))
}

/// The commands that install git-lfs's hooks and chain them behind git-codex's.
pub const LFS_REPAIR: &str = "run 'git lfs update --force' (it replaces git-codex's pre-push and post-checkout), then 'git codex hooks install' at once (it chains git-lfs's)";

/// The first session worktree in which git (the person's, as configured) would use another
/// hooks dir than `dir`: a relative `core.hooksPath` not pinned for it (a session made before
/// the manager set it), so git runs no git-codex hook there, or hooks the agent can write.
pub fn session_off_dir(dir: &Utf8Path, worktrees: &[(String, Utf8PathBuf)]) -> Option<String> {
    let git = Git::from_env();
    worktrees
        .iter()
        .filter(|(_, wt)| wt.is_dir())
        .find_map(|(id, wt)| {
            let theirs = hooks_dir(&git, wt).ok()?;
            (theirs != dir).then(|| {
                format!(
                    "in session '{id}', git uses the hooks in {theirs}, not {dir} (core.hooksPath is relative to each worktree): no git-codex hook runs there"
                )
            })
        })
}

/// What puts a session's hooks dir right.
pub const SESSION_REPAIR: &str = "run 'git codex hooks install': it points every session worktree at the main worktree's hooks dir";
