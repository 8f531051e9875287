//! A third outside attacker's findings against the default sandbox's promises (SPEC §7,
//! §7a, §8; README "The agent is the party being gated", "The network", "The review hook").
//! Each test is an agent's attack (a script here), judged by what the person would see; each
//! fails until the product holds.

mod common;

#[allow(unused_imports)]
use std::time::Duration;

#[allow(unused_imports)]
use common::{BIN, TestEnv, each_git, run};

/// Whether bubblewrap can confine here; with CI=true it must.
fn can_confine() -> bool {
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

/// An executable script for the agent, in the person's home (readable inside).
fn script(t: &TestEnv, name: &str, text: &str) -> String {
    let path = t.home.join(name);
    common::write_file(&path, text);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

#[allow(dead_code)]
fn results(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// With a relative `core.hooksPath` (husky's `.husky/_`, or a tracked `.githooks`, which
/// `hooks install` and `doctor` recommend "so session worktrees run the hooks"), git resolves
/// the hooks dir against the worktree git runs in. git-codex's own git commands in the
/// session's worktree (the run's clean-up snapshot and `session review` via `commit_worktree`,
/// `session remove` via `snapshot`) run `update-ref` there, which fires the
/// `reference-transaction` hook from the agent's own worktree: a file the agent wrote. It runs
/// as the person, outside every sandbox, here writing into the person's home.
#[test]
fn a_relative_hooks_path_does_not_run_the_agents_hooks_outside_the_sandbox() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["config", "core.hooksPath", ".husky/_"]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("h");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "plant-hook.sh",
            &format!(
                "#!/bin/sh\nmkdir -p .husky/_\nprintf '#!/bin/sh\\necho ran outside >> {}\\n' > .husky/_/reference-transaction\nchmod +x .husky/_/reference-transaction\necho work > work.txt\n",
                escaped.display()
            ),
        );
        let _ = run(t.codex(&["session", "run", "h", "--", &agent]));
        let _ = run(t.codex(&["session", "review", "h"]));
        let _ = run(t.codex(&["session", "remove", "h"]));
        assert!(
            !escaped.exists(),
            "git-codex ran the agent's reference-transaction hook (from the session worktree's relative core.hooksPath) as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// A filter the person configured with a command relative to the worktree
/// (`filter.strip.clean = ./tools/clean.sh`, a tracked script; the same holds for a
/// `diff.<x>.textconv`) runs from the worktree git runs in. git-codex's `git add -A` in the
/// session's worktree (the run's clean-up snapshot, `session review`) runs the agent's
/// rewritten `tools/clean.sh` as the person, outside every sandbox.
#[test]
fn a_relative_filter_command_does_not_run_the_agents_script_outside_the_sandbox() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        common::write_file(&t.repo.join("tools/clean.sh"), "#!/bin/sh\ncat\n");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            t.repo.join("tools/clean.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        t.write(".gitattributes", "*.txt filter=strip\n");
        t.git(&["add", "tools/clean.sh", ".gitattributes"]);
        t.git(&["commit", "-q", "-m", "a clean filter"]);
        t.git(&["config", "filter.strip.clean", "./tools/clean.sh"]);
        t.git(&["config", "filter.strip.smudge", "cat"]);
        t.add("f");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "rewrite-filter.sh",
            &format!(
                "#!/bin/sh\nprintf '#!/bin/sh\\necho ran outside >> {}\\ncat\\n' > tools/clean.sh\necho work > work.txt\n",
                escaped.display()
            ),
        );
        let _ = run(t.codex(&["session", "run", "f", "--", &agent]));
        let _ = run(t.codex(&["session", "review", "f"]));
        assert!(
            !escaped.exists(),
            "git-codex's git add in the session worktree ran the agent's rewritten filter script as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}
