//! Typed configuration and its layers (SPEC §4): built-in defaults, the user file, the repo file,
//! the environment, then command-line flags; later wins. Every value is checked against
//! [`schema::KEYS`] and errors name the file, the key and what was expected.

pub mod allow;
pub mod checks;
pub mod duration;
pub mod edit;
pub mod import;
pub mod protected;
pub mod schema;
pub mod words;

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Context as _;
use camino::{Utf8Path, Utf8PathBuf};
use toml::Value;

use crate::error::UserError;
pub use duration::Ttl;
pub use protected::ProtectedPatterns;
use schema::KeyDef;

/// Where a value came from, as `config list --show-origin` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(Utf8PathBuf),
    Env(String),
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file:{path}"),
            Origin::Env(name) => write!(f, "env:{name}"),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// Every key's effective value and where it came from.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, (Value, Origin)>,
}

/// The user's config file: `$XDG_CONFIG_HOME/git-codex/config.toml` (or `~/.config/...`).
pub fn user_file() -> Option<Utf8PathBuf> {
    let base = match std::env::var("XDG_CONFIG_HOME") {
        Ok(dir) if !dir.is_empty() => Utf8PathBuf::from(dir),
        _ => Utf8PathBuf::from(std::env::var("HOME").ok()?).join(".config"),
    };
    Some(base.join("git-codex").join("config.toml"))
}

impl Settings {
    /// The built-in defaults alone.
    pub fn defaults() -> Self {
        Settings {
            values: schema::KEYS
                .iter()
                .map(|def| (def.key, (def.default_value(), Origin::Default)))
                .collect(),
        }
    }

    /// Loads every layer. `repo_file` is `<state-dir>/config.toml` when in a repository.
    pub fn load(
        repo_file: Option<&Utf8Path>,
        flags: &[(&'static str, Value)],
    ) -> anyhow::Result<Self> {
        let mut settings = Settings::defaults();
        if let Some(path) = user_file() {
            settings.apply_file(&path)?;
        }
        if let Some(path) = repo_file {
            settings.apply_file(path)?;
        }
        settings.apply_env()?;
        for (key, value) in flags {
            settings
                .values
                .insert(key, (value.clone(), Origin::CommandLine));
        }
        Ok(settings)
    }

    /// The files' layers alone (user, then repo), without the environment or flags: what
    /// outlives one command (the hooks' cache) must not keep a one-command override.
    pub fn load_files(repo_file: &Utf8Path) -> anyhow::Result<Self> {
        let mut settings = Settings::defaults();
        if let Some(path) = user_file() {
            settings.apply_file(&path)?;
        }
        settings.apply_file(repo_file)?;
        Ok(settings)
    }

    /// A server's settings (SPEC §6): the defaults and the repository's own file, nothing
    /// else. A push over a local path carries the pusher's environment (and its HOME), and
    /// the pusher is who the server's gate guards against.
    pub fn load_server(repo_file: &Utf8Path) -> anyhow::Result<Self> {
        let mut settings = Settings::defaults();
        settings.apply_file(repo_file)?;
        Ok(settings)
    }

    fn apply_file(&mut self, path: &Utf8Path) -> anyhow::Result<()> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err).context("cannot read the config file"),
        };
        for (key, value) in parse_file(path, &text)? {
            self.values
                .insert(key, (value, Origin::File(path.to_owned())));
        }
        Ok(())
    }

    fn apply_env(&mut self) -> anyhow::Result<()> {
        if let Some(text) = env_text("CODEX_NETWORK")? {
            let mode = match text.as_str() {
                "enabled" => "network-enabled",
                "disabled" => "strict",
                _ => {
                    return Err(UserError::bad_input(format!(
                        "environment variable CODEX_NETWORK: expected \"enabled\" or \"disabled\", found \"{text}\""
                    ))
                    .into());
                }
            };
            self.values.insert(
                "sandbox.mode",
                (
                    Value::String(mode.into()),
                    Origin::Env("CODEX_NETWORK".into()),
                ),
            );
        }
        for def in schema::KEYS {
            let name = def.env_name();
            if let Some(text) = env_text(&name)? {
                let value = def.parse_text(&text).map_err(|why| {
                    UserError::bad_input(format!(
                        "environment variable {name} ({}): {why}",
                        def.key
                    ))
                })?;
                self.values.insert(def.key, (value, Origin::Env(name)));
            }
        }
        reject_unknown_env()
    }

    pub fn get(&self, key: &str) -> Option<&(Value, Origin)> {
        self.values.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value, &Origin)> {
        self.values.iter().map(|(k, (v, o))| (*k, v, o))
    }

    fn string(&self, key: &str) -> String {
        match self.values.get(key) {
            Some((Value::String(s), _)) => s.clone(),
            _ => String::new(),
        }
    }

    fn strings(&self, key: &str) -> Vec<String> {
        match self.values.get(key) {
            Some((Value::Array(items), _)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn boolean(&self, key: &str) -> bool {
        matches!(self.values.get(key), Some((Value::Boolean(true), _)))
    }

    fn ttl(&self, key: &str) -> Ttl {
        match self.values.get(key) {
            Some((Value::String(s), _)) => Ttl::parse(s).unwrap_or(Ttl::Never),
            _ => Ttl::Never,
        }
    }

    /// The typed view used by commands. Values were checked when loaded.
    pub fn config(&self) -> Config {
        let max_parallel = match self.values.get("session.max_parallel") {
            Some((Value::Integer(n), _)) => u32::try_from(*n).unwrap_or(1),
            _ => 4,
        };
        let setup = match self.values.get("session.setup") {
            Some((Value::Array(items), _)) => items.iter().filter_map(command_words).collect(),
            _ => Vec::new(),
        };
        Config {
            max_parallel,
            worktree_base: self.string("session.worktree_base"),
            branch_prefix: self.string("session.branch_prefix"),
            ttl: self.ttl("session.ttl"),
            trash_retention: self.ttl("session.trash_retention"),
            copy_files: self.strings("session.copy_files"),
            setup,
            port_range: schema::parse_port_range(&self.string("session.port_range"))
                .unwrap_or((20000, 29999)),
            sandbox_mode: self.string("sandbox.mode"),
            filesystem_confined: self.string("sandbox.filesystem") != "open",
            writable_paths: self.strings("sandbox.writable_paths"),
            allowed_domains: self.strings("sandbox.allowed_domains"),
            agent_hosts: self.boolean("sandbox.agent_hosts"),
            network_env_var: self.string("sandbox.env_var"),
            cleanup_on_exit: self.boolean("session.cleanup_on_exit"),
            gate_reference_transaction: self.boolean("gate.reference_transaction"),
            review: ReviewConfig {
                auto_stage: self.boolean("review.auto_stage"),
                require_approval: self.boolean("review.require_approval"),
                summary_format: self.string("review.summary_format"),
                max_patch_lines: match self.values.get("review.max_patch_lines") {
                    Some((Value::Integer(n), _)) => usize::try_from(*n).unwrap_or(2000),
                    _ => 2000,
                },
                hook: self.string("review.hook"),
                hook_timeout: self.ttl("review.hook_timeout"),
                // Checked when loaded; should it still not parse, every branch is protected.
                protected: ProtectedPatterns::parse(&self.strings("review.protected"))
                    .unwrap_or_else(|_| ProtectedPatterns::everything()),
                require_signed: self.boolean("review.require_signed"),
                allowed_signers: self.string("review.allowed_signers"),
            },
        }
    }
}

/// A path from the configuration: `~/…` under the home directory, relative paths under `base`.
pub fn expand_path(path: &str, base: &Utf8Path) -> Utf8PathBuf {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => Utf8PathBuf::from(home).join(rest),
        _ => base.join(path),
    }
}

/// The typed configuration that commands read.
#[derive(Debug, Clone)]
pub struct Config {
    pub max_parallel: u32,
    pub worktree_base: String,
    pub branch_prefix: String,
    pub ttl: Ttl,
    /// How long a removed worktree stays in the trash.
    pub trash_retention: Ttl,
    pub copy_files: Vec<String>,
    pub setup: Vec<Vec<String>>,
    pub port_range: (u16, u16),
    pub sandbox_mode: String,
    /// `sandbox.filesystem = "worktree"`: the agent writes only its own session (SPEC §7a).
    pub filesystem_confined: bool,
    /// More paths a confined agent may write (`~/` is the home directory).
    pub writable_paths: Vec<String>,
    pub allowed_domains: Vec<String>,
    /// Whether a known agent's model API hosts are allowed in strict mode.
    pub agent_hosts: bool,
    pub network_env_var: String,
    pub cleanup_on_exit: bool,
    pub review: ReviewConfig,
    pub gate_reference_transaction: bool,
}

#[derive(Debug, Clone)]
pub struct ReviewConfig {
    pub auto_stage: bool,
    pub require_approval: bool,
    /// "markdown" or "json".
    pub summary_format: String,
    /// How many lines of each file's patch the reports show.
    pub max_patch_lines: usize,
    /// A program path, relative to the main worktree unless absolute; empty for none.
    pub hook: String,
    pub hook_timeout: Ttl,
    /// The branches guarded by the gate.
    pub protected: ProtectedPatterns,
    /// Approvals count only when signed by a key of `allowed_signers`.
    pub require_signed: bool,
    /// git's allowed-signers file; relative to the repository's top unless absolute.
    pub allowed_signers: String,
}

fn command_words(item: &Value) -> Option<Vec<String>> {
    match item {
        Value::String(s) => schema::split_words(s).ok(),
        Value::Array(words) => Some(
            words
                .iter()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn env_text(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(text) => Ok(Some(text)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(UserError::bad_input(format!(
            "environment variable {name} is not valid UTF-8"
        ))
        .into()),
    }
}

/// `GIT_CODEX_SESSION_MAX_PARALEL` (a typo) must not be ignored silently.
fn reject_unknown_env() -> anyhow::Result<()> {
    let sections: Vec<String> = schema::KEYS
        .iter()
        .filter_map(|d| d.key.split('.').next())
        .map(|s| format!("GIT_CODEX_{}_", s.to_ascii_uppercase()))
        .collect();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let in_section = sections
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()));
        if in_section && !schema::KEYS.iter().any(|d| d.env_name() == name) {
            return Err(UserError::bad_input(format!(
                "environment variable {name} names no configuration key"
            ))
            .hint("run 'git codex config list' to see the keys; GIT_CODEX_<SECTION>_<KEY> overrides one")
            .into());
        }
    }
    Ok(())
}

/// Parses and checks one config file's text: every key known, every value of its type.
pub fn parse_file(path: &Utf8Path, text: &str) -> anyhow::Result<Vec<(&'static str, Value)>> {
    let table: toml::Table = toml::from_str(text).map_err(|err| {
        UserError::bad_input(format!(
            "invalid TOML in {path}: {}",
            err.to_string().trim_end()
        ))
        .hint("fix the file, or run 'git codex config validate' after editing it")
    })?;
    let mut leaves = Vec::new();
    flatten("", &Value::Table(table), &mut leaves);
    let mut checked = Vec::new();
    for (key, value) in leaves {
        let def: &KeyDef = schema::find(&key).ok_or_else(|| {
            UserError::bad_input(format!("{path}: unknown key '{key}'"))
                .hint("run 'git codex config list' to see every key")
        })?;
        def.check(&value).map_err(|why| {
            UserError::bad_input(format!("{path}: key '{key}': {why}"))
                .hint(format!("edit {path}: change or delete that key"))
        })?;
        checked.push((def.key, value));
    }
    Ok(checked)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Table(table) => {
            for (name, inner) in table {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                // A section given as a plain value is an unknown key, reported by the caller.
                flatten(&key, inner, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// A value as `config get` and `config list` print it: strings bare, the rest as TOML.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
