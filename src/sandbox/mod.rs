//! The agent's world (SPEC §7): its environment, its network namespace, its process record.

pub mod admin;
pub mod allow;
pub mod bridge;
pub mod child;
pub mod confine;
pub mod context;
pub mod gate;
pub mod git_shim;
pub mod import;
pub mod launch;
pub mod lfs;
pub mod modules;
pub mod netns;
pub mod process;
pub mod profiles;
pub mod proxy;
pub mod reattach;
pub mod settle;
pub mod sockets;
pub mod stores;
pub mod terminal;
pub mod writable;

use std::process::Command;

use camino::Utf8Path;

use crate::context::Ctx;
use crate::state::SessionRecord;

/// Variables that name a door out of the sandbox: a socket of the person's terminal
/// multiplexer, ssh-agent, session bus, container engine, editor or display. None reaches
/// the agent; its own proxy variables replace the person's.
pub const HOST_DOORS: &[&str] = &[
    "TMUX",
    "TMUX_PANE",
    "STY",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_SYSTEM_BUS_ADDRESS",
    "DOCKER_HOST",
    "CONTAINER_HOST",
    "XDG_RUNTIME_DIR",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "PULSE_SERVER",
    "KITTY_LISTEN_ON",
    "WEZTERM_UNIX_SOCKET",
    "ALACRITTY_SOCKET",
    "NVIM",
    "NVIM_LISTEN_ADDRESS",
    "EMACS_SOCKET_NAME",
    "VSCODE_IPC_HOOK_CLI",
    "VSCODE_GIT_IPC_HANDLE",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "JOURNAL_STREAM",
    "INVOCATION_ID",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
];

/// Sets the session's environment on `cmd`: id, network policy, tmp, logs, port; and takes
/// away every variable that names a door out (see [`HOST_DOORS`]).
pub fn apply_env(
    cmd: &mut Command,
    ctx: &Ctx,
    record: &SessionRecord,
    mode: &str,
    tmp: &Utf8Path,
    logs: &Utf8Path,
) {
    let strict = mode == "strict";
    crate::git::scrub_env(cmd);
    for name in HOST_DOORS {
        cmd.env_remove(name);
    }
    cmd.env("CODEX_SESSION_ID", &record.id)
        .env(
            &ctx.config.network_env_var,
            if strict { "disabled" } else { "enabled" },
        )
        .env(
            "CODEX_ALLOWED_DOMAINS",
            ctx.config.allowed_domains.join(","),
        )
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
