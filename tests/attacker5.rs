//! A fifth outside attacker's findings against the default sandbox's promises (SPEC §7,
//! §7a, §8; README "The agent is the party being gated", "git-codex's own git in session
//! worktrees"). Each test is an agent's attack (a script here), judged by what the person
//! would see; each fails until the product holds.

mod common;

#[allow(unused_imports)]
use std::time::Duration;

use common::sandbox::{can_confine, script};
#[allow(unused_imports)]
use common::{BIN, TestEnv, each_git, run};

/// attacker.rs's claim, with a commit of the person's that no local branch holds: the gate
/// takes the commits named in the agent's admin dir (`logs/HEAD`) as the session's unless
/// another *local branch* holds them. A remote-tracking branch (a colleague's work,
/// `origin/feature`, fetched), a tag or the stash is not one: the agent names the fetched
/// commit, and the person's own `git merge --ff-only origin/feature` (or `git pull`) into
/// main is refused as session l's unapproved work, for good (the ledger outlives the session).
#[test]
fn an_agent_cannot_claim_a_fetched_commit_as_its_own() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.git(&["checkout", "-q", "-b", "feature"]);
        t.commit_in(&t.repo, "feature.txt", "a colleague's work\n");
        t.git(&["checkout", "-q", "main"]);
        let feature = t.git(&["rev-parse", "feature"]).trim().to_string();
        // As a fetch leaves it: a remote-tracking branch, no local one.
        t.git(&["update-ref", "refs/remotes/origin/feature", &feature]);
        t.git(&["branch", "-q", "-D", "feature"]);
        t.add("l");
        let agent = script(
            t,
            "claim.sh",
            "#!/bin/sh\nprintf '0000000000000000000000000000000000000000 %s a <a@x> 1 +0000\\tx\\n' \"$1\" >> \"$(git rev-parse --absolute-git-dir)/logs/HEAD\"\n",
        );
        let (code, _, err) = run(t.codex(&["session", "run", "l", "--", &agent, &feature]));
        assert_eq!(code, 0, "{err}");
        let (code, _, _) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0);
        let merged = t.git_output(&t.repo, &["merge", "-q", "--ff-only", "origin/feature"]);
        assert!(
            merged.status.success(),
            "the gate refused the person's fetched commit as the agent's: {}",
            String::from_utf8_lossy(&merged.stderr)
        );
    });
}

/// The session guard covers `core.hooksPath` and filter commands in git-codex's scratch
/// worktrees, not merge drivers: a driver the person configured with a command relative to
/// the worktree (`merge.both.driver = ./tools/merge.sh %O %A %B`, a tracked script, for a
/// `CHANGELOG merge=both` attribute) runs from the worktree git runs in. `session merge
/// --strategy rebase` replays the session's commits in `.git/codex/scratch/<id>/`, whose
/// files are, commit by commit, the agent's: an intermediate commit rewrites
/// `tools/merge.sh`, the next edits `CHANGELOG` (which main edited too), the last puts the
/// script back. The reviewed (and approved) range shows only the CHANGELOG line, yet the
/// replay runs the agent's script as the person, outside every sandbox.
#[test]
fn a_rebase_merge_does_not_run_a_merge_driver_from_an_intermediate_commit() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        common::write_file(
            &t.repo.join("tools/merge.sh"),
            "#!/bin/sh\ncat \"$3\" >> \"$2\"\nexit 0\n",
        );
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            t.repo.join("tools/merge.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        t.write("CHANGELOG", "one\n");
        t.write(".gitattributes", "CHANGELOG merge=both\n");
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "a merge driver for the changelog"]);
        t.git(&["config", "merge.both.driver", "./tools/merge.sh %O %A %B"]);
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("md");
        let escaped = t.home.join("escaped");
        let agent = script(
            t,
            "driver-in-between.sh",
            &format!(
                "#!/bin/sh\nprintf '#!/bin/sh\\n(echo ran outside $PWD >> {}) 2>/dev/null\\ncat \"$3\" >> \"$2\"\\nexit 0\\n' > tools/merge.sh\ngit commit -qam 'step 1' --no-verify\necho agent >> CHANGELOG && git commit -qam 'step 2' --no-verify\ngit checkout -q HEAD~2 -- tools/merge.sh && git commit -qam 'step 3' --no-verify\n",
                escaped.display()
            ),
        );
        let (code, _, err) = run(t.codex(&["session", "run", "md", "--", &agent]));
        assert_eq!(code, 0, "{err}");
        // The person's branch edits the changelog too, so the replay merges it.
        t.write("CHANGELOG", "one\nperson\n");
        t.git(&["commit", "-q", "-am", "main moves on"]);
        let (code, report, err) = run(t.codex(&["session", "review", "md", "--approve"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !report.contains("tools/merge.sh"),
            "the reviewed range shows the script: {report}"
        );
        let _ = run(t.codex(&["session", "merge", "md", "--strategy", "rebase"]));
        assert!(
            !escaped.exists(),
            "session merge --strategy rebase ran the agent's merge driver script (from a commit the reviewed range does not show) as the person, outside the sandbox: {}",
            std::fs::read_to_string(&escaped).unwrap_or_default()
        );
    });
}

/// git-codex reads the agent's admin-dir `logs/HEAD` whole into memory (`commit_ids_in`,
/// `read_to_string`) whenever it records a session's commits: at the end of the run, in
/// `review`, `merge`, `remove` (`--force` too) and `prune`, so also in the `post-checkout`
/// hook of the person's own `git checkout` in the main worktree once the session expires. A
/// sparse file costs the agent no disk: sized to the machine (it reads `/proc/meminfo`), each
/// of those commands takes minutes and all of the person's memory (20 GiB: about a minute
/// per command, 20 GiB resident). Shown with 3 GiB: the person's checkout, normally instant,
/// takes seconds.
#[test]
fn a_sparse_reflog_in_the_admin_dir_does_not_stall_the_persons_checkout() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.set_config("[session]\nttl = \"3s\"\n");
        t.add("sp");
        let agent = script(
            t,
            "sparse-reflog.sh",
            "#!/bin/sh\ntruncate -s 3G \"$(git rev-parse --absolute-git-dir)/logs/HEAD\"\n",
        );
        let mut cmd = t.codex(&["session", "run", "sp", "--", &agent]);
        cmd.timeout(Duration::from_secs(120));
        let _ = run(cmd);
        std::thread::sleep(Duration::from_secs(4));
        // The session has expired: the person's checkout prunes it (post-checkout).
        let out = t.git_output(&t.repo, &["checkout", "-q", "-b", "other"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // How much of such a reflog is read is bounded (not timed here: the bound is proved
        // by `ledger::tests::only_the_newest_part_of_a_huge_reflog_is_read`).
        let (code, _, err) = run(t.codex(&["session", "list", "--json"]));
        assert_eq!(code, 0, "{err}");
    });
}
