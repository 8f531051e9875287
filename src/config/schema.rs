//! Every configuration key, its type, default and meaning (SPEC §4). This one table drives
//! validation, defaults, `config list`, environment overrides and the commented default file.

use toml::Value;

use super::allow::Allowlist;
use super::checks::{
    check_base_lexically, check_branch_prefix, check_copy_pattern, check_env_name,
};
use super::duration;
use super::protected::ProtectedPatterns;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Count {
        min: i64,
        max: i64,
    },
    Bool,
    /// Any string.
    Text,
    /// A string that names a path; must not be empty.
    Path,
    /// A branch name prefix such as `codex/`.
    BranchPrefix,
    /// A duration (`90m`, `never`).
    Duration,
    /// A list of strings.
    List,
    /// A list of globs, relative and inside the main worktree (`session.copy_files`).
    CopyGlobs,
    /// A list of commands, each a string (split into words, no shell) or an array of words.
    Commands,
    /// One of the given words.
    Choice(&'static [&'static str]),
    /// `LOW-HIGH` ports.
    PortRange,
    /// An environment variable name.
    EnvName,
    /// A list of protected-branch patterns (src/config/protected.rs).
    Protected,
    /// The egress allowlist (src/config/allow.rs).
    Allowlist,
}

pub struct KeyDef {
    pub key: &'static str,
    pub kind: Kind,
    /// The default as a TOML value literal.
    pub default: &'static str,
    pub doc: &'static str,
}

macro_rules! key {
    ($key:literal, $kind:expr, $default:literal, $doc:literal) => {
        KeyDef {
            key: $key,
            kind: $kind,
            default: $default,
            doc: $doc,
        }
    };
}

pub const SANDBOX_MODES: &[&str] = &["strict", "network-enabled"];

pub static KEYS: &[KeyDef] = &[
    key!(
        "session.max_parallel",
        Kind::Count { min: 1, max: 1024 },
        "4",
        "live sessions allowed at once (maxParallelAgents)"
    ),
    key!(
        "session.worktree_base",
        Kind::Path,
        "\".codex-worktrees\"",
        "where session worktrees go, relative to the main worktree's root"
    ),
    key!(
        "session.branch_prefix",
        Kind::BranchPrefix,
        "\"codex/\"",
        "session branches are <branch_prefix><id>"
    ),
    key!(
        "session.ttl",
        Kind::Duration,
        "\"1h\"",
        "a session expires this long after its last activity; \"never\" disables expiry"
    ),
    key!(
        "session.trash_retention",
        Kind::Duration,
        "\"7d\"",
        "a removed worktree stays whole in the trash this long; \"never\" keeps it until deleted by hand"
    ),
    key!(
        "session.cleanup_on_exit",
        Kind::Bool,
        "true",
        "when a run ends, commit its work as a review snapshot and write the summary"
    ),
    key!(
        "session.copy_files",
        Kind::CopyGlobs,
        "[\".env\"]",
        "untracked or ignored files copied from the main worktree (globs)"
    ),
    key!(
        "session.setup",
        Kind::Commands,
        "[]",
        "commands run in a new worktree (argv, no shell); failure rolls the add back"
    ),
    key!(
        "session.port_range",
        Kind::PortRange,
        "\"20000-29999\"",
        "each session gets a distinct port, exported as CODEX_PORT"
    ),
    key!(
        "sandbox.mode",
        Kind::Choice(SANDBOX_MODES),
        "\"strict\"",
        "\"strict\" (no network) or \"network-enabled\""
    ),
    key!(
        "sandbox.allowed_domains",
        Kind::Allowlist,
        "[]",
        "strict mode: the only destinations the egress proxy lets through: host, *.host (names below it), host:port, ip:port (loopback and private addresses only so); checked by doctor"
    ),
    key!(
        "sandbox.agent_hosts",
        Kind::Bool,
        "true",
        "strict mode: a known agent (codex, claude, gemini, aider, opencode) may also reach its own model API hosts"
    ),
    key!(
        "sandbox.env_var",
        Kind::EnvName,
        "\"CODEX_NETWORK\"",
        "set to \"disabled\" or \"enabled\" for the agent"
    ),
    key!(
        "sandbox.filesystem",
        Kind::Choice(&["worktree", "open"]),
        "\"worktree\"",
        "\"worktree\": writes confined to the session; \"open\": no confinement"
    ),
    key!(
        "sandbox.writable_paths",
        Kind::List,
        "[]",
        "more dirs or files a confined agent may write (a missing one is made as a dir); known agents get their own state dir without this"
    ),
    key!(
        "review.auto_stage",
        Kind::Bool,
        "true",
        "review commits the agent's changes as a snapshot commit"
    ),
    key!(
        "review.require_approval",
        Kind::Bool,
        "true",
        "protected branches accept session commits only when approved"
    ),
    key!(
        "review.summary_format",
        Kind::Choice(&["markdown", "json"]),
        "\"markdown\"",
        "\"markdown\" or \"json\""
    ),
    key!(
        "review.max_patch_lines",
        Kind::Count {
            min: 1,
            max: 1_000_000
        },
        "2000",
        "lines of each file's patch the reports and the page show; longer ones are cut with a note"
    ),
    key!(
        "review.hook",
        Kind::Text,
        "\"\"",
        "program run by 'session review', e.g. \"./scripts/review-diff.sh\""
    ),
    key!(
        "review.hook_timeout",
        Kind::Duration,
        "\"5m\"",
        "the review hook is killed after this long"
    ),
    key!(
        "review.require_signed",
        Kind::Bool,
        "false",
        "approvals must be signed by a key in allowed_signers"
    ),
    key!(
        "review.allowed_signers",
        Kind::Text,
        "\"\"",
        "git allowed_signers file for signed approvals"
    ),
    key!(
        "review.protected",
        Kind::Protected,
        "[\"main\"]",
        "branch names or globs (\"release/*\") guarded by the gate"
    ),
    key!(
        "gate.reference_transaction",
        Kind::Bool,
        "true",
        "block fast-forwards, resets and rebases onto protected branches"
    ),
    key!(
        "platform.linux.recommended_client",
        Kind::Text,
        "\"codexmonitor\"",
        "the client doctor recommends on Linux"
    ),
    key!(
        "platform.macos.recommended_client",
        Kind::Text,
        "\"openai-codex-app\"",
        "the client doctor recommends on macOS"
    ),
    key!(
        "platform.windows.recommended_client",
        Kind::Text,
        "\"openai-codex-app\"",
        "the client doctor recommends on Windows"
    ),
];

pub fn find(key: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|def| def.key == key)
}

impl KeyDef {
    pub fn default_value(&self) -> Value {
        // The table above is ours and fixed; a test parses every default.
        toml::from_str::<toml::Table>(&format!("v = {}", self.default))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(String::new()))
    }

    /// The environment variable that overrides this key: `GIT_CODEX_SESSION_MAX_PARALLEL`.
    pub fn env_name(&self) -> String {
        format!(
            "GIT_CODEX_{}",
            self.key.replace('.', "_").to_ascii_uppercase()
        )
    }

    /// Checks a value from a file; the error says what was expected.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let found = || describe(value);
        match (self.kind, value) {
            (Kind::Count { min, max }, Value::Integer(n)) if (min..=max).contains(n) => Ok(()),
            (Kind::Count { min, max }, _) => Err(format!(
                "expected a whole number from {min} to {max}, found {}",
                found()
            )),
            (Kind::Bool, Value::Boolean(_)) => Ok(()),
            (Kind::Bool, _) => Err(format!("expected true or false, found {}", found())),
            (Kind::Text, Value::String(_)) => Ok(()),
            (Kind::Path, Value::String(s)) if !s.trim().is_empty() => check_base_lexically(s),
            (Kind::Path, _) => Err(format!("expected a non-empty path, found {}", found())),
            (Kind::BranchPrefix, Value::String(s)) => check_branch_prefix(s),
            (Kind::Duration, Value::String(s)) => duration::Ttl::parse(s).map(|_| ()),
            (Kind::Duration, Value::Integer(0)) => Ok(()),
            (Kind::Duration, _) => Err(format!(
                "expected a duration string such as \"90m\" or \"never\", found {}",
                found()
            )),
            (Kind::List, Value::Array(items)) if items.iter().all(Value::is_str) => Ok(()),
            (Kind::CopyGlobs, Value::Array(items)) if items.iter().all(Value::is_str) => items
                .iter()
                .filter_map(Value::as_str)
                .try_for_each(check_copy_pattern),
            (Kind::List | Kind::CopyGlobs, _) => {
                Err(format!("expected a list of strings, found {}", found()))
            }
            (Kind::Allowlist, Value::Array(items)) if items.iter().all(Value::is_str) => {
                let texts: Vec<String> = items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                Allowlist::parse(&texts).map(|_| ())
            }
            (Kind::Allowlist, _) => Err(format!(
                "expected a list of hosts such as [\"api.example.com\", \"127.0.0.1:11434\"], found {}",
                found()
            )),
            (Kind::Protected, Value::Array(items)) if items.iter().all(Value::is_str) => {
                let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                ProtectedPatterns::parse(&texts)
                    .map(|_| ())
                    .map_err(|err| err.to_string())
            }
            (Kind::Protected, _) => Err(format!(
                "expected a list of branch names or patterns such as [\"main\", \"release/*\"], found {}",
                found()
            )),
            (Kind::Commands, Value::Array(items)) => items.iter().try_for_each(check_command),
            (Kind::Commands, _) => Err(format!(
                "expected a list of commands (strings or arrays of strings), found {}",
                found()
            )),
            (Kind::Choice(words), Value::String(s)) if words.contains(&s.as_str()) => Ok(()),
            (Kind::Choice(words), _) => Err(format!(
                "expected one of {}, found {}",
                quoted_list(words),
                found()
            )),
            (Kind::PortRange, Value::String(s)) => parse_port_range(s).map(|_| ()),
            (Kind::EnvName, Value::String(s)) => check_env_name(s),
            (Kind::EnvName, _) => Err(format!(
                "expected an environment variable name (letters, digits, '_'), found {}",
                found()
            )),
            (Kind::Text | Kind::BranchPrefix | Kind::PortRange, _) => {
                Err(format!("expected a string, found {}", found()))
            }
        }
    }

    /// Turns text (an environment variable, `config set`) into a value of this key's type.
    pub fn parse_text(&self, text: &str) -> Result<Value, String> {
        let value = match self.kind {
            Kind::Count { .. } => match text.trim().parse::<i64>() {
                Ok(n) => Value::Integer(n),
                Err(_) => Value::String(text.to_string()),
            },
            Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Value::Boolean(true),
                "false" | "no" | "off" | "0" => Value::Boolean(false),
                _ => Value::String(text.to_string()),
            },
            Kind::Protected if text.trim_start().starts_with('[') => list_literal(text)?,
            // Every item counts: an empty one (`main,`, or nothing at all) is an error, not
            // a pattern dropped; `[]` protects nothing, on purpose.
            Kind::Protected => Value::Array(
                text.split(',')
                    .map(|s| Value::String(s.trim().to_string()))
                    .collect(),
            ),
            Kind::List | Kind::CopyGlobs | Kind::Commands | Kind::Allowlist
                if text.trim_start().starts_with('[') =>
            {
                toml::from_str::<toml::Table>(&format!("v = {text}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .ok_or_else(|| {
                        format!("expected a TOML list such as [\"a\", \"b\"], found {text}")
                    })?
            }
            Kind::List | Kind::CopyGlobs | Kind::Commands | Kind::Allowlist => Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            _ => Value::String(text.to_string()),
        };
        self.check(&value)?;
        Ok(value)
    }
}

fn list_literal(text: &str) -> Result<Value, String> {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .ok_or_else(|| format!("expected a TOML list such as [\"a\", \"b\"], found {text}"))
}

pub use super::words::split_words;

fn check_command(item: &Value) -> Result<(), String> {
    match item {
        Value::String(s) if !s.trim().is_empty() => split_words(s).map(|_| ()),
        Value::Array(words) if !words.is_empty() && words.iter().all(Value::is_str) => Ok(()),
        other => Err(format!(
            "expected each command to be a non-empty string or array of strings, found {}",
            describe(other)
        )),
    }
}

pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let expected =
        || format!("expected a port range \"LOW-HIGH\" within 1024-65535, found \"{text}\"");
    let (low, high) = text.split_once('-').ok_or_else(expected)?;
    let low: u16 = low.trim().parse().map_err(|_| expected())?;
    let high: u16 = high.trim().parse().map_err(|_| expected())?;
    if low < 1024 || low > high {
        return Err(expected());
    }
    Ok((low, high))
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

fn quoted_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid() {
        for def in KEYS {
            let value = def.default_value();
            assert_eq!(def.check(&value), Ok(()), "default of {}", def.key);
        }
    }
}
