//! A third outside attacker's findings against the default sandbox's promises (SPEC §7,
//! §7a, §8; README "The agent is the party being gated", "The network", "The review hook").
//! Each test is an agent's attack (a script here), judged by what the person would see; each
//! fails until the product holds.

mod common;

#[allow(unused_imports)]
use std::time::Duration;

use common::sandbox::{can_confine, script};
#[allow(unused_imports)]
use common::{BIN, TestEnv, each_git, run};

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

/// The run's clean-up clears fifos and links at the top of the agent's admin dir
/// (`.git/worktrees/<wt>/`), not in its subdirs. A fifo the agent leaves at
/// `rebase-merge/head-name` there survives, and git reads it whenever it asks whether a
/// branch is being rebased in some worktree: the person's own `git branch -D <branch>` (or
/// `git checkout`, `git branch -m`) in the main worktree then blocks for good in open(2).
#[test]
fn a_fifo_in_the_admin_dirs_rebase_state_does_not_hang_the_persons_git() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["branch", "feature"]);
        t.add("rb");
        let agent = script(
            t,
            "plant-rebase-fifo.sh",
            "#!/bin/sh\nA=$(git rev-parse --absolute-git-dir)\nmkdir -p \"$A/rebase-merge\"\nmkfifo \"$A/rebase-merge/head-name\" \"$A/rebase-merge/onto\"\n",
        );
        let mut cmd = t.codex(&["session", "run", "rb", "--", &agent]);
        cmd.timeout(Duration::from_secs(30));
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let mut git = std::process::Command::new(&t.git);
        git.env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["branch", "-D", "feature"]);
        let mut child = git.spawn().expect("git");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let finished = loop {
            if child.try_wait().expect("wait").is_some() {
                break true;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            finished,
            "the person's 'git branch -D feature' hung on the fifo the agent left at rebase-merge/head-name in its admin dir"
        );
    });
}
