//! A fourth outside attacker's findings against the default sandbox's promises (SPEC §7,
//! §7a, §8; README "The agent is the party being gated", "git-codex's own git in session
//! worktrees"). Each test is an agent's attack (a script here), judged by what the person
//! would see; each fails until the product holds.

mod common;

#[allow(unused_imports)]
use std::time::Duration;

use common::sandbox::{can_confine, script};
#[allow(unused_imports)]
use common::{BIN, TestEnv, each_git, run};

/// `session merge --strategy rebase` replays the session's commits one by one in a temporary
/// worktree under `.git/codex/scratch/<id>/`, which the session guard does not cover: with a
/// relative `core.hooksPath` (husky's `.husky/_`, as in attacker3) git resolves the hooks dir
/// against that worktree, whose files are, commit by commit, the agent's. An intermediate
/// commit adds `.husky/_/reference-transaction`, the next deletes it: the reviewed (and
/// approved) range shows neither, yet every ref update of the replay runs the agent's hook as
/// the person, outside every sandbox.
#[test]
fn a_rebase_merge_does_not_run_a_hook_from_an_intermediate_commit() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        t.git(&["config", "core.hooksPath", ".husky/_"]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("rb");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "hook-in-between.sh",
            &format!(
                "#!/bin/sh\nmkdir -p .husky/_\nprintf '#!/bin/sh\\n(echo ran outside $PWD >> {}) 2>/dev/null\\nexit 0\\n' > .husky/_/reference-transaction\nchmod +x .husky/_/reference-transaction\necho a > a.txt\ngit add -A && git commit -qm 'step 1' --no-verify\ngit rm -rqf .husky && echo b > a.txt && git add -A && git commit -qm 'step 2' --no-verify\n",
                escaped.display()
            ),
        );
        let (code, _, err) = run(t.codex(&["session", "run", "rb", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        // The person's branch moves on, so the rebase replays the session's commits.
        t.write("other.txt", "x\n");
        t.git(&["add", "other.txt"]);
        t.git(&["commit", "-q", "-m", "main moves on"]);
        let (code, report, err) = run(t.codex(&["session", "review", "rb", "--approve"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !report.contains(".husky"),
            "the reviewed range shows the hook: {report}"
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "rb", "--strategy", "rebase"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !escaped.exists(),
            "session merge --strategy rebase ran the agent's reference-transaction hook (from a commit the reviewed range does not show) as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// The agent writes `ref: refs/heads/main` into its admin dir's HEAD (a plain file, so the
/// clean-up keeps it, and `reattach` leaves a symbolic HEAD alone). After the run the session
/// worktree still has `main` checked out: `session merge` lands every approved session in the
/// agent's worktree (`worktree_with_branch`), under its index and files, and the gate, seeing
/// a session worktree, counts the merge (or, after the run, the person's own `main` commits)
/// as session b's unapproved work and refuses; the person's `git checkout main` fails
/// ("already checked out").
#[test]
fn an_agent_cannot_check_out_the_protected_branch_in_its_worktree() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.git(&["checkout", "-q", "-b", "dev"]);
        t.add("a");
        t.add("b");
        let feature = script(t, "feature.sh", "#!/bin/sh\necho feature > f.txt\n");
        let (code, _, err) = run(t.codex(&["session", "run", "a", "--", &feature]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "review", "a", "--approve"]));
        assert_eq!(code, 0, "{err}");
        let agent = script(
            t,
            "take-main.sh",
            "#!/bin/sh\nA=$(git rev-parse --absolute-git-dir)\nprintf 'ref: refs/heads/main\\n' > \"$A/HEAD\"\ngit read-tree main\n",
        );
        let (code, _, err) = run(t.codex(&["session", "run", "b", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "merge", "a", "--into", "main"]));
        assert_eq!(
            code, 0,
            "session b's agent, by pointing its HEAD at main, made the gate refuse the approved session a: {err}"
        );
        let out = t.git_output(&t.repo, &["checkout", "-q", "main"]);
        assert!(
            out.status.success(),
            "the person's git checkout main fails: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
