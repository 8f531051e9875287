//! `git codex sandbox-exec [--proxy-socket PATH --proxy-port N] [--forward ADDR:PORT…] -- CMD…`
//! (internal): the first process of the agent's network namespace. It brings loopback up,
//! offers the egress proxy on 127.0.0.1:N, carries the host's allowed loopback services
//! (`--forward`) through it, then runs the agent as its child and exits as the agent did.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::FileTypeExt as _;
use std::process::Command;

use camino::Utf8Path;

use crate::cli::SandboxExecArgs;
use crate::error::{AgentExit, UserError};
use crate::sandbox::{bridge, child, netns};

/// Proxy variables, in both cases: tools read one or the other.
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub fn run(args: SandboxExecArgs) -> anyhow::Result<()> {
    child::die_with_parent()
        .map_err(|err| UserError::runtime(format!("cannot tie to the parent process: {err}")))?;
    // bwrap brings loopback up itself, and leaves us without the right to touch it.
    if !bridge::loopback_is_up() {
        netns::loopback_up()
            .map_err(|err| UserError::runtime(format!("cannot bring loopback up: {err}")))?;
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(UserError::bad_input("no command to run").into());
    };
    let mut cmd = Command::new(program);
    cmd.args(rest);
    if let Some(socket) = &args.proxy_socket {
        check_socket(socket)?;
        if let Some(port) = args.proxy_port {
            offer_proxy(socket, port)?;
            let url = format!("http://127.0.0.1:{port}");
            for var in PROXY_VARS {
                cmd.env(var, &url);
            }
            // The agent's own servers on loopback are not behind the proxy; forwarded ports
            // are reached directly too, through their listeners here.
            cmd.env("NO_PROXY", "localhost,127.0.0.1,::1")
                .env("no_proxy", "localhost,127.0.0.1,::1");
        }
        for target in &args.forward {
            forward(socket, *target)?;
        }
    }
    let code = child::run(cmd)
        .map_err(|err| UserError::runtime(format!("cannot run {program}: {err}")))?;
    if code == 0 {
        Ok(())
    } else {
        Err(AgentExit(code).into())
    }
}

fn check_socket(socket: &Utf8Path) -> anyhow::Result<()> {
    match std::fs::metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => Ok(()),
        Ok(_) => Err(UserError::bad_input(format!("{socket} is not a socket")).into()),
        Err(err) => Err(
            UserError::runtime(format!("cannot reach the proxy at {socket}: {err}"))
                .hint("the proxy's socket must be bound into the namespace at the same path")
                .into(),
        ),
    }
}

/// Listens on 127.0.0.1:`port` (and [::1]:`port` where IPv6 is up), relaying to the socket.
fn offer_proxy(socket: &Utf8Path, port: u16) -> anyhow::Result<()> {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|err| {
        UserError::runtime(format!(
            "cannot listen on 127.0.0.1:{port} for the proxy: {err}"
        ))
    })?;
    bridge::spawn_to_socket(v4, socket.to_owned());
    if let Ok(v6) = TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        bridge::spawn_to_socket(v6, socket.to_owned());
    }
    Ok(())
}

/// Listens on `target` here and carries each connection to `target` on the host.
fn forward(socket: &Utf8Path, target: SocketAddr) -> anyhow::Result<()> {
    if !target.ip().is_loopback() {
        return Err(UserError::bad_input(format!(
            "--forward {target}: only loopback addresses can be forwarded"
        ))
        .into());
    }
    let listener = TcpListener::bind(target)
        .map_err(|err| UserError::runtime(format!("cannot listen on {target}: {err}")))?;
    bridge::spawn_through_proxy(listener, socket.to_owned(), target);
    Ok(())
}
