//! `git codex sandbox-proxy --socket PATH [--allow ENTRY…] [--allow-all]` (internal): the
//! egress proxy in the foreground, logging to stderr, until it is killed. Tests drive it;
//! `session run` starts the same proxy in-process.

use std::sync::{Arc, Mutex};

use crate::cli::SandboxProxyArgs;
use crate::error::UserError;
use crate::sandbox::allow::{Allowlist, Policy};
use crate::sandbox::proxy;

pub fn run(args: SandboxProxyArgs) -> anyhow::Result<()> {
    let allowlist = Allowlist::parse(&args.allow).map_err(UserError::bad_input)?;
    let policy = Policy {
        allowlist,
        allow_all: args.allow_all,
        host_addrs: crate::sandbox::allow::host_addresses(),
    };
    let log: proxy::Log = Arc::new(Mutex::new(std::io::stderr()));
    let _proxy = proxy::start(&args.socket, policy, log).map_err(|err| {
        UserError::runtime(format!("cannot start the proxy at {}: {err}", args.socket))
    })?;
    eprintln!("# proxy: listening on {}", args.socket);
    loop {
        std::thread::park();
    }
}
