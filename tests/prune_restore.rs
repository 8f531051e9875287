//! Expiry and pruning that never lose work: `session prune`, `session restore`, orphan repair.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{TestEnv, assert_disk_unchanged, each_git, json, run, write_file};

fn ids(t: &TestEnv) -> Vec<String> {
    let list = json(&run(t.codex(&["session", "list", "--json"])).1);
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every file under `dir` with its bytes and mode, except `.git` and the metadata that
/// git-codex rewrites for each incarnation of a session.
fn files(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, u32)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n == ".git" || n == ".codex-session.json")
        {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push((
                rel,
                std::fs::read(&path).unwrap(),
                meta.permissions().mode() & 0o777,
            ));
        }
    }
}

/// A session with every kind of work: a commit on its branch, a modified tracked file, a new
/// untracked file, an executable file and a deletion.
fn busy_session(t: &TestEnv, id: &str) -> std::path::PathBuf {
    let wt = t.add(id);
    write_file(&wt.join("committed.txt"), "committed on the branch\n");
    t.git_in(&wt, &["add", "committed.txt"]);
    t.git_in(&wt, &["commit", "-q", "-m", "agent commit"]);
    write_file(&wt.join("README.md"), "modified by the agent\n");
    write_file(&wt.join("new/untracked.txt"), "brand new\n");
    write_file(&wt.join("tool.sh"), "#!/bin/sh\necho tool\n");
    std::fs::set_permissions(wt.join("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    wt
}

#[test]
fn a_dirty_expired_session_is_pruned_then_restored_byte_identical() {
    each_git(|t| {
        t.write("gone.txt", "to be deleted\n");
        t.git(&["add", "gone.txt"]);
        t.git(&["commit", "-q", "-m", "gone"]);
        let wt = busy_session(t, "dirty");
        std::fs::remove_file(wt.join("gone.txt")).unwrap();
        let before = files(&wt);
        let log_before = t.git(&["log", "--format=%H %s", "codex/dirty"]);
        write_file(&t.state_dir().join("logs/dirty/run.log"), "agent output\n");
        t.age("dirty", 3);

        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Pruned session 'dirty': expired"), "{err}");
        assert!(err.contains("refs/codex/snapshots/dirty"), "{err}");
        assert!(!wt.exists());
        assert!(ids(t).is_empty());
        assert_eq!(
            t.git(&["log", "--format=%H %s", "codex/dirty"]),
            log_before,
            "branch history intact"
        );
        assert!(
            t.state_dir().join("logs/dirty/run.log").is_file(),
            "logs are kept"
        );
        assert!(!t.state_dir().join("tmp/dirty").exists(), "tmp dir goes");

        let (code, out, err) = run(t.codex(&["session", "restore", "dirty"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), wt.display().to_string());
        assert_eq!(files(&wt), before, "every file identical, modes included");
        assert_eq!(t.git(&["log", "--format=%H %s", "codex/dirty"]), log_before);
        let status = t.git_in(&wt, &["status", "--porcelain"]);
        assert!(
            status.contains(" M README.md") && status.contains(" D gone.txt"),
            "{status}"
        );
        assert!(
            status.contains("?? new/") && status.contains("?? tool.sh"),
            "{status}"
        );
        let s = &json(&run(t.codex(&["session", "list", "--json"])).1)["sessions"][0];
        assert_eq!(
            s["state"], "review-pending",
            "live again, its commit awaiting review"
        );
        assert!(s["expiresInSeconds"].as_i64().unwrap() > 3000);
    });
}

#[test]
fn restore_brings_back_a_removed_session_whose_merged_branch_was_deleted() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("wip.txt"), "work in progress\n");
        t.codex(&["session", "remove", "s"]).assert().success();
        assert_eq!(
            t.git(&["branch", "--list", "codex/s"]),
            "",
            "no commits of its own: deleted"
        );
        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::read_to_string(wt.join("wip.txt")).unwrap(),
            "work in progress\n"
        );
        assert_eq!(
            t.git(&["rev-parse", "codex/s"]),
            t.git(&["rev-parse", "main"])
        );
    });
}

#[test]
fn restore_refuses_a_live_session_and_an_unknown_one() {
    each_git(|t| {
        t.add("live");
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "restore", "live"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("live"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "restoring a live session");
        let (code, _, err) = run(t.codex(&["session", "restore", "ghost"]));
        assert_eq!(code, 4, "{err}");
        assert!(err.contains("no session 'ghost'"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "restoring an unknown session");
    });
}

#[test]
fn dry_run_says_what_would_go_and_changes_nothing() {
    each_git(|t| {
        let wt = busy_session(t, "old");
        t.age("old", 2);
        std::fs::create_dir_all(t.repo.join(".codex-worktrees/wt-stray")).unwrap();
        write_file(
            &t.repo.join(".codex-worktrees/wt-stray/file.txt"),
            "stray\n",
        );
        let before = t.disk();
        let (code, out, err) = run(t.codex(&["session", "prune", "--dry-run", "--json"]));
        assert_eq!(code, 0, "{err}");
        assert_disk_unchanged(&before, &t.disk(), "prune --dry-run");
        let v = json(&out);
        assert_eq!(v["dryRun"], true);
        let kinds: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"expired") && kinds.contains(&"unowned"),
            "{v}"
        );
        let (code, _, err) = run(t.codex(&["session", "prune", "--dry-run"]));
        assert_eq!(code, 0);
        assert!(err.contains("Would prune session 'old': expired"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "prune --dry-run");
        assert!(wt.exists());
    });
}

#[test]
fn a_session_in_its_time_or_with_ttl_never_is_never_pruned() {
    each_git(|t| {
        let fresh = t.add("fresh");
        t.codex(&["session", "add", "forever", "--ttl", "never"])
            .assert()
            .success();
        t.age("forever", 10_000);
        write_file(&fresh.join("wip.txt"), "w\n");
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Nothing to prune"), "{err}");
        assert_eq!(ids(t), vec!["forever", "fresh"]);
        assert!(fresh.join("wip.txt").exists());
    });
}

#[test]
fn a_commit_on_the_branch_counts_as_activity() {
    each_git(|t| {
        let wt = t.add("committer");
        t.age("committer", 5);
        // The agent commits now: the session lives on.
        write_file(&wt.join("f.txt"), "f\n");
        t.git_in(&wt, &["add", "f.txt"]);
        let mut commit = std::process::Command::new(&t.git);
        commit
            .env_clear()
            .envs(t.vars())
            .env_remove("GIT_COMMITTER_DATE")
            .current_dir(&wt)
            .args(["commit", "-q", "-m", "fresh"]);
        assert!(commit.status().unwrap().success());
        let s = &json(&run(t.codex(&["session", "list", "--json"])).1)["sessions"][0];
        assert_eq!(s["state"], "review-pending", "not expired: {s}");
    });
}

#[test]
fn session_add_prunes_expired_sessions_first() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 1\n");
        let old = t.add("old");
        write_file(&old.join("wip.txt"), "saved\n");
        t.age("old", 2);
        let (code, _, err) = run(t.codex(&["session", "add", "new"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Pruned session 'old'"), "{err}");
        assert!(!old.exists());
        assert_eq!(ids(t), vec!["new"]);
        assert_eq!(
            t.git(&["show", "refs/codex/snapshots/old:wip.txt"]),
            "saved"
        );
    });
}

#[test]
fn a_record_without_a_worktree_is_repaired_and_its_unmerged_branch_kept() {
    each_git(|t| {
        let wt = busy_session(t, "lost");
        let tip = t.git(&["rev-parse", "codex/lost"]);
        std::fs::remove_dir_all(&wt).unwrap();
        let untouched = t.add("untouched");
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Pruned session 'lost': its worktree"), "{err}");
        assert_eq!(ids(t), vec!["untouched"]);
        assert_eq!(
            t.git(&["rev-parse", "codex/lost"]),
            tip,
            "unmerged branch kept"
        );
        assert!(
            !t.git(&["worktree", "list", "--porcelain"])
                .contains("wt-lost")
        );
        assert!(untouched.exists());
    });
}

#[test]
fn an_orphan_worktree_is_snapshotted_then_trashed_and_a_plain_dir_left_alone() {
    each_git(|t| {
        // A real worktree whose record vanished, and a plain dir nobody made through git-codex:
        // git-codex cannot prove it made the plain dir, so it reports it and never touches it.
        let wt = t.add("norecord");
        write_file(&wt.join("precious.txt"), "keep\n");
        std::fs::remove_file(t.state_dir().join("sessions/norecord.json")).unwrap();
        let plain = t.repo.join(".codex-worktrees/wt-plain");
        write_file(&plain.join("notes.txt"), "plain notes\n");
        let untouched = t.add("untouched");
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(!wt.exists(), "{err}");
        assert_eq!(
            t.git(&["show", "refs/codex/snapshots/norecord:precious.txt"]),
            "keep"
        );
        assert!(err.contains("Left alone"), "{err}");
        assert_eq!(
            std::fs::read_to_string(plain.join("notes.txt")).unwrap(),
            "plain notes\n"
        );
        assert!(
            !t.git(&["worktree", "list", "--porcelain"])
                .contains("wt-norecord")
        );
        assert!(untouched.exists());
        assert_eq!(ids(t), vec!["untouched"]);
    });
}

#[test]
fn a_locked_admin_entry_whose_dir_is_gone_is_removed() {
    each_git(|t| {
        let wt = t.add("locked");
        t.git(&["worktree", "lock", wt.to_str().unwrap()]);
        std::fs::remove_file(t.state_dir().join("sessions/locked.json")).unwrap();
        std::fs::remove_dir_all(&wt).unwrap();
        // Plain git leaves a locked entry alone.
        t.git(&["worktree", "prune"]);
        assert!(
            t.git(&["worktree", "list", "--porcelain"])
                .contains("wt-locked")
        );
        let untouched = t.add("untouched");
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("stale git worktree entry") && err.contains("locked"),
            "{err}"
        );
        assert!(
            !t.git(&["worktree", "list", "--porcelain"])
                .contains("wt-locked")
        );
        assert!(untouched.exists());
    });
}

#[test]
fn an_orphan_branch_is_reported_and_never_deleted() {
    each_git(|t| {
        let wt = busy_session(t, "orphan");
        let tip = t.git(&["rev-parse", "codex/orphan"]);
        std::fs::remove_file(t.state_dir().join("sessions/orphan.json")).unwrap();
        t.git(&["worktree", "remove", "--force", wt.to_str().unwrap()]);
        let (code, out, err) = run(t.codex(&["session", "prune", "--json"]));
        assert_eq!(code, 0, "{err}");
        let v = json(&out);
        let item = &v["items"][0];
        assert_eq!(item["kind"], "orphan-branch", "{v}");
        assert_eq!(item["branch"], "codex/orphan");
        assert_eq!(item["acts"], false);
        assert_eq!(t.git(&["rev-parse", "codex/orphan"]), tip);
        let (_, _, err) = run(t.codex(&["session", "prune"]));
        assert!(
            err.contains("Found branch codex/orphan")
                && err.contains("1 commit(s) on no other branch")
                && err.contains("'git branch -D codex/orphan'"),
            "{err}"
        );
    });
}

#[test]
fn list_shows_an_expired_session_with_how_long_ago() {
    each_git(|t| {
        t.add("old");
        t.age("old", 3);
        let (_, table, _) = run(t.codex(&["session", "list"]));
        let line = table.lines().find(|l| l.starts_with("old")).unwrap();
        assert!(
            line.contains("expired") && line.contains("2h") && line.contains("ago"),
            "{line}"
        );
    });
}

#[test]
fn many_expired_sessions_are_pruned_together_each_with_its_own_work() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 16\n");
        for n in 0..6 {
            let wt = t.add(&format!("s{n}"));
            if n % 2 == 0 {
                write_file(&wt.join(format!("work{n}.txt")), &format!("work of {n}\n"));
            }
        }
        for n in 0..6 {
            t.age(&format!("s{n}"), 2);
        }
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(ids(t).is_empty(), "{err}");
        for n in (0..6).step_by(2) {
            let file = format!("refs/codex/snapshots/s{n}:work{n}.txt");
            assert_eq!(t.git(&["show", &file]), format!("work of {n}"));
        }
        let snapshots = t.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/codex/snapshots/",
        ]);
        assert_eq!(
            snapshots.lines().count(),
            3,
            "clean sessions need no snapshot: {snapshots}"
        );
        assert_eq!(
            t.git(&["for-each-ref", "refs/heads/codex/"]),
            "",
            "merged branches deleted"
        );
    });
}

/// A session whose worktree was removed by hand (`git worktree remove`, as doctor suggests
/// for a missing one) comes back with `restore`: pruned first, nothing of it lost.
#[test]
fn restore_brings_back_a_session_whose_worktree_was_removed_by_hand() {
    each_git(|t| {
        let wt = t.add("h");
        t.commit_in(&wt, "work.txt", "the agent's work\n");
        let out = t.git_output(
            &t.repo,
            &["worktree", "remove", "--force", wt.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, out, err) = run(t.codex(&["session", "restore", "h"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.trim_end().ends_with("wt-h"), "{out}");
        assert_eq!(
            std::fs::read_to_string(wt.join("work.txt")).unwrap(),
            "the agent's work\n"
        );
        assert_eq!(t.show("h")["branch"], "codex/h");
    });
}

/// A session whose branch was deleted by hand is flagged by doctor with the command that
/// puts the branch back at its last commit.
#[test]
fn doctor_flags_a_session_whose_branch_was_deleted_by_hand() {
    each_git(|t| {
        let wt = t.add("b");
        t.commit_in(&wt, "work.txt", "work\n");
        let last = t.git(&["rev-parse", "codex/b"]);
        t.git(&["update-ref", "-d", "refs/heads/codex/b"]);
        let check = common::doctor_check(t, "branches");
        assert_eq!(check["status"], "warn", "{check}");
        let hint = check["hint"].as_str().unwrap_or("");
        assert!(
            hint.contains(&format!("git branch codex/b {last}")),
            "{hint}"
        );
    });
}

/// With `core.autocrlf=true` and an `eol` attribute, a session restored from its snapshot (no
/// trash copy left) gets every file back byte for byte: line endings as the agent wrote them,
/// in untracked and in modified files alike (issue 15, point 7). The clean and smudge filters
/// are for committed content; what was never committed bypasses them.
#[test]
fn a_snapshot_restores_line_endings_byte_for_byte_under_autocrlf() {
    each_git(|t| {
        t.git(&["config", "core.autocrlf", "true"]);
        t.write(".gitattributes", "*.eol text eol=crlf\n");
        t.git(&["add", ".gitattributes"]);
        t.git(&["commit", "-q", "-m", "attributes"]);
        let wt = t.add("crlf");
        write_file(&wt.join("lf.txt"), "unix\nline endings\n");
        write_file(&wt.join("dos.txt"), "dos\r\nline endings\r\n");
        write_file(&wt.join("mixed.txt"), "mixed\r\nline endings\n");
        write_file(&wt.join("forced.eol"), "LF where the attributes say CRLF\n");
        write_file(&wt.join("README.md"), "modified with LF\n");
        // Names git would quote, one with a newline in it.
        write_file(&wt.join("odd\nname \"é\".txt"), "odd\n");
        let before = files(&wt);
        let (code, _, err) = run(t.codex(&["session", "remove", "crlf"]));
        assert_eq!(code, 0, "{err}");
        // As after `session.trash_retention`: only the snapshot is left.
        std::fs::remove_dir_all(t.state_dir().join("trash")).unwrap();
        let (code, _, err) = run(t.codex(&["session", "restore", "crlf"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("with its uncommitted work"), "{err}");
        assert_eq!(files(&wt), before, "every file byte for byte");
    });
}
