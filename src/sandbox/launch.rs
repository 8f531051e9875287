//! Starting something in a session's sandbox (SPEC §7, §7a): the agent (`session run`) and the
//! review hook (`session review`) get the same world. The mode decides the egress policy; the
//! network namespace (both modes, where one can be made) leaves the egress proxy as the one
//! way out; bubblewrap confines writes and hides the person's sockets; a known agent gets its
//! profile (model hosts, its own state dir in the session's state).

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use camino::Utf8PathBuf;

use super::allow::{Allowlist, Policy};
use super::confine::{self, Confinement, FsPlan};
use super::gate::Gate;
use super::netns::{self, NetworkPlan};
use super::profiles::{self, Profile};
use super::proxy::{self, ProxyHandle};
use crate::context::Ctx;
use crate::error::UserError;
use crate::state::SessionRecord;

/// The port the proxy is offered on inside the namespace (its own loopback), unless an allowed
/// loopback destination takes it.
const PROXY_PORT: u16 = 3128;

/// Where a run's sandbox mode came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeSource {
    /// `session run --sandbox MODE`.
    RunFlag,
    /// `session add --sandbox MODE` pinned it for the session.
    Session,
    /// `sandbox.mode`, as configured now.
    Config,
}

/// The sandbox mode of one run: `--sandbox` of the run, else the mode the session was added
/// with explicitly, else `sandbox.mode` as it is now (a changed mode applies to existing
/// sessions' next runs).
pub fn mode_of(ctx: &Ctx, record: &SessionRecord, flag: Option<&str>) -> (String, ModeSource) {
    match flag {
        Some(mode) => (mode.to_string(), ModeSource::RunFlag),
        None if record.sandbox_pinned => (record.sandbox.clone(), ModeSource::Session),
        None => (ctx.config.sandbox_mode.clone(), ModeSource::Config),
    }
}

impl ModeSource {
    fn describe(self) -> &'static str {
        match self {
            ModeSource::RunFlag => "from --sandbox",
            ModeSource::Session => "from session add --sandbox",
            ModeSource::Config => "from sandbox.mode",
        }
    }
}

/// What to start, and where its proxy log lines go.
pub struct Request<'a> {
    pub record: &'a SessionRecord,
    pub mode: &'a str,
    pub source: ModeSource,
    /// The program and its arguments, as the person gave them.
    pub command: &'a [String],
    /// A known agent gets its profile; the review hook does not.
    pub agent: bool,
    /// The reviewer's feedback for the agent (a rejection's message): in a file named by
    /// `CODEX_REVIEW_FEEDBACK`, and in the agent's instructions file where its profile has one.
    pub feedback: Option<&'a str>,
    pub proxy_log: Arc<Mutex<dyn Write + Send>>,
}

/// A sandbox ready to start: the command (cwd and environment set), and what must live as
/// long as the run does.
pub struct Launch {
    pub command: Command,
    /// The argv inside the sandbox (the agent's, with its policy in its own terms).
    pub argv: Vec<String>,
    pub fs: FsPlan,
    pub confinement: Option<Confinement>,
    /// Stops the proxy and removes its socket when dropped: keep it until the run ends.
    pub proxy: Option<ProxyHandle>,
    /// The agent's start waits on it until the run is recorded (see `gate`); `None` for the
    /// review hook.
    pub gate: Option<Gate>,
    /// One line for the person and the log: mode, network, filesystem, profile.
    pub describe: String,
}

impl Launch {
    /// Whether the network policy holds (a namespace whose only way out is the proxy).
    pub fn network_enforced(&self) -> bool {
        self.proxy.is_some()
    }
}

/// The network and filesystem plans for a run, before anything is made: the caller warns or
/// refuses on their problems.
pub fn plans(ctx: &Ctx) -> (NetworkPlan, FsPlan) {
    (netns::plan(), confine::plan(ctx.config.filesystem_confined))
}

/// Readies the sandbox for `req` under the given plans: the profile's state dir, the proxy
/// (running from now on), the confinement, the command.
pub fn prepare(
    ctx: &Ctx,
    req: &Request<'_>,
    network: NetworkPlan,
    fs: FsPlan,
) -> anyhow::Result<Launch> {
    let record = req.record;
    let strict = req.mode == "strict";
    let profile = if req.agent {
        profiles::detect(req.command)
    } else {
        None
    };
    let argv = super::agent_argv(req.command, strict);
    let tmp = ctx.state.tmp_dir(&record.id);
    let logs = ctx.state.logs_dir(&record.id);
    fs_err::create_dir_all(&tmp)?;
    fs_err::create_dir_all(&logs)?;
    let home = super::writable::home();
    let agent_state = match profile {
        Some(p) if p.state_var.is_some() => Some(profiles::seed(
            &ctx.state.root.join("agents").join(&record.id),
            p,
            home.as_deref(),
            req.feedback,
        )?),
        _ => None,
    };

    let entries = allowed_entries(ctx, profile, strict);
    let allowlist = Allowlist::parse(&entries).map_err(|err| {
        UserError::bad_input(format!("sandbox.allowed_domains: {err}"))
            .hint("fix it with 'git codex config set sandbox.allowed_domains …'")
    })?;
    let forwards = loopback_forwards(&entries);
    let proxy_port = (PROXY_PORT..)
        .find(|p| !forwards.iter().any(|f| f.port() == *p))
        .unwrap_or(PROXY_PORT);
    let (proxy, socket) = if network.enforced() {
        let socket = proxy_socket_path(ctx, &record.id)?;
        let handle = proxy::start(
            &socket,
            Policy {
                allowlist,
                allow_all: !strict,
                host_addrs: super::allow::host_addresses(),
            },
            Arc::clone(&req.proxy_log),
        )
        .map_err(|err| {
            UserError::runtime(format!("cannot start the egress proxy at {socket}: {err}"))
        })?;
        (Some(handle), Some(socket))
    } else {
        (None, None)
    };

    let self_exe = self_exe()?;
    let confinement = match &fs.bwrap {
        Some(bwrap) => {
            let mut writable = vec![tmp.clone(), logs.clone()];
            writable.extend(agent_state.iter().cloned());
            writable.extend(super::writable::writable_paths(ctx, home.as_deref())?);
            let mut keep = vec![ctx.paths.main_root.clone(), ctx.paths.common_dir.clone()];
            keep.extend(home.iter().cloned());
            keep.push(self_exe.clone());
            // The person's PATH (NixOS keeps it under /run), and what the person named on the
            // command line (a script in /tmp, say): theirs to show the agent.
            if let Some(path) = std::env::var_os("PATH") {
                keep.extend(
                    std::env::split_paths(&path)
                        .filter_map(|p| Utf8PathBuf::from_path_buf(p).ok())
                        .filter(|p| p.is_absolute()),
                );
            }
            keep.extend(
                req.command
                    .iter()
                    .map(Utf8PathBuf::from)
                    .filter(|p| p.is_absolute() && p.exists()),
            );
            let _lock = ctx.state.lock()?;
            Some(confine::prepare(
                ctx,
                bwrap,
                record,
                writable,
                keep,
                socket.clone(),
                home.clone(),
            )?)
        }
        None => None,
    };

    let mut inner: Vec<String> = Vec::new();
    if let Some(socket) = &socket {
        inner.extend([
            self_exe.to_string(),
            "sandbox-exec".to_string(),
            "--proxy-socket".to_string(),
            socket.to_string(),
            "--proxy-port".to_string(),
            proxy_port.to_string(),
        ]);
        for forward in &forwards {
            inner.extend(["--forward".to_string(), forward.to_string()]);
        }
        inner.push("--".to_string());
    }
    inner.extend(argv.iter().cloned());
    let words = netns::words(&network, confinement.as_ref(), &inner);
    // The agent runs nothing before its run is recorded; the review hook is not recorded.
    let gate = req.agent.then(Gate::new).transpose()?;
    let words = match &gate {
        Some(gate) => gate.wrap(self_exe.as_str(), words, confinement.is_some()),
        None => words,
    };
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    if let Some(gate) = &gate {
        gate.install(&mut command);
    }
    if socket.is_some() {
        // bwrap and sandbox-exec stand between git-codex and the agent: a Ctrl-C (the group's
        // signals) is the agent's alone, and sandbox-exec gives the agent their defaults back.
        // SAFETY: only signal(2), async-signal-safe, between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            command.pre_exec(|| {
                super::child::ignore_group_signals();
                Ok(())
            });
        }
    }
    command.current_dir(&record.worktree);
    super::apply_env(&mut command, ctx, record, req.mode, &tmp, &logs);
    if let (Some(p), Some(dir)) = (profile, &agent_state)
        && let Some(var) = p.state_var
    {
        command.env(var, dir.as_str());
    }
    if let Some(c) = &confinement {
        command.envs(confine::git_env(c));
    }
    // git-codex's own dir: readable in the sandbox, not the agent's to write.
    let feedback_file = ctx
        .state
        .root
        .join("reviews")
        .join(&record.id)
        .join("feedback.md");
    match req.feedback {
        Some(feedback) => {
            crate::state::replace_file(&feedback_file, feedback.as_bytes())?;
            command.env("CODEX_REVIEW_FEEDBACK", feedback_file.as_str());
        }
        None => {
            if req.agent {
                // Feedback on a tip the agent has since moved on from is not for this run.
                match fs_err::remove_file(&feedback_file) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        return Err(err.into());
                    }
                    _ => {}
                }
            }
            command.env_remove("CODEX_REVIEW_FEEDBACK");
        }
    }

    let describe = describe(req, &network, &fs, proxy.is_some(), profile);
    Ok(Launch {
        command,
        argv,
        fs,
        confinement,
        proxy,
        gate,
        describe,
    })
}

/// `sandbox.allowed_domains`, plus the agent's model hosts in strict mode unless
/// `sandbox.agent_hosts` is off.
fn allowed_entries(ctx: &Ctx, profile: Option<&Profile>, strict: bool) -> Vec<String> {
    let mut entries = ctx.config.allowed_domains.clone();
    if let Some(p) = profile
        && strict
        && ctx.config.agent_hosts
    {
        for host in p.hosts {
            if !entries.iter().any(|e| e == host) {
                entries.push((*host).to_string());
            }
        }
    }
    entries
}

/// Allowed destinations on the host's own loopback (`127.0.0.1:11434`): a client that does
/// not use a proxy for loopback connects to them directly, so the same address inside is
/// forwarded through the proxy.
fn loopback_forwards(entries: &[String]) -> Vec<SocketAddr> {
    entries
        .iter()
        .filter_map(|e| e.parse::<SocketAddr>().ok())
        .filter(|a| a.ip().is_loopback())
        .collect()
}

/// The proxy's socket: in the state dir (`run/<id>.sock`) unless that path is too long for
/// a Unix socket, then in a new private dir under the system's temp dir.
fn proxy_socket_path(ctx: &Ctx, id: &str) -> anyhow::Result<Utf8PathBuf> {
    let dir = ctx.state.root.join("run");
    let path = dir.join(format!("{id}.sock"));
    if path.as_str().len() < 100 {
        fs_err::create_dir_all(&dir)?;
        return Ok(path);
    }
    let base = Utf8PathBuf::from_path_buf(std::env::temp_dir())
        .unwrap_or_else(|_| Utf8PathBuf::from("/tmp"));
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "git-codex-{}-{}-{attempt}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond() % 1_000_000
        ));
        // Made new (never an existing dir or link), private to the person.
        if std::fs::create_dir(&dir).is_ok() {
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            return Ok(dir.join("proxy.sock"));
        }
    }
    Err(UserError::runtime(format!(
        "cannot make a private dir for the egress proxy's socket under {base}"
    ))
    .into())
}

/// This binary, which runs inside as `sandbox-exec`.
fn self_exe() -> anyhow::Result<Utf8PathBuf> {
    Utf8PathBuf::from_path_buf(fs_err::canonicalize(std::env::current_exe()?)?).map_err(|p| {
        UserError::runtime(format!(
            "the path of git-codex is not UTF-8: {}",
            p.display()
        ))
        .into()
    })
}

fn describe(
    req: &Request<'_>,
    network: &NetworkPlan,
    fs: &FsPlan,
    proxied: bool,
    profile: Option<&Profile>,
) -> String {
    let strict = req.mode == "strict";
    let net = match (strict, proxied) {
        (true, true) => format!(
            "sandbox strict ({}), network enforced: true ({}; egress only through the proxy, to the allowed destinations)",
            req.source.describe(),
            network.describe()
        ),
        (true, false) => format!(
            "sandbox strict ({}), network enforced: false (not enforced)",
            req.source.describe()
        ),
        (false, true) => format!(
            "sandbox {} ({}), network enabled through the proxy ({})",
            req.mode,
            req.source.describe(),
            network.describe()
        ),
        (false, false) => format!(
            "sandbox {} ({}), network enabled",
            req.mode,
            req.source.describe()
        ),
    };
    let files = if fs.confined() {
        "filesystem confined: true (bwrap)"
    } else if fs.problem.is_some() {
        "filesystem confined: false"
    } else {
        "filesystem open"
    };
    match profile {
        Some(p) => format!("{net}, {files}, profile {}", p.name),
        None => format!("{net}, {files}"),
    }
}
