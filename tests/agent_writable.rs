//! What git-codex writes where an agent can write (issue 14, point 4): a link the agent
//! planted there is replaced, never written through. Here the logs dir, which a confined
//! agent may write: a link from the review hook's log to the hooks' cache would otherwise let
//! the hook's output (the agent's code's output) become shell lines the next branch update runs.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{TestEnv, each_git, run, write_file};

fn planted_links_are_replaced(t: &TestEnv) {
    let wt = t.add("s");
    t.commit_in(&wt, "a.txt", "agent work\n");
    let script = t.repo.join("scripts/review.sh");
    write_file(&script, "#!/bin/sh\necho 'touch \"$HOME/pwned\"'\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("mode");
    t.codex(&["config", "set", "review.hook", "./scripts/review.sh"])
        .assert()
        .success();
    // A commit through the hooks writes the cache the shim sources.
    t.commit_in(&t.repo, "warm.txt", "warm\n");
    let cache = t.state_dir().join("hooks-cache.sh");
    let before = std::fs::read(&cache).expect("cache");
    let logs = t.state_dir().join("logs/s");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let _ = std::fs::remove_file(logs.join("review-hook.log"));
    std::os::unix::fs::symlink("../../hooks-cache.sh", logs.join("review-hook.log"))
        .expect("plant link");
    let (code, _, err) = run(t.codex(&["session", "review", "s"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(&cache).expect("cache"),
        before,
        "the cache is untouched"
    );
    // The hook's log is git-codex's own record, out of the agent's reach (runs/, not logs/).
    let log = t.state_dir().join("runs/s/review-hook.log");
    assert!(!std::fs::symlink_metadata(&log).expect("log").is_symlink());
    assert!(
        std::fs::read_to_string(&log)
            .expect("log")
            .contains("pwned")
    );
    t.commit_in(&t.repo, "after.txt", "after\n");
    assert!(!t.home.join("pwned").exists(), "nothing ran");
}

#[test]
fn a_link_planted_in_the_logs_dir_is_never_written_through() {
    each_git(planted_links_are_replaced);
}

#[test]
fn restore_never_copies_files_through_a_link_the_agent_left() {
    each_git(|t| {
        // The person's untracked settings, copied into each session.
        write_file(&t.repo.join("conf/.env"), "SECRET=1\n");
        t.codex(&["config", "set", "session.copy_files", "[\"conf/.env\"]"])
            .assert()
            .success();
        let wt = t.add("s");
        // The agent swaps the dir for a link out of its worktree.
        let outside = t.root().join("outside");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::remove_dir_all(wt.join("conf")).expect("conf");
        std::os::unix::fs::symlink(&outside, wt.join("conf")).expect("plant link");
        t.codex(&["session", "remove", "s"]).assert().success();
        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !outside.join(".env").exists(),
            "nothing was written outside the worktree"
        );
    });
}

/// A victim file of the person's (a hook), and a check that it never changes.
fn victim(t: &TestEnv) -> (std::path::PathBuf, String) {
    let path = t.repo.join(".git/hooks/post-merge");
    write_file(&path, "#!/bin/sh\necho the person's hook\n");
    (
        path.clone(),
        std::fs::read_to_string(&path).expect("victim"),
    )
}

fn admin_dir(t: &TestEnv, id: &str) -> std::path::PathBuf {
    let wt = t.worktree(id);
    let git_file = std::fs::read_to_string(wt.join(".git")).expect(".git file");
    std::path::PathBuf::from(git_file.trim().trim_start_matches("gitdir:").trim())
}

#[test]
fn the_session_file_is_never_written_through_a_link() {
    each_git(|t| {
        let wt = t.add("s");
        let (path, before) = victim(t);
        let meta = wt.join(".codex-session.json");
        std::fs::remove_file(&meta).expect("session file");
        std::os::unix::fs::symlink(&path, &meta).expect("plant link");
        let (code, _, err) = run(t.codex(&["session", "touch", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("victim"), before);
        assert!(!std::fs::symlink_metadata(&meta).expect("meta").is_symlink());
    });
}

#[test]
fn an_index_the_agent_made_a_link_is_never_read_or_written_through() {
    each_git(|t| {
        let wt = t.add("s");
        let (path, before) = victim(t);
        write_file(&wt.join("work.txt"), "uncommitted\n");
        let index = admin_dir(t, "s").join("index");
        std::fs::remove_file(&index).expect("index");
        std::os::unix::fs::symlink(&path, &index).expect("plant link");
        // Removal snapshots from a copy of the index, and the trash keeps the admin dir.
        let (code, _, err) = run(t.codex(&["session", "remove", "s", "--force"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("victim"), before);
        // Restore takes the index back from the trash.
        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("victim"), before);
        let index = admin_dir(t, "s").join("index");
        assert!(
            !std::fs::symlink_metadata(&index)
                .expect("index")
                .is_symlink()
        );
        assert_ne!(std::fs::read(&index).expect("index"), before.as_bytes());
        assert_eq!(
            std::fs::read_to_string(t.worktree("s").join("work.txt")).expect("work"),
            "uncommitted\n"
        );
    });
}

#[test]
fn links_in_the_tmp_and_object_dirs_are_removed_never_followed() {
    each_git(|t| {
        let wt = t.add("s");
        let (path, before) = victim(t);
        let hooks = path.parent().expect("hooks dir").to_path_buf();
        t.commit_in(&wt, "a.txt", "agent work\n");
        let tmp = t.state_dir().join("tmp/s");
        std::fs::create_dir_all(&tmp).expect("tmp");
        std::os::unix::fs::symlink(&hooks, tmp.join("hooks")).expect("plant link");
        std::os::unix::fs::symlink(&path, tmp.join("file")).expect("plant link");
        // A confined run's object dir, as the agent could leave it.
        let objects = t.state_dir().join("objects/s");
        std::fs::create_dir_all(&objects).expect("objects");
        std::os::unix::fs::symlink(&hooks, objects.join("info")).expect("plant link");
        std::os::unix::fs::symlink(&hooks, objects.join("pack")).expect("plant link");
        std::os::unix::fs::symlink(&hooks, objects.join("ab")).expect("plant link");
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "remove", "s", "--force"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("victim"), before);
        assert!(hooks.join("pre-commit").is_file());
        assert!(hooks.join("post-merge").is_file());
    });
}

#[test]
fn review_never_reads_the_index_through_a_link() {
    each_git(|t| {
        let wt = t.add("s");
        let (path, before) = victim(t);
        write_file(&wt.join("work.txt"), "uncommitted\n");
        let index = admin_dir(t, "s").join("index");
        std::fs::remove_file(&index).expect("index");
        std::os::unix::fs::symlink(&path, &index).expect("plant link");
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("victim"), before);
        assert!(
            !std::fs::symlink_metadata(&index)
                .expect("index")
                .is_symlink()
        );
        let files = t.git_in(&wt, &["show", "--name-only", "--format=", "HEAD"]);
        assert_eq!(files, "work.txt");
    });
}
