//! What every repository command starts from: the repository, its state dir and its config.

use camino::{Utf8Path, Utf8PathBuf};
use toml::Value;

use crate::config::{Config, Settings};
use crate::error::UserError;
use crate::git::Git;
use crate::git::read::{Reader, RepoPaths};
use crate::output;
use crate::state::StateDir;

pub struct Ctx {
    pub git: Git,
    pub reader: Reader,
    pub paths: RepoPaths,
    pub state: StateDir,
    pub settings: Settings,
    pub config: Config,
}

pub fn current_dir() -> anyhow::Result<Utf8PathBuf> {
    let cwd = std::env::current_dir()?;
    Utf8PathBuf::from_path_buf(cwd).map_err(|p| {
        UserError::runtime(format!(
            "current directory {} is not valid UTF-8",
            p.display()
        ))
        .into()
    })
}

impl Ctx {
    /// Finds the repository from the current directory and loads every config layer,
    /// with `flags` as the command-line layer.
    pub fn open(flags: &[(&'static str, Value)]) -> anyhow::Result<Ctx> {
        let cwd = current_dir()?;
        let (reader, paths) = Reader::discover(&cwd)?;
        let state = StateDir::new(&paths.common_dir);
        let settings = Settings::load(Some(&state.config_file()), flags)?;
        check_worktree_base(&settings, &paths)?;
        Ok(Ctx::with_settings(reader, paths, settings))
    }

    /// A context with settings already loaded (or the defaults, for `doctor` when the config
    /// is broken).
    pub fn with_settings(reader: Reader, paths: RepoPaths, settings: Settings) -> Ctx {
        let state = StateDir::new(&paths.common_dir);
        let config = settings.config();
        let bases = [
            base_path(&config.worktree_base, &paths.main_root),
            state.root.join("scratch"),
        ];
        Ctx {
            git: Git::from_env().guarding_sessions(&bases, &paths.main_root),
            reader,
            paths,
            state,
            settings,
            config,
        }
    }

    /// The absolute dir under which session worktrees are created.
    pub fn worktree_base(&self) -> Utf8PathBuf {
        base_path(&self.config.worktree_base, &self.paths.main_root)
    }

    /// Who must sign approvals, when `review.require_signed` is on.
    pub fn signers(&self) -> Option<crate::review::approval::Signers> {
        crate::review::approval::Signers::from_config(&self.config.review, &self.paths.main_root)
    }

    /// Lines for `info/exclude`: the worktree base (when inside the main worktree) and the
    /// per-session metadata file.
    pub fn excludes(&self) -> Vec<String> {
        let mut lines = vec![format!("/{}", crate::state::SESSION_FILE)];
        let base = self.worktree_base();
        if let Ok(relative) = base.strip_prefix(&self.paths.main_root) {
            let relative = relative.as_str().trim_matches('/');
            if !relative.is_empty() {
                lines.push(format!("/{relative}/"));
            }
        }
        lines
    }

    /// Runs `init` if it has not been run yet (state dir, config, excludes, hooks), and says so.
    pub fn ensure_init(&self) -> anyhow::Result<()> {
        if self.state.is_initialized() {
            return Ok(());
        }
        if self.ensure_state()? {
            output::note(&format!("Initialized git-codex in {}", self.state.root));
            crate::commands::init::protect_default_branch(self)?;
            crate::commands::hooks::install_client(self)?;
        }
        Ok(())
    }

    /// Says loudly when git does not run git-codex's hooks here (a hook manager moved
    /// `core.hooksPath` or rewrote the hooks), with the command that puts them back.
    pub fn warn_if_gate_off(&self) {
        crate::hooks::health::warn_if_off(&self.git, &self.paths.main_root, &self.paths.common_dir);
    }

    /// The state dir, config and excludes, without hooks. Returns true when something was made.
    pub fn ensure_state(&self) -> anyhow::Result<bool> {
        let _lock = self.state.lock_creating()?;
        self.state.init(&self.paths.common_dir, &self.excludes())
    }
}

/// The worktree base as configured: `~` and `~/…` under the home directory, relative paths
/// under the main worktree's root.
pub fn base_path(base: &str, main_root: &Utf8Path) -> Utf8PathBuf {
    if base == "~"
        && let Ok(home) = std::env::var("HOME")
    {
        return Utf8PathBuf::from(home);
    }
    crate::config::expand_path(base, main_root)
}

/// `path` with `.`, `..` and every symlink of its existing part resolved; the part that does
/// not exist yet is normalized as written (it holds no symlink).
pub fn resolve_path(path: &Utf8Path) -> Utf8PathBuf {
    use camino::Utf8Component;
    if let Some(Ok(real)) = fs_err::canonicalize(path)
        .ok()
        .map(Utf8PathBuf::from_path_buf)
    {
        return real;
    }
    let mut out = Utf8PathBuf::from("/");
    let mut exists = true;
    for part in path.components() {
        match part {
            Utf8Component::RootDir | Utf8Component::Prefix(_) | Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                out.pop();
            }
            Utf8Component::Normal(name) => {
                out.push(name);
                if exists {
                    match fs_err::canonicalize(&out)
                        .ok()
                        .map(Utf8PathBuf::from_path_buf)
                    {
                        Some(Ok(real)) => out = real,
                        _ => exists = false,
                    }
                }
            }
        }
    }
    out
}

/// Why `base` (as configured) must not be this repository's worktree base, or `None`: it is,
/// contains or lies inside the main worktree's root or the git dir, so removing the sessions
/// under it could delete the repository (SPEC §8).
pub fn unsafe_worktree_base(base: &str, paths: &RepoPaths) -> Option<String> {
    let resolved = resolve_path(&base_path(base, &paths.main_root));
    let main = resolve_path(&paths.main_root);
    let git_dir = resolve_path(&paths.common_dir);
    if resolved == main {
        return Some(format!("it is the main worktree {main}"));
    }
    if main.starts_with(&resolved) {
        return Some(format!("{resolved} contains the main worktree {main}"));
    }
    if git_dir.starts_with(&resolved) || resolved.starts_with(&git_dir) {
        return Some(format!(
            "{resolved} is, contains or lies inside the git dir {git_dir}"
        ));
    }
    None
}

/// Refuses (exit 2) a worktree base that is or contains the repository, from any layer.
pub fn check_worktree_base(settings: &Settings, paths: &RepoPaths) -> anyhow::Result<()> {
    let Some((toml::Value::String(base), origin)) = settings.get("session.worktree_base") else {
        return Ok(());
    };
    match unsafe_worktree_base(base, paths) {
        None => Ok(()),
        Some(why) => Err(refuse_base(base, &origin.to_string(), &why).into()),
    }
}

/// The error for a worktree base that would put the repository at risk.
pub fn refuse_base(base: &str, origin: &str, why: &str) -> UserError {
    UserError::bad_input(format!(
        "session.worktree_base \"{base}\" ({origin}) is refused: {why}; removing sessions there could delete the repository"
    ))
    .hint("give session.worktree_base a directory of its own, e.g. \".codex-worktrees\" (the default), in the layer named above")
}
