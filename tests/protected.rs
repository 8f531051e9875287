//! One meaning of "protected" (SPEC §4, §6): the reference-transaction shim's shell
//! pre-filter never lets through a ref the gate protects; invalid patterns are errors in
//! every layer; a hook that cannot read its configuration refuses.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{StdinFile as _, TestEnv, each_git, json, run};

const PATTERNS: &[&str] = &[
    "main",
    "release/*",
    "**/main",
    "release/**",
    "a/**/b",
    "**",
    "*",
    "v[0-9]*",
    "[!a]*",
    "?",
    "??*",
    "feat-[a-c-]",
    "hotfix/?.x",
    "r[A-Z]",
    "x.y",
    "*/*",
    "main*",
    "[!.]x",
    "d\u{e9}veloppement",
    "fix!",
    "wip+*",
    "*\u{e9}*",
    "**/x/**/y",
    "caf?",
];

const NAMES: &[&str] = &[
    "main",
    "team/main",
    "c/d/main",
    "mainline",
    "amain",
    "release/2",
    "release/1/fix",
    "releases",
    "a/b",
    "a/x/b",
    "a/x/y/b",
    "ab",
    "v1",
    "v10",
    "vx",
    "b",
    "feat-a",
    "feat--",
    "feat-d",
    "hotfix/1.x",
    "hotfix/12.x",
    "rA",
    "rz",
    "x.y",
    "xzy",
    "Main",
    "d\u{e9}veloppement",
    "fix!",
    "wip+1",
    "caf\u{e9}",
    "cafe",
    "x/y",
    "q/x/r/y",
    "_x",
    "%x",
];

/// The branches the gate protects: `verify` checks every protected branch there is.
fn gate_protects(t: &TestEnv) -> BTreeSet<String> {
    let (code, out, err) = run(t.codex(&["verify", "--json"]));
    assert_eq!(code, 0, "{err}");
    json(&out)["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| {
            c["ref"]
                .as_str()?
                .strip_prefix("refs/heads/")
                .map(String::from)
        })
        .collect()
}

/// The branches the shim's `codex_protected` (the cache file it sources) says yes to.
fn shim_protects(t: &TestEnv, shell: &str) -> BTreeSet<String> {
    let cache = t.state_dir().join("hooks-cache.sh");
    let mut cmd = std::process::Command::new(shell);
    cmd.env_clear()
        .envs(t.vars())
        .arg("-c")
        .arg(r#". "$1"; shift; for n; do if codex_protected "refs/heads/$n"; then printf '%s\n' "$n"; fi; done"#)
        .arg("sh")
        .arg(&cache)
        .args(NAMES);
    let out = cmd.output().expect("run the shell");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn shells() -> Vec<&'static str> {
    ["/bin/sh", "/usr/bin/dash", "/usr/bin/bash", "/bin/bash"]
        .into_iter()
        .filter(|s| Path::new(s).is_file())
        .collect()
}

#[test]
fn the_shim_never_lets_through_a_branch_the_gate_protects() {
    each_git(|t| {
        let main = t.git(&["rev-parse", "main"]);
        let input: String = NAMES
            .iter()
            .filter(|n| **n != "main")
            .map(|n| format!("create refs/heads/{n} {main}\n"))
            .collect();
        let out = std::process::Command::new(&t.git)
            .env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["update-ref", "--stdin"])
            .stdin_file(&input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.codex(&["init"]).assert().success();
        let mut gate_total = 0;
        for pattern in PATTERNS {
            let value = toml::Value::Array(vec![toml::Value::String(pattern.to_string())]);
            t.set_config(&format!("[review]\nprotected = {value}\n"));
            // What a hook does when it finds config newer than its copy: write a new copy.
            t.codex(&["hooks", "install"]).assert().success();
            let gate = gate_protects(t);
            gate_total += gate.len();
            for shell in shells() {
                let shim = shim_protects(t, shell);
                let missed: Vec<&String> = gate.difference(&shim).collect();
                assert!(
                    missed.is_empty(),
                    "pattern {pattern:?} under {shell}: the gate protects {missed:?}, the shim lets them through"
                );
            }
        }
        assert!(gate_total > 50, "the table protects something");
        // The language itself, as the README states it.
        for (pattern, name, protected) in [
            ("**/main", "main", true),
            ("**/main", "c/d/main", true),
            ("**/main", "amain", false),
            ("release/*", "release/1/fix", true),
            ("release/*", "releases", false),
            ("[!a]*", "ab", false),
            ("[!a]*", "b", true),
            ("hotfix/?.x", "hotfix/12.x", false),
        ] {
            t.set_config(&format!("[review]\nprotected = [\"{pattern}\"]\n"));
            assert_eq!(
                gate_protects(t).contains(name),
                protected,
                "{pattern} and {name}"
            );
        }
    });
}

/// The shim reads the first lines of a transaction one by one and the rest of a long one (a
/// fetch of many refs) whole: a protected branch, a session's branch or a ledger anywhere in
/// it still reaches git-codex, and many remote-tracking refs alone still pass.
#[test]
fn every_line_of_a_long_transaction_is_seen() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "agent.txt", "agent work\n");
        let work = t.git(&["rev-parse", "codex/s"]);
        let main = t.git(&["rev-parse", "main"]);
        let update_ref = |input: &str| {
            std::process::Command::new(&t.git)
                .env_clear()
                .envs(t.vars())
                .current_dir(&t.repo)
                .args(["update-ref", "--stdin"])
                .stdin_file(input)
        };
        let remotes = |tag: &str| -> Vec<String> {
            (0..40)
                .map(|n| format!("update refs/remotes/origin/{tag}-{n} {main}\n"))
                .collect()
        };
        for at in [0, 7, 8, 9, 39] {
            let mut lines = remotes(&format!("m{at}"));
            lines.insert(at, format!("update refs/heads/main {work} {main}\n"));
            let out = update_ref(&lines.concat());
            assert!(
                !out.status.success(),
                "main moved to an unapproved commit at line {at}"
            );
            assert_eq!(t.git(&["rev-parse", "main"]), main);
            // A ledger is git-codex's to write: rewinding it is refused anywhere too.
            let mut lines = remotes(&format!("l{at}"));
            lines.insert(at, "delete refs/codex/ledger/s\n".to_string());
            let out = update_ref(&lines.concat());
            assert!(!out.status.success(), "a ledger deleted at line {at}");
        }
        // A session's branch moved at line 20 is recorded in its ledger.
        let tree = t.git(&["rev-parse", "codex/s^{tree}"]);
        let more = t.git(&["commit-tree", &tree, "-p", &work, "-m", "more work"]);
        let ledger = t.git(&["rev-parse", "refs/codex/ledger/s"]);
        let mut lines = remotes("b");
        lines.insert(20, format!("update refs/heads/codex/s {more} {work}\n"));
        let out = update_ref(&lines.concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(
            t.git(&["rev-parse", "refs/codex/ledger/s"]),
            ledger,
            "the ledger records the new tip"
        );
        // Many remote-tracking refs alone pass.
        let out = update_ref(&remotes("ok").concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            t.git(&[
                "for-each-ref",
                "--format=%(refname)",
                "refs/remotes/origin/"
            ])
            .lines()
            .filter(|r| r.starts_with("refs/remotes/origin/ok-"))
            .count(),
            40
        );
    });
}

const INVALID: &[&str] = &[
    "release**",
    "[",
    "",
    "main, ",
    "[^a]",
    "[[:alpha:]]",
    "refs/heads/main",
    "a\\b",
    "**x",
    "[z-a]",
];

#[test]
fn an_invalid_pattern_is_an_error_in_every_layer_and_never_dropped() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        let config = t.state_dir().join("config.toml");
        t.set_config("[review]\nprotected = [\"main\"]\n");
        for bad in INVALID {
            // config set: exit 2, the file untouched.
            let before = std::fs::read(&config).unwrap();
            let (code, _, err) = run(t.codex(&["config", "set", "review.protected", bad]));
            assert_eq!(code, 2, "config set {bad:?}: {err}");
            assert!(err.contains("review.protected"), "{err}");
            assert_eq!(std::fs::read(&config).unwrap(), before, "{bad:?}");
            // The environment: every command refuses, naming the variable.
            let mut cmd = t.codex(&["config", "list"]);
            cmd.env("GIT_CODEX_REVIEW_PROTECTED", bad);
            let (code, _, err) = run(cmd);
            assert_eq!(code, 2, "env {bad:?}: {err}");
            assert!(err.contains("GIT_CODEX_REVIEW_PROTECTED"), "{err}");
        }
        for bad in ["release**", "[", "", "[^a]", "refs/heads/main"] {
            let value = toml::Value::Array(vec![
                toml::Value::String("main".into()),
                toml::Value::String(bad.into()),
            ]);
            let text = format!("[review]\nprotected = {value}\n");
            // The repository file: validate says which file and which pattern.
            t.set_config(&text);
            let (code, _, err) = run(t.codex(&["config", "validate"]));
            assert_eq!(code, 2, "validate {bad:?}: {err}");
            assert!(
                err.contains("config.toml") && err.contains(&format!("\"{bad}\"")),
                "{err}"
            );
            std::fs::remove_file(&config).unwrap();
            // The user file.
            let user = t.home.join(".config/git-codex/config.toml");
            common::write_file(&user, &text);
            let (code, _, err) = run(t.codex(&["config", "validate"]));
            assert_eq!(code, 2, "user file {bad:?}: {err}");
            std::fs::remove_file(&user).unwrap();
        }
        // `[]` protects nothing, on purpose; an empty value is not a way to say so.
        t.codex(&["config", "set", "review.protected", "[]"])
            .assert()
            .success();
        t.codex(&["config", "set", "review.protected", "main, release/*"])
            .assert()
            .success();
    });
}

/// Breaks the configuration one way, for a git command about to run.
type Spoil<'t> = Box<dyn Fn(&mut std::process::Command) + 't>;

#[test]
fn a_hook_that_cannot_read_its_config_refuses_branch_updates() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "s.txt", "s\n");
        let main = t.git(&["rev-parse", "main"]);
        let session = t.git(&["rev-parse", "codex/s"]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let variants: Vec<(&str, Spoil<'_>)> = vec![
            (
                "a broken repository file",
                Box::new(|_| t.set_config("[review\nprotected = [\"main\"]\n")),
            ),
            (
                "an invalid pattern in the repository file",
                Box::new(|_| t.set_config("[review]\nprotected = [\"release**\"]\n")),
            ),
            (
                "an invalid pattern in the environment",
                Box::new(|cmd| {
                    cmd.env("GIT_CODEX_REVIEW_PROTECTED", "[");
                }),
            ),
            (
                "an invalid pattern in the user file",
                Box::new(|_| {
                    common::write_file(
                        &t.home.join(".config/git-codex/config.toml"),
                        "[review]\nprotected = [\"\"]\n",
                    )
                }),
            ),
        ];
        for (what, spoil) in variants {
            let mut cmd = std::process::Command::new(&t.git);
            cmd.env_clear().envs(t.vars()).current_dir(&t.repo);
            spoil(&mut cmd);
            let out = cmd
                .args(["update-ref", "refs/heads/main", &session])
                .output()
                .expect("git");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: main moved");
            assert!(
                err.contains("cannot load its configuration") && err.contains("config validate"),
                "{what}: {err}"
            );
            assert_eq!(t.git(&["rev-parse", "main"]), main, "{what}");
            // Not only protected branches: while the config is unreadable, nothing is known
            // to be unprotected.
            let mut cmd = std::process::Command::new(&t.git);
            cmd.env_clear().envs(t.vars()).current_dir(&t.repo);
            spoil(&mut cmd);
            let out = cmd
                .args(["branch", "other", &session])
                .output()
                .expect("git");
            assert!(!out.status.success(), "{what}: a branch was created");
            let _ = std::fs::remove_file(t.state_dir().join("config.toml"));
            let _ = std::fs::remove_file(t.home.join(".config/git-codex/config.toml"));
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        t.git(&["branch", "other", &session]);
    });
}

/// The shim's copy of the patterns was made under one user config file; run under another
/// (older than the copy, so `-nt` cannot tell), git-codex decides.
#[test]
fn a_copy_made_under_another_user_config_is_not_trusted() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "s.txt", "s\n");
        let session = t.git(&["rev-parse", "codex/s"]);
        t.git(&["branch", "develop", "main"]);
        let other = t.root().join("other-config");
        common::write_file(
            &other.join("git-codex/config.toml"),
            "[review]\nprotected = [\"main\", \"develop\"]\n",
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        t.codex(&["hooks", "install"]).assert().success();
        let out = std::process::Command::new(&t.git)
            .env_clear()
            .envs(t.vars())
            .env("XDG_CONFIG_HOME", &other)
            .current_dir(&t.repo)
            .args(["update-ref", "refs/heads/develop", &session])
            .output()
            .expect("git");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "develop moved");
        assert!(err.contains("session 's'"), "{err}");
        assert_ne!(t.git(&["rev-parse", "develop"]), session);
    });
}
