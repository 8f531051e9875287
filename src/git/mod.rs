//! The only code that touches git: gix for reads ([`read`]), the `git` CLI with argv for writes
//! that must behave exactly as git does (worktrees, refs, snapshots). Nobody else spawns git.

pub mod fast_status;
pub mod hunks;
pub mod land;
pub mod ledger;
pub mod nested;
pub mod read;
pub mod refs;
pub mod snapshot;
pub mod worktrees;

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use camino::Utf8Path;

use crate::error::UserError;

/// Variables a calling hook may have set that would point a git started from here (ours, the
/// review hook's, an agent's) at the wrong repository, worktree or index.
const GIT_LEAKS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
];

/// Settings for every git git-codex runs (see [`Git::command`]).
const SAFE_CONFIG: &[&str] = &["core.fsmonitor=false", "submodule.recurse=false"];

/// Removes [`GIT_LEAKS`] from what `cmd` will inherit.
pub fn scrub_env(cmd: &mut Command) {
    for name in GIT_LEAKS {
        cmd.env_remove(name);
    }
}

/// A git CLI: `GIT_CODEX_GIT` when set, else `git` from PATH.
#[derive(Debug, Clone)]
pub struct Git {
    program: OsString,
}

/// A failed git command, with what git said.
#[derive(Debug, thiserror::Error)]
#[error("git {args} failed: {stderr}")]
pub struct GitFailed {
    pub args: String,
    pub stderr: String,
}

impl Git {
    pub fn from_env() -> Git {
        let program = std::env::var_os("GIT_CODEX_GIT")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| OsString::from("git"));
        Git { program }
    }

    /// A git command in `cwd`, without environment leaking in from a calling hook, reading
    /// history as stored: replace objects and grafts would let anyone who can write a ref or
    /// `info/grafts` show the gate a history that is not the one that lands.
    ///
    /// Session worktrees may hold nested repositories whose config the agent wrote: no
    /// fsmonitor hook runs and no command recurses into submodules. The `-c` settings reach
    /// every git this one starts (`GIT_CONFIG_PARAMETERS`) and outrank a nested repository's
    /// own config; what they cannot cover (a nested repository's filters) is kept out by never
    /// letting git look inside one (see `snapshot::nested_exclusions`).
    pub fn command(&self, cwd: &Utf8Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(cwd);
        cmd.args(SAFE_CONFIG.iter().flat_map(|setting| ["-c", setting]));
        scrub_env(&mut cmd);
        cmd.env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_GRAFT_FILE", "/nonexistent/git-codex/no-grafts");
        cmd.stdin(Stdio::null());
        cmd
    }

    fn output(&self, mut cmd: Command, args: &[&OsStr]) -> anyhow::Result<Output> {
        cmd.args(args);
        cmd.output().map_err(|err| {
            UserError::runtime(format!(
                "cannot run {}: {err}",
                self.program.to_string_lossy()
            ))
            .hint("install git 2.39 or newer, or point GIT_CODEX_GIT at it")
            .into()
        })
    }

    /// Runs git; returns stdout (trimmed of the final newline) or a [`GitFailed`] error.
    pub fn run(&self, cwd: &Utf8Path, args: &[&str]) -> anyhow::Result<String> {
        let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.output(self.command(cwd), &os_args)?;
        check(args, &out)
    }

    /// Runs git with `input` on its stdin.
    pub fn run_input(&self, cwd: &Utf8Path, args: &[&str], input: &str) -> anyhow::Result<String> {
        let mut cmd = self.command(cwd);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|err| {
            UserError::runtime(format!(
                "cannot run {}: {err}",
                self.program.to_string_lossy()
            ))
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        check(args, &out)
    }

    /// Runs a prepared command (extra env), returning stdout or a [`GitFailed`] error.
    pub fn run_with(&self, cmd: Command, args: &[&str]) -> anyhow::Result<String> {
        let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.output(cmd, &os_args)?;
        check(args, &out)
    }
}

fn check(args: &[&str], out: &Output) -> anyhow::Result<String> {
    if out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    } else {
        Err(GitFailed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into())
    }
}
