//! The agent's world (SPEC §7): its environment, its network namespace, its process record.

pub mod allow;
pub mod bridge;
pub mod child;
pub mod confine;
pub mod context;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod terminal;

use std::process::Command;

use camino::Utf8Path;

use crate::config::Config;
use crate::state::SessionRecord;

/// Sets the session's environment on `cmd`: id, network policy, tmp, logs, port.
pub fn apply_env(
    cmd: &mut Command,
    config: &Config,
    record: &SessionRecord,
    tmp: &Utf8Path,
    logs: &Utf8Path,
) {
    let strict = record.sandbox == "strict";
    crate::git::scrub_env(cmd);
    cmd.env("CODEX_SESSION_ID", &record.id)
        .env(
            &config.network_env_var,
            if strict { "disabled" } else { "enabled" },
        )
        .env("CODEX_ALLOWED_DOMAINS", config.allowed_domains.join(","))
        .env("TMPDIR", tmp.as_str())
        .env("TMP", tmp.as_str())
        .env("TEMP", tmp.as_str())
        .env("CODEX_LOG_DIR", logs.as_str())
        .env("CODEX_PORT", record.port.to_string())
        .env("CODEX_WORKTREE", record.worktree.as_str());
}

/// The agent's argv, with the policy also given in Codex CLI's own terms when the program is
/// `codex`, so that Codex's sandbox agrees with ours.
pub fn agent_argv(command: &[String], strict: bool) -> Vec<String> {
    let mut argv = command.to_vec();
    let is_codex = command
        .first()
        .and_then(|p| Utf8Path::new(p).file_name())
        .is_some_and(|name| name == "codex");
    if is_codex {
        let access = if strict { "false" } else { "true" };
        argv.insert(1, "-c".to_string());
        argv.insert(
            2,
            format!("sandbox_workspace_write.network_access={access}"),
        );
    }
    argv
}
