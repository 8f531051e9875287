//! `git codex doctor [--json]`: the pre-flight check. Each check says ok, warn or fail, and
//! every failure comes with a hint. Exit 1 when a check fails.

mod journal;
mod merges;

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use camino::Utf8Path;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

mod leftovers;

use super::session::prune;
use super::session::status::{SessionView, State};
use crate::cli::DoctorArgs;
use crate::config::Settings;
use crate::context::{Ctx, current_dir};
use crate::error::UserError;
use crate::git::Git;
use crate::git::read::Reader;
use crate::hooks::health;
use crate::output::{self, escape};
use crate::sandbox::allow::{Allowlist, Pattern, Policy};
use crate::sandbox::{confine, netns, proxy};

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
        Err(err) => {
            // The repository's own hint when there is one (a format git-codex cannot read).
            let hint = err
                .downcast_ref::<UserError>()
                .and_then(|e| e.hints.first().cloned())
                .unwrap_or_else(|| "run doctor inside a repository".to_string());
            checks.push(check(
                "repository",
                "fail",
                format!("{err:#}"),
                Some(hint.as_str()),
            ));
        }
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
            // What cannot be repaired (a state dir git-codex cannot write) the checks then name.
            if args.repair
                && let Err(err) = leftovers::repair(&ctx)
            {
                output::warning(&format!("git-codex doctor --repair: {err:#}"));
            }
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
    checks.push(protected_check(ctx));
    checks.push(sandbox_check(ctx));
    checks.push(confinement_check(ctx));
    checks.push(signing_check(ctx));
    checks.push(domains_check(&ctx.config.allowed_domains));
    checks.push(client_check(ctx));
    checks.push(trash_check(ctx));
    checks.push(journal::interrupted_check(ctx));
    checks.push(merges::merges_check(ctx));
    leftovers::checks(ctx, checks);
    sessions_checks(ctx, checks);
}

fn hooks_check(ctx: &Ctx) -> Check {
    let hint = Some("run 'git codex hooks install'; 'git codex hooks status' shows each hook");
    let Ok(health) = health::check(&ctx.git, &ctx.paths.main_root, &ctx.paths.common_dir) else {
        return check("hooks", "fail", "cannot find the hooks dir", hint);
    };
    let dir = &health.dir;
    let problems = health.problems();
    if !problems.is_empty() {
        return check("hooks", "fail", problems.join("; "), Some(&health.repair()));
    }
    if let Some(problem) = health::lfs_problem(&health, &ctx.paths.main_root, &ctx.paths.common_dir)
    {
        return check("hooks", "warn", problem, Some(health::LFS_REPAIR));
    }
    let (records, _) = ctx.state.records().unwrap_or_default();
    let worktrees: Vec<_> = records.into_iter().map(|r| (r.id, r.worktree)).collect();
    if let Some(problem) = health::session_off_dir(dir, &worktrees) {
        return check("hooks", "fail", problem, Some(health::SESSION_REPAIR));
    }
    check(
        "hooks",
        "ok",
        format!("installed and effective in every worktree ({dir})"),
        None,
    )
}

/// The protected patterns that match no local branch (`init` warns about them too).
pub fn unmatched_patterns(ctx: &Ctx, patterns: &[String]) -> anyhow::Result<Vec<String>> {
    let branches: Vec<String> = ctx
        .reader
        .branches_with_prefix("refs/heads/")?
        .into_iter()
        .map(|(name, _)| name.trim_start_matches("refs/heads/").to_string())
        .collect();
    let mut unmatched = Vec::new();
    for pattern in patterns {
        let Ok(one) =
            crate::config::protected::ProtectedPatterns::parse(std::slice::from_ref(pattern))
        else {
            continue;
        };
        if !branches.iter().any(|b| one.matches(b)) {
            unmatched.push(pattern.clone());
        }
    }
    Ok(unmatched)
}

/// Whether `review.protected` protects a branch that exists (on a `master` repository the
/// built-in `main` protects nothing).
fn protected_check(ctx: &Ctx) -> Check {
    let patterns: Vec<String> = ctx.config.review.protected.to_strings();
    match unmatched_patterns(ctx, &patterns) {
        Ok(unmatched) if unmatched.is_empty() => check(
            "protected",
            "ok",
            format!("review.protected: {}", patterns.join(", ")),
            None,
        ),
        Ok(unmatched) => {
            let default = ctx
                .reader
                .default_branch()
                .unwrap_or_else(|| "main".to_string());
            check(
                "protected",
                "warn",
                format!(
                    "review.protected names {} but no branch matches",
                    unmatched.join(", ")
                ),
                Some(&format!(
                    "protect the branch you land on, e.g. git codex config set review.protected '[\"{default}\"]'"
                )),
            )
        }
        Err(err) => check(
            "protected",
            "warn",
            format!("cannot list branches: {err:#}"),
            None,
        ),
    }
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

/// Checks each allowed destination along the agent's path: the proxy's policy, its resolving
/// and its connecting (`proxy::check`), all at once, each bounded by 2 seconds. A name without
/// a port is tried on 443; `*.host` names no one host and is not tried.
fn domains_check(domains: &[String]) -> Check {
    if domains.is_empty() {
        return check("domains", "ok", "no allowed_domains configured", None);
    }
    let allowlist = match Allowlist::parse(domains) {
        Ok(allowlist) => allowlist,
        Err(err) => {
            return check(
                "domains",
                "fail",
                format!("sandbox.allowed_domains: {err}"),
                Some("fix it with 'git codex config set sandbox.allowed_domains …'"),
            );
        }
    };
    let targets = destinations(&allowlist);
    let untried = domains.len() - targets.len();
    let tried = targets.len();
    let policy = Policy {
        allowlist,
        allow_all: false,
        host_addrs: crate::sandbox::allow::host_addresses(),
    };
    let (refused, unreachable) = probe(policy, targets);
    let mut problems = Vec::new();
    if !refused.is_empty() {
        problems.push(format!("the proxy would refuse {}", refused.join(", ")));
    }
    if !unreachable.is_empty() {
        problems.push(format!(
            "unreachable within 2 s: {}",
            unreachable.join(", ")
        ));
    }
    if problems.is_empty() {
        let mut detail = format!("all {tried} allowed destinations reachable");
        if untried > 0 {
            detail.push_str(&format!(" ({untried} *.host entries not tried)"));
        }
        return check("domains", "ok", detail, None);
    }
    let hint = if refused.is_empty() {
        "check the network, or sandbox.allowed_domains"
    } else {
        "a loopback or private address is reached only when listed as ip:port"
    };
    check("domains", "warn", problems.join("; "), Some(hint))
}

/// A destination to try: host, port, and how `host:port` shows.
struct Destination {
    host: String,
    port: u16,
    shown: String,
}

fn destinations(allowlist: &Allowlist) -> Vec<Destination> {
    let mut out = Vec::new();
    for entry in allowlist.entries() {
        let port = entry.port.unwrap_or(443);
        match &entry.pattern {
            Pattern::Name(name) => out.push(Destination {
                host: name.clone(),
                port,
                shown: format!("{name}:{port}"),
            }),
            Pattern::Ip(ip) => out.push(Destination {
                host: ip.to_string(),
                port,
                shown: SocketAddr::new(*ip, port).to_string(),
            }),
            Pattern::Below(_) => {}
        }
    }
    out
}

/// Tries every destination at once; the ones refused by the policy and the ones that did not
/// answer in time, each with why.
fn probe(policy: Policy, targets: Vec<Destination>) -> (Vec<String>, Vec<String>) {
    let policy = Arc::new(policy);
    let mut silent: Vec<String> = targets.iter().map(|t| t.shown.clone()).collect();
    let (sender, receiver) = mpsc::channel();
    for target in targets {
        let (sender, policy) = (sender.clone(), policy.clone());
        std::thread::spawn(move || {
            let result = proxy::check(&policy, &target.host, target.port, Duration::from_secs(2));
            let _ = sender.send((target.shown, result));
        });
    }
    drop(sender);
    let deadline = std::time::Instant::now() + Duration::from_millis(2500);
    let (mut refused, mut unreachable) = (Vec::new(), Vec::new());
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok((shown, result)) = receiver.recv_timeout(left) else {
            break;
        };
        silent.retain(|s| *s != shown);
        if let Err(why) = result {
            match why.strip_prefix("refused: ") {
                Some(why) => refused.push(format!("{shown} ({why})")),
                None => unreachable.push(format!("{shown} ({why})")),
            }
        }
    }
    unreachable.extend(silent.into_iter().map(|s| format!("{s} (no answer)")));
    (refused, unreachable)
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
    let Ok((records, mut broken)) = ctx.state.records() else {
        return;
    };
    // A dir at a record path is the record-paths check's, with its own repair.
    broken.retain(|b| !b.path.is_dir());
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
    // A worktree git no longer knows (its .git file gone, its admin dir gone or not naming it):
    // git run there finds the main repository above it.
    let unlinked: Vec<String> = views
        .iter()
        .filter(|v| v.state != State::Missing)
        .filter(|v| {
            crate::git::worktrees::owned_admin_dir(&v.record.worktree, &ctx.paths.common_dir)
                .is_none()
        })
        .map(|v| escape::quote(&v.record.id).into_owned())
        .collect();
    if !unlinked.is_empty() {
        checks.push(check(
            "worktrees",
            "fail",
            format!(
                "not a git worktree any more (its .git file or git's admin dir is gone): {}",
                unlinked.join(", ")
            ),
            Some(&format!(
                "{} moves it whole to the trash (its .git is written back first when git still has its admin dir); 'git codex session restore <id>' brings it back",
                unlinked
                    .iter()
                    .map(|id| format!("'git codex session remove {id}'"))
                    .collect::<Vec<_>>()
                    .join(", then ")
            )),
        ));
    }
    // A session branch deleted by hand: the session lists as branch-missing (or running,
    // while its agent is). Its last commit is the newest its worktree's HEAD reflog names, else its base.
    let branchless: Vec<(String, String)> = views
        .iter()
        .filter(|v| v.state != State::Missing && v.tip.is_none())
        .map(|v| {
            let last =
                crate::git::worktrees::admin_dir_of(&v.record.worktree, &ctx.paths.common_dir)
                    .and_then(|admin| {
                        crate::git::ledger::commit_ids_in(&admin.join("logs/HEAD"))
                            .last()
                            .map(|id| id.to_string())
                    })
                    .unwrap_or_else(|| v.record.base_commit.clone());
            (
                format!("{} ({})", escape::quote(&v.record.id), v.record.branch),
                format!("git branch {} {last}", v.record.branch),
            )
        })
        .collect();
    checks.push(if branchless.is_empty() {
        check("branches", "ok", "every session has its branch", None)
    } else {
        let names: Vec<&str> = branchless.iter().map(|(n, _)| n.as_str()).collect();
        let fixes: Vec<&str> = branchless.iter().map(|(_, f)| f.as_str()).collect();
        check(
            "branches",
            "warn",
            format!("session branch gone: {}", names.join(", ")),
            Some(&format!(
                "recreate it at its last commit ({}), or remove the session with 'git codex session remove <id>' (its work is snapshotted first)",
                fixes.join("; ")
            )),
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
