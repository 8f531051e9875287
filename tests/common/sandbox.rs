//! What the sandbox tests share: whether this machine can confine, the agent's script, and
//! the `RESULT name=value` lines it prints.

use std::collections::BTreeMap;

use super::{TestEnv, write_file};

/// Whether bubblewrap can make a mount and network namespace here; with CI=true it must.
pub fn can_confine() -> bool {
    let ok = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-net", "--", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to confine (bubblewrap with network namespaces)"
        );
        eprintln!("skipping: bwrap cannot make a mount and network namespace here");
    }
    ok
}

/// Whether git-lfs is installed; with CI=true it must be.
pub fn has_lfs() -> bool {
    let ok = std::process::Command::new("git-lfs")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have git-lfs"
        );
        eprintln!("skipping: git-lfs is not installed");
    }
    ok
}

/// An executable script for the agent, in the person's home (which stays readable inside).
pub fn script(t: &TestEnv, name: &str, text: &str) -> String {
    let path = t.home.join(name);
    write_file(&path, text);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

/// The `RESULT name=value` lines the agent printed.
pub fn results(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Command prefixes that run a program in a network namespace of its own, by name: bwrap,
/// then util-linux's unshare (a user namespace, or as root without one). Which of them
/// works here is the caller's to find out.
pub const NET_NAMESPACE_WRAPPERS: &[(&str, &[&str])] = &[
    (
        "bwrap",
        &[
            "bwrap",
            "--dev-bind",
            "/",
            "/",
            "--unshare-net",
            "--die-with-parent",
            "--",
        ],
    ),
    (
        "unshare",
        &["unshare", "--user", "--map-current-user", "--net", "--"],
    ),
    ("unshare as root", &["unshare", "--net", "--"]),
];

/// The python3 that plays a terminal (its pty module) in the tests; `None`, with the reason
/// printed, when it is missing. With CI=true it must be there.
pub fn python_for_a_terminal() -> Option<&'static std::path::Path> {
    let python = std::path::Path::new("/usr/bin/python3");
    if python.is_file() {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "python3 is needed to give the test a terminal"
    );
    eprintln!("skipping: no python3 to make a pseudo-terminal");
    None
}
