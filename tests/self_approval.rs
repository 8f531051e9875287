//! No self-approval (SPEC §7a): approving, merging, unhooking and configuring refuse with exit
//! 3 from a session's context — inside its worktree, or with `CODEX_SESSION_ID` set — and
//! leave the disk as it was.

mod common;

use common::{assert_disk_unchanged, each_git, run};

#[test]
fn a_session_cannot_approve_merge_unhook_or_reconfigure() {
    each_git(|t| {
        let worktree = t.add("s");
        t.commit_in(&worktree, "work.txt", "agent work\n");
        let attempts: &[&[&str]] = &[
            &["session", "review", "s", "--approve"],
            &["session", "merge", "s"],
            &["hooks", "uninstall"],
            &["config", "set", "review.protected", "[]"],
            &[
                "config",
                "set",
                "--user",
                "review.require_approval",
                "false",
            ],
        ];
        for args in attempts {
            // From inside the session's worktree.
            let before = t.disk();
            let (code, _, err) = run(t.codex_in(&worktree, args));
            assert_eq!(code, 3, "{args:?} inside the worktree: {err}");
            assert!(err.contains("from a session's context"), "{err}");
            assert!(
                err.contains("belong to a person outside the session"),
                "{err}"
            );
            assert!(
                err.contains("is the worktree of session 's'")
                    || err.contains("session's worktree"),
                "{err}"
            );
            assert_disk_unchanged(&before, &t.disk(), &format!("{args:?} inside the worktree"));

            // From a subdirectory of it.
            std::fs::create_dir_all(worktree.join("deep/er")).expect("mkdir");
            let before = t.disk();
            let (code, _, err) = run(t.codex_in(&worktree.join("deep/er"), args));
            assert_eq!(code, 3, "{args:?} in a subdirectory: {err}");
            assert_disk_unchanged(&before, &t.disk(), &format!("{args:?} in a subdirectory"));

            // From the main worktree, with the agent's environment.
            let before = t.disk();
            let mut cmd = t.codex(args);
            cmd.env("CODEX_SESSION_ID", "s");
            let (code, _, err) = run(cmd);
            assert_eq!(code, 3, "{args:?} with CODEX_SESSION_ID: {err}");
            assert!(
                err.contains("CODEX_SESSION_ID is set (session 's')"),
                "{err}"
            );
            assert_disk_unchanged(
                &before,
                &t.disk(),
                &format!("{args:?} with CODEX_SESSION_ID"),
            );
        }

        // Without the session file the record still tells whose worktree it is.
        std::fs::remove_file(worktree.join(".codex-session.json")).expect("rm session file");
        let (code, _, err) = run(t.codex_in(&worktree, &["session", "review", "s", "--approve"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("is the worktree of session 's'"), "{err}");

        // Reading is fine from anywhere; a person in the main worktree approves and merges.
        let (code, _, err) = run(t.codex_in(&worktree, &["session", "review", "s"]));
        assert_eq!(code, 0, "a plain review inside the session: {err}");
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        assert_eq!(code, 0, "{err}");
        assert!(!t.git(&["rev-parse", "refs/codex/approvals/s"]).is_empty());
        let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(t.repo.join("work.txt").is_file());
    });
}
