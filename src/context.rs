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
        Ok(Ctx::with_settings(reader, paths, settings))
    }

    /// A context with settings already loaded (or the defaults, for `doctor` when the config
    /// is broken).
    pub fn with_settings(reader: Reader, paths: RepoPaths, settings: Settings) -> Ctx {
        let state = StateDir::new(&paths.common_dir);
        let config = settings.config();
        Ctx {
            git: Git::from_env(),
            reader,
            paths,
            state,
            settings,
            config,
        }
    }

    /// The absolute dir under which session worktrees are created.
    pub fn worktree_base(&self) -> Utf8PathBuf {
        let base = Utf8Path::new(&self.config.worktree_base);
        if base.is_absolute() {
            base.to_owned()
        } else {
            self.paths.main_root.join(base)
        }
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
            crate::commands::hooks::install_client(self)?;
        }
        Ok(())
    }

    /// The state dir, config and excludes, without hooks. Returns true when something was made.
    pub fn ensure_state(&self) -> anyhow::Result<bool> {
        let _lock = self.state.lock()?;
        self.state.init(&self.paths.common_dir, &self.excludes())
    }
}
