//! The agent's network namespace: a new one with only loopback, through `bwrap
//! --unshare-net` when present, else `unshare --user --map-current-user --net`, with this
//! binary (`sandbox-exec`) bringing loopback up inside and offering the egress proxy there.
//! Both are found on PATH and probed before use.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::confine::Confinement;

#[derive(Debug, Clone)]
pub enum Wrapper {
    Bwrap(PathBuf),
    Unshare(PathBuf),
}

/// How the agent's network is handled.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub wrapper: Option<Wrapper>,
    /// Why the network could not be cut, when strict mode asked for it.
    pub problem: Option<String>,
}

impl NetworkPlan {
    pub fn enforced(&self) -> bool {
        self.wrapper.is_some()
    }

    pub fn describe(&self) -> &'static str {
        match self.wrapper {
            Some(Wrapper::Bwrap(_)) => "bwrap --unshare-net",
            Some(Wrapper::Unshare(_)) => "unshare --user --net",
            None => "not enforced",
        }
    }
}

/// Whether `cmd` runs and succeeds (its output dropped).
pub(super) fn probe(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Finds a way to give the agent a network namespace of its own (both modes: in
/// `network-enabled` its one way out is the proxy allowing every public destination).
pub fn plan() -> NetworkPlan {
    if let Ok(bwrap) = which::which("bwrap")
        && probe(Command::new(&bwrap).args([
            "--unshare-user",
            "--unshare-net",
            "--dev-bind",
            "/",
            "/",
            "--",
            "true",
        ]))
    {
        return NetworkPlan {
            wrapper: Some(Wrapper::Bwrap(bwrap)),
            problem: None,
        };
    }
    if let Ok(unshare) = which::which("unshare")
        && probe(Command::new(&unshare).args([
            "--user",
            "--map-current-user",
            "--net",
            "--",
            "true",
        ]))
    {
        return NetworkPlan {
            wrapper: Some(Wrapper::Unshare(unshare)),
            problem: None,
        };
    }
    NetworkPlan {
        wrapper: None,
        problem: Some(
            "neither bwrap nor unshare can make a network namespace here (no user namespaces?)"
                .to_string(),
        ),
    }
}

/// The program and arguments that run `inner` (this binary's `sandbox-exec …`, which offers the proxy
/// inside and starts the agent) under the plan, confined by `fs` when given (bwrap, which
/// then also makes the network namespace). Without a namespace, `inner` is the agent itself.
pub fn words(plan: &NetworkPlan, fs: Option<&Confinement>, inner: &[String]) -> Vec<OsString> {
    let bwrap_cuts = matches!(plan.wrapper, Some(Wrapper::Bwrap(_)));
    // The agent, inside its confinement when there is one.
    let mut confined: Vec<OsString> = match fs {
        Some(fs) => {
            let mut words = vec![fs.bwrap.clone().into_os_string()];
            words.extend(
                super::confine::bwrap_args(fs, bwrap_cuts)
                    .into_iter()
                    .map(OsString::from),
            );
            words.push("--".into());
            words
        }
        None => Vec::new(),
    };
    confined.extend(inner.iter().map(OsString::from));
    // Then the network namespace around it, unless the confinement already made one.
    let mut words: Vec<OsString> = match &plan.wrapper {
        Some(Wrapper::Bwrap(bwrap)) if fs.is_none() => {
            let mut words = vec![bwrap.clone().into_os_string()];
            words.extend(
                [
                    "--unshare-user",
                    "--dev-bind",
                    "/",
                    "/",
                    "--unshare-net",
                    "--die-with-parent",
                    "--",
                ]
                .map(OsString::from),
            );
            words
        }
        Some(Wrapper::Unshare(unshare)) => {
            let mut words = vec![unshare.clone().into_os_string()];
            words.extend(["--user", "--map-current-user", "--net", "--"].map(OsString::from));
            words
        }
        _ => Vec::new(),
    };
    words.extend(confined);
    words
}

/// Brings the loopback interface up (inside a fresh network namespace it starts down).
#[cfg(target_os = "linux")]
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket and two ioctls on a zeroed, correctly sized `ifreq`; the fd is
    // closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        let mut result = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if result >= 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            result = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if result < 0 { Err(err) } else { Ok(()) }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn loopback_up() -> std::io::Result<()> {
    Ok(())
}
