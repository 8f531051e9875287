//! The only code that touches git: gix for reads ([`read`]), the `git` CLI with argv for writes
//! that must behave exactly as git does (worktrees, refs, snapshots). Nobody else spawns git.

pub mod fast_status;
mod formats;
pub mod half_landed;
pub mod hunks;
mod index_refresh;
pub mod land;
pub mod ledger;
pub mod loose_lock;
pub mod merge_leftovers;
pub mod nested;
pub mod orphans;
pub mod patch;
pub mod read;
pub mod refs;
pub mod restore;
pub mod snapshot;
pub mod steady_refs;
mod tree_paths;
pub mod unfiltered;
pub mod unseen;
pub mod worktrees;

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

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
/// `sparse.expectFilesOutsideOfPatterns=false` (git's default) because the agent may set it in
/// its worktree's config: git would then trust the skip-worktree marks and not see its files
/// outside the sparse checkout.
const SAFE_CONFIG: &[&str] = &[
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "sparse.expectFilesOutsideOfPatterns=false",
];

/// The overrides for session worktrees from `git config -z --get-regexp` output (`key\nvalue\0`).
pub(crate) fn session_overrides_from(listing: &[u8], main_root: &Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    for item in listing.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        let text = String::from_utf8_lossy(item);
        let (key, value) = text.split_once('\n').unwrap_or((&text, ""));
        if key == "core.hookspath" {
            if !value.is_empty() && !value.starts_with('/') && !value.starts_with('~') {
                out.push(format!("core.hooksPath={}", main_root.join(value)));
            }
            continue;
        }
        if let Some(name) = key
            .strip_prefix("merge.")
            .and_then(|rest| rest.strip_suffix(".driver"))
        {
            // A merge driver runs where git merges: in a scratch worktree that is the agent's
            // files. It fails there (a conflict), so such a file is merged by hand or with the
            // merge strategy, which merges in the main worktree.
            out.push(format!("merge.{name}.driver=false"));
            continue;
        }
        let Some(driver) = key
            .strip_prefix("filter.")
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(name, _)| name)
        else {
            continue;
        };
        let mut words = value.split_whitespace();
        let lfs = match words.next() {
            Some("git-lfs") => true,
            Some("git") => words.next() == Some("lfs"),
            _ => false,
        };
        if !lfs {
            let kind = key.rsplit('.').next().unwrap_or_default();
            out.push(format!("filter.{driver}.{kind}="));
            out.push(format!("filter.{driver}.required=false"));
        }
    }
    out.dedup();
    out
}

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
    /// Where session worktrees live, and what git-codex's git must not honour there.
    sessions: Option<std::sync::Arc<SessionGuard>>,
}

/// Session worktrees hold what the agent wrote. A hooks dir or a filter command the person
/// configured relative to the worktree (`core.hooksPath = .husky/_`, `filter.x.clean =
/// ./tools/clean.sh`, or any command that reads its worktree) would run the agent's version
/// of it, as the person, outside the sandbox, whenever git-codex's own git runs there.
#[derive(Debug)]
struct SessionGuard {
    bases: Vec<Utf8PathBuf>,
    main_root: Utf8PathBuf,
    overrides: std::sync::OnceLock<Vec<String>>,
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
        Git {
            program,
            sessions: None,
        }
    }

    /// This git, guarding what it runs in the session worktrees under `bases` (see
    /// [`SessionGuard`]): a relative hooks dir is the main worktree's, and only git-lfs's
    /// filters run there (any other filter command could read, or be, the agent's code; the
    /// snapshot then holds the files as the agent left them).
    pub fn guarding_sessions(mut self, bases: &[Utf8PathBuf], main_root: &Utf8Path) -> Git {
        self.sessions = Some(std::sync::Arc::new(SessionGuard {
            bases: bases
                .iter()
                .map(|b| b.canonicalize_utf8().unwrap_or_else(|_| b.clone()))
                .chain(bases.iter().cloned())
                .collect(),
            main_root: main_root.to_path_buf(),
            overrides: std::sync::OnceLock::new(),
        }));
        self
    }

    /// The guard when `path` lies where the agent's files are checked out: a session worktree,
    /// or git-codex's own scratch worktrees (a rebase replays the agent's commits there).
    fn guard_of(&self, path: &Utf8Path) -> Option<&SessionGuard> {
        let guard = self.sessions.as_deref()?;
        if path == guard.main_root {
            // Most of git-codex's git (every hook's) runs here: no path to resolve.
            return None;
        }
        let inside = |p: &Utf8Path| guard.bases.iter().any(|b| p.starts_with(b));
        (inside(path) || path.canonicalize_utf8().is_ok_and(|real| inside(&real))).then_some(guard)
    }

    /// Whether `path` is a session's worktree, or under git-codex's scratch: never a place to
    /// land a person's branch.
    pub fn is_agents(&self, path: &Utf8Path) -> bool {
        self.guard_of(path).is_some()
    }

    /// The `-c` settings for a git run in a session worktree, from the person's config.
    fn session_overrides(&self, guard: &SessionGuard) -> Vec<String> {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(&guard.main_root)
            .args(["config", "-z", "--get-regexp"])
            .arg(r"^(core\.hookspath|filter\..*\.(clean|smudge|process)|merge\..*\.driver)$")
            .stdin(Stdio::null());
        scrub_env(&mut cmd);
        let Ok(out) = cmd.output() else {
            return Vec::new();
        };
        session_overrides_from(&out.stdout, &guard.main_root)
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
        if let Some(guard) = self.guard_of(cwd) {
            let overrides = guard
                .overrides
                .get_or_init(|| self.session_overrides(guard));
            cmd.args(
                overrides
                    .iter()
                    .flat_map(|setting| ["-c", setting.as_str()]),
            );
        }
        scrub_env(&mut cmd);
        // SAFETY: die_with_parent calls only async-signal-safe functions.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(
                &mut cmd,
                crate::lifetime::die_with_parent,
            );
        }
        // Marks everything this git starts (`worktree add` runs `git branch` and `git reset`
        // of its own, which outlive a killed git-codex): see `orphans::orphans_at_work`.
        cmd.env(orphans::MARKER, std::process::id().to_string());
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

    /// Runs git; returns stdout as bytes (paths that are not UTF-8 stay as they are).
    pub fn run_bytes(&self, cwd: &Utf8Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.output(self.command(cwd), &os_args)?;
        check(args, &out)?;
        Ok(out.stdout)
    }

    /// Runs git with `input` on its stdin.
    pub fn run_input(
        &self,
        cwd: &Utf8Path,
        args: &[&str],
        input: impl AsRef<[u8]>,
    ) -> anyhow::Result<String> {
        let mut cmd = self.command(cwd);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|err| {
            UserError::runtime(format!(
                "cannot run {}: {err}",
                self.program.to_string_lossy()
            ))
        })?;
        let out = feed_and_wait(child, input.as_ref())?;
        check(args, &out)
    }

    /// Runs a prepared command (extra env), returning stdout or a [`GitFailed`] error.
    pub fn run_with(&self, cmd: Command, args: &[&str]) -> anyhow::Result<String> {
        let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.output(cmd, &os_args)?;
        check(args, &out)
    }
}

/// Writes `input` to the child's stdin from a thread while its stdout and stderr are read,
/// then waits for it. Written first, a large input deadlocks: git answers as it reads
/// (`hash-object --stdin-paths` prints an id a path), and a pipe holds only 64 KiB each way.
/// A write cut short because git ended is git's failure to tell, not the pipe's.
pub(crate) fn feed_and_wait(
    mut child: std::process::Child,
    input: &[u8],
) -> anyhow::Result<Output> {
    let stdin = child.stdin.take();
    std::thread::scope(|scope| {
        let writer = stdin.map(|mut stdin| scope.spawn(move || stdin.write_all(input)));
        let out = child.wait_with_output()?;
        let written = writer.map_or(Ok(Ok(())), |w| w.join());
        match written {
            Ok(Ok(())) => Ok(out),
            _ if !out.status.success() => Ok(out),
            Ok(Err(err)) => Err(anyhow::Error::new(err).context("cannot write to git's input")),
            Err(_) => anyhow::bail!("the thread writing to git's input panicked"),
        }
    })
}

fn check(args: &[&str], out: &Output) -> anyhow::Result<String> {
    if out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    } else {
        // Some failures are told on stdout only (`git commit` with nothing to commit).
        let said = if out.stderr.iter().all(u8::is_ascii_whitespace) {
            &out.stdout
        } else {
            &out.stderr
        };
        Err(GitFailed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(said).trim().to_string(),
        }
        .into())
    }
}

#[cfg(test)]
mod session_guard_tests {
    use super::*;

    #[test]
    fn relative_hooks_and_filters_other_than_lfs_are_not_the_worktrees() {
        let listing = b"core.hookspath\n.husky/_\0filter.lfs.clean\ngit-lfs clean -- %f\0filter.lfs.process\ngit lfs filter-process\0filter.strip.clean\n./tools/clean.sh\0merge.both.driver\n./tools/merge.sh %O %A %B\0";
        let out = session_overrides_from(listing, Utf8Path::new("/repo"));
        assert_eq!(
            out,
            [
                "core.hooksPath=/repo/.husky/_",
                "filter.strip.clean=",
                "filter.strip.required=false",
                "merge.both.driver=false"
            ]
        );
        let absolute = session_overrides_from(b"core.hookspath\n/abs/hooks\0", Utf8Path::new("/r"));
        assert!(absolute.is_empty());
    }
}
