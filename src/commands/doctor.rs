//! `git codex doctor [--json]`: the pre-flight check. Each check says ok, warn or fail, and
//! every failure comes with a hint. Exit 1 when a check fails.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

use camino::Utf8Path;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use super::session::prune;
use super::session::status::{SessionView, State};
use crate::cli::DoctorArgs;
use crate::config::Settings;
use crate::context::{Ctx, current_dir};
use crate::error::UserError;
use crate::git::Git;
use crate::git::read::Reader;
use crate::hooks::{self, CLIENT_HOOKS};
use crate::output::{self, escape};
use crate::sandbox::{confine, netns};

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

fn check(
    name: &'static str,
    status: &'static str,
    detail: impl Into<String>,
    hint: Option<&str>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        hint: hint.map(str::to_string),
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let git = Git::from_env();
    let cwd = current_dir()?;
    let mut checks = vec![git_version(&git, &cwd)];
    match Reader::discover(&cwd) {
        Err(err) => checks.push(check(
            "repository",
            "fail",
            format!("{err:#}"),
            Some("run doctor inside a repository"),
        )),
        Ok((reader, paths)) => {
            let state_config = crate::state::StateDir::new(&paths.common_dir).config_file();
            let loaded = Settings::load(Some(&state_config), &[]).and_then(|settings| {
                crate::context::check_worktree_base(&settings, &paths)?;
                Ok(settings)
            });
            let settings = match loaded {
                Ok(settings) => {
                    checks.push(check("config", "ok", "every config layer is valid", None));
                    settings
                }
                Err(err) => {
                    checks.push(check(
                        "config",
                        "fail",
                        format!("{err:#}"),
                        Some("fix it; 'git codex config validate' checks again"),
                    ));
                    Settings::defaults()
                }
            };
            let ctx = Ctx::with_settings(reader, paths, settings);
            repository_checks(&ctx, &mut checks);
        }
    }
    let failed = checks.iter().filter(|c| c.status == "fail").count();
    if args.json {
        output::json(&json!({"schema": 1, "ok": failed == 0, "checks": checks}))?;
    } else {
        for c in &checks {
            output::data(&format!("{:<5} {:<16} {}", c.status, c.name, c.detail));
            if let (Some(hint), true) = (&c.hint, c.status != "ok") {
                output::data(&format!("{:<22} hint: {hint}", ""));
            }
        }
    }
    if failed > 0 {
        return Err(UserError::runtime(format!("{failed} check(s) failed")).into());
    }
    Ok(())
}

fn git_version(git: &Git, cwd: &Utf8Path) -> Check {
    let Ok(text) = git.run(cwd, &["--version"]) else {
        return check(
            "git",
            "fail",
            "git cannot be run",
            Some("install git 2.39 or newer, or set GIT_CODEX_GIT"),
        );
    };
    let version = text.trim_start_matches("git version ").to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (2, 39) {
        check("git", "ok", format!("git {version}"), None)
    } else {
        check(
            "git",
            "fail",
            format!("git {version} is older than 2.39"),
            Some("upgrade git to 2.39 or newer"),
        )
    }
}

fn repository_checks(ctx: &Ctx, checks: &mut Vec<Check>) {
    checks.push(if ctx.state.is_initialized() {
        check("state", "ok", ctx.state.root.to_string(), None)
    } else {
        check(
            "state",
            "warn",
            format!("{} is not initialized", ctx.state.root),
            Some("run 'git codex init'"),
        )
    });
    checks.push(hooks_check(ctx));
    checks.push(sandbox_check(ctx));
    checks.push(confinement_check(ctx));
    checks.push(signing_check(ctx));
    checks.push(domains_check(&ctx.config.allowed_domains));
    checks.push(client_check(ctx));
    checks.push(trash_check(ctx));
    sessions_checks(ctx, checks);
}

fn hooks_check(ctx: &Ctx) -> Check {
    let hint = Some("run 'git codex hooks install'; 'git codex hooks status' shows each hook");
    let Ok(dir) = hooks::hooks_dir(&ctx.git, &ctx.paths.main_root) else {
        return check("hooks", "fail", "cannot find the hooks dir", hint);
    };
    let states = hooks::status(&dir, CLIENT_HOOKS);
    let missing: Vec<&str> = states
        .iter()
        .filter(|s| s.state != "ours")
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        return check(
            "hooks",
            "fail",
            format!("not installed in {dir}: {}", missing.join(", ")),
            hint,
        );
    }
    if let Some(problem) = hooks::worktree_problem(&ctx.git, &ctx.paths.main_root) {
        return check(
            "hooks",
            "fail",
            problem,
            Some("point core.hooksPath at an absolute path, or track the hooks dir"),
        );
    }
    if let Some(bin) = hooks::shim_binary(&dir.join("reference-transaction"))
        && !bin.exists()
        && which::which("git-codex").is_err()
    {
        return check(
            "hooks",
            "fail",
            format!("the shims call {bin}, which is gone, and git-codex is not on PATH"),
            Some("reinstall git-codex, then 'git codex hooks install'"),
        );
    }
    // Every worktree must resolve the same hooks dir (a relative core.hooksPath would not).
    let (records, _) = ctx.state.records().unwrap_or_default();
    for record in records.iter().filter(|r| r.worktree.is_dir()) {
        let theirs = hooks::hooks_dir(&ctx.git, &record.worktree).ok();
        if theirs.as_deref() != Some(dir.as_path()) {
            return check(
                "hooks",
                "fail",
                format!("session '{}' uses another hooks dir: {theirs:?}", record.id),
                hint,
            );
        }
    }
    check(
        "hooks",
        "ok",
        format!("installed and effective in every worktree ({dir})"),
        None,
    )
}

fn sandbox_check(ctx: &Ctx) -> Check {
    let mode = &ctx.config.sandbox_mode;
    let plan = netns::plan();
    match (mode.as_str(), plan.enforced()) {
        (_, true) => check(
            "sandbox",
            "ok",
            format!(
                "mode {mode}; agents get a network namespace whose one way out is the egress proxy ({})",
                plan.describe()
            ),
            None,
        ),
        ("strict", false) => check(
            "sandbox",
            "warn",
            format!(
                "mode strict, but the network cannot be cut here: {}",
                plan.problem.unwrap_or_default()
            ),
            Some(
                "install bubblewrap or allow unprivileged user namespaces; 'session run' warns until then",
            ),
        ),
        _ => check(
            "sandbox",
            "ok",
            format!("mode {mode}; the network cannot be cut here"),
            None,
        ),
    }
}

/// Whether `session run` can confine the agent's writes here (SPEC §7a).
fn confinement_check(ctx: &Ctx) -> Check {
    if !ctx.config.filesystem_confined {
        return check(
            "confinement",
            "warn",
            "sandbox.filesystem = \"open\": agents can write what you can, the gate's own files included",
            Some("set sandbox.filesystem = \"worktree\" (the default)"),
        );
    }
    let plan = confine::plan(true);
    match plan.problem {
        None => check(
            "confinement",
            "ok",
            "agents' writes are confined to their sessions (bwrap)",
            None,
        ),
        Some(problem) => check(
            "confinement",
            "warn",
            format!("agents' writes cannot be confined here: {problem}"),
            Some(
                "install bubblewrap (Debian: bubblewrap); 'session run' warns until then, and --require-sandbox refuses",
            ),
        ),
    }
}

/// Whether approvals must be signed, and whether the allowed signers file is there.
fn signing_check(ctx: &Ctx) -> Check {
    let Some(signers) = ctx.signers() else {
        return check(
            "signing",
            "ok",
            "approvals need not be signed (review.require_signed = false)",
            None,
        );
    };
    if signers.file.as_str().is_empty() {
        return check(
            "signing",
            "fail",
            "approvals must be signed, but review.allowed_signers is not set: none counts",
            Some("point review.allowed_signers at git's allowed-signers file"),
        );
    }
    if !signers.file.is_file() {
        return check(
            "signing",
            "fail",
            format!(
                "approvals must be signed, but the allowed signers file {} does not exist: none counts",
                signers.file
            ),
            Some("create it (lines of 'email key-type key'), or fix review.allowed_signers"),
        );
    }
    if which::which("ssh-keygen").is_err() {
        return check(
            "signing",
            "fail",
            "approvals must be signed, but ssh-keygen (which checks them) is not installed",
            Some("install OpenSSH's client (Debian: openssh-client)"),
        );
    }
    check(
        "signing",
        "ok",
        format!("approvals must be signed by a key in {}", signers.file),
        None,
    )
}

/// TCP connects to each domain's port 443, all at once, each bounded by 2 seconds.
fn domains_check(domains: &[String]) -> Check {
    if domains.is_empty() {
        return check("domains", "ok", "no allowed_domains configured", None);
    }
    let (sender, receiver) = mpsc::channel();
    for domain in domains {
        let (sender, domain) = (sender.clone(), domain.clone());
        std::thread::spawn(move || {
            let reachable = (domain.as_str(), 443)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .is_some_and(|addr| {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
                });
            let _ = sender.send((domain, reachable));
        });
    }
    drop(sender);
    let deadline = std::time::Instant::now() + Duration::from_millis(2500);
    let mut unreachable: Vec<String> = domains.to_vec();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match receiver.recv_timeout(left) {
            Ok((domain, true)) => unreachable.retain(|d| *d != domain),
            Ok((_, false)) => {}
            Err(_) => break,
        }
    }
    if unreachable.is_empty() {
        check(
            "domains",
            "ok",
            format!("all {} allowed domains reachable", domains.len()),
            None,
        )
    } else {
        check(
            "domains",
            "warn",
            format!("unreachable within 2 s: {}", unreachable.join(", ")),
            Some("check the network, or sandbox.allowed_domains"),
        )
    }
}

fn client_check(ctx: &Ctx) -> Check {
    let os = match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        _ => "linux",
    };
    let key = format!("platform.{os}.recommended_client");
    let client = ctx
        .settings
        .get(&key)
        .map(|(v, _)| crate::config::display_value(v))
        .unwrap_or_default();
    if client.is_empty() {
        return check(
            "client",
            "ok",
            format!("no recommended client for {os}"),
            None,
        );
    }
    match which::which(&client) {
        Ok(path) => check("client", "ok", format!("{client} ({path:?})"), None),
        Err(_) => check(
            "client",
            "warn",
            format!("the recommended client for {os}, {client}, is not on PATH"),
            Some("install it, or change platform.<os>.recommended_client"),
        ),
    }
}

fn sessions_checks(ctx: &Ctx, checks: &mut Vec<Check>) {
    let Ok((records, broken)) = ctx.state.records() else {
        return;
    };
    let now = Timestamp::now();
    let views: Vec<SessionView> = records
        .into_iter()
        .map(|r| SessionView::gather(ctx, r, now))
        .collect();
    let missing: Vec<&str> = views
        .iter()
        .filter(|v| v.state == State::Missing)
        .map(|v| v.record.id.as_str())
        .collect();
    let stale: Vec<&str> = views
        .iter()
        .filter(|v| v.state == State::StaleApproval)
        .map(|v| v.record.id.as_str())
        .collect();
    let bytes: u64 = views.iter().map(|v| dir_size(&v.record.worktree)).sum();
    checks.push(check(
        "disk",
        "ok",
        format!(
            "{} session worktree(s) use {:.1} MiB",
            views.len(),
            bytes as f64 / 1_048_576.0
        ),
        None,
    ));
    checks.push(if missing.is_empty() && broken.is_empty() {
        check("sessions", "ok", format!("{} session(s), every worktree present", views.len()), None)
    } else {
        let corrupt: Vec<String> = broken
            .iter()
            .map(|b| escape::quote(&b.id).into_owned())
            .collect();
        check(
            "sessions",
            "fail",
            format!("worktree gone: [{}]; corrupt records: [{}]", missing.join(", "), corrupt.join(", ")),
            Some("'git codex session prune' saves what is left and repairs them; 'session restore <id>' brings one back"),
        )
    });
    let orphans: Vec<String> = prune::preview(ctx, now)
        .unwrap_or_default()
        .into_iter()
        .filter(|(kind, _, _)| !matches!(*kind, "expired" | "missing-worktree"))
        .map(|(kind, id, _)| format!("{kind} {}", escape::quote(&id)))
        .collect();
    checks.push(if orphans.is_empty() {
        check("orphans", "ok", "none", None)
    } else {
        check(
            "orphans",
            "warn",
            orphans.join(", "),
            Some("'git codex session prune --dry-run' says what a prune would do"),
        )
    });
    checks.push(if stale.is_empty() {
        check("approvals", "ok", "no stale approvals", None)
    } else {
        check(
            "approvals",
            "warn",
            format!("stale: {}", stale.join(", ")),
            Some("review those sessions again"),
        )
    });
}

fn dir_size(dir: &Utf8Path) -> u64 {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => Utf8Path::from_path(&entry.path()).map_or(0, dir_size),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// What the trash holds (removed worktrees, kept whole for `session.trash_retention`).
fn trash_check(ctx: &Ctx) -> Check {
    use super::session::trash;
    let entries = trash::entries(&ctx.paths.common_dir).unwrap_or_default();
    let bytes: u64 = entries.iter().map(|e| trash::size_of(&e.dir)).sum();
    let keep = match ctx.config.trash_retention.seconds() {
        Some(secs) => format!(
            "kept {} (session.trash_retention)",
            crate::config::duration::format_seconds(secs)
        ),
        None => "kept until deleted (session.trash_retention = never)".to_string(),
    };
    check(
        "trash",
        "ok",
        format!(
            "{} removed worktree(s), {:.1} MiB in {}; {keep}",
            entries.len(),
            bytes as f64 / (1024.0 * 1024.0),
            trash::root(&ctx.paths.common_dir)
        ),
        None,
    )
}
