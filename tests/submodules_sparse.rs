//! Submodules and sparse checkouts never lose work (issue 15, point 3): a session worktree's
//! initialized submodule (its commits live only in the worktree's admin dir,
//! `.git/worktrees/<name>/modules/…`) and an agent's changes outside the sparse cone go through
//! review, remove, expiry, restore and merge with nothing lost.

mod common;

use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, json, run, write_file};

/// Session `id` with its submodule initialized, a commit made inside it (which lives only in
/// the worktree's admin dir), an uncommitted edit and an untracked file there. Returns the
/// worktree and the submodule's new HEAD.
fn session_with_submodule_work(t: &TestEnv, id: &str) -> (PathBuf, String) {
    let wt = t.add(id);
    t.init_submodules(&wt);
    let sub = wt.join("sub");
    t.commit_in(&sub, "agent.txt", "committed inside the submodule\n");
    write_file(&sub.join("s.txt"), "edited inside the submodule\n");
    write_file(
        &sub.join("untracked.txt"),
        "untracked inside the submodule\n",
    );
    let head = t.git_in(&sub, &["rev-parse", "HEAD"]);
    (wt, head)
}

/// Removes session `id` the way `how` names: `session remove`, expiry then `session prune`,
/// or expiry then a branch checkout in the main worktree (the post-checkout hook prunes).
fn take_away(t: &TestEnv, how: &str, id: &str) {
    let (code, err) = match how {
        "remove" => {
            let (code, _, err) = run(t.codex(&["session", "remove", id]));
            (code, err)
        }
        "prune" => {
            t.age(id, 3);
            let (code, _, err) = run(t.codex(&["session", "prune"]));
            (code, err)
        }
        _ => {
            t.age(id, 3);
            let out = t.git_output(&t.repo, &["switch", "-q", "-c", &format!("b-{id}")]);
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    assert_eq!(code, 0, "{how}: {err}");
    assert!(!t.worktree(id).exists(), "{how} left the worktree: {err}");
}

const REMOVALS: [&str; 3] = ["remove", "prune", "checkout"];

/// What `session_with_submodule_work` left is there again, the submodule a working repository.
fn assert_submodule_work(t: &TestEnv, wt: &Path, head: &str, after: &str) {
    let sub = wt.join("sub");
    let out = t.git_output(&sub, &["rev-parse", "HEAD"]);
    assert!(
        out.status.success(),
        "after {after}, the submodule is no repository: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        head,
        "after {after}"
    );
    assert_eq!(
        t.git_in(&sub, &["show", "-s", "--format=%s", head]),
        "add agent.txt",
        "after {after}"
    );
    let status = t.git_in(&sub, &["status", "--porcelain"]);
    assert!(status.contains(" M s.txt"), "after {after}: {status}");
    assert!(
        status.contains("?? untracked.txt"),
        "after {after}: {status}"
    );
    assert_eq!(
        std::fs::read_to_string(sub.join("s.txt")).expect("s.txt"),
        "edited inside the submodule\n"
    );
}

#[test]
fn a_submodules_commits_and_edits_survive_remove_prune_and_post_checkout_then_restore() {
    each_git(|t| {
        t.add_submodule();
        for how in REMOVALS {
            let (wt, head) = session_with_submodule_work(t, how);
            take_away(t, how, how);

            let (code, _, err) = run(t.codex(&["session", "restore", how]));
            assert_eq!(code, 0, "restore after {how}: {err}");
            assert_submodule_work(t, &wt, &head, how);
            // Nothing of it is left behind in the trash to be emptied later.
            let left: Vec<_> = std::fs::read_dir(t.state_dir().join("trash"))
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(
                !left
                    .iter()
                    .any(|n| n.to_string_lossy().starts_with(&format!("{how}@"))),
                "{left:?}"
            );
        }
    });
}

/// A clean filter on every file of the submodule at `sub`, with a committed file whose time
/// changed (same size), so a status run there must run the filter: the agent's command,
/// which leaves the returned marker.
fn arm_clean_filter(t: &TestEnv, sub: &Path) -> PathBuf {
    let marker = t.root().join("marker");
    let filter = format!("echo ran >> '{}'; cat", marker.display());
    t.git_in(sub, &["config", "filter.evil.clean", &filter]);
    let git_dir = t.git_in(sub, &["rev-parse", "--path-format=absolute", "--git-dir"]);
    write_file(
        &Path::new(&git_dir).join("info/attributes"),
        "* filter=evil\n",
    );
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(sub.join("agent.txt"))
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    marker
}

#[test]
fn review_commits_a_submodule_moved_by_the_agent_and_merge_remove_keeps_its_commits() {
    each_git(|t| {
        t.add_submodule();
        let (wt, head) = session_with_submodule_work(t, "s");
        let marker = arm_clean_filter(t, &wt.join("sub"));
        let (code, out, err) = run(t.codex(&["session", "review", "s", "--format", "json"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !marker.exists(),
            "review ran git inside the submodule, under the agent's config"
        );
        let files = json(&out)["files"].to_string();
        assert!(
            files.contains("\"sub\""),
            "review does not show the submodule: {out}"
        );
        let tip = t.git(&["rev-parse", "codex/s"]);
        assert_eq!(
            t.git(&["rev-parse", &format!("{tip}:sub")]),
            head,
            "review did not commit the submodule's new commit"
        );

        // Again, with the gitlink now where the submodule is: `git add` would look inside.
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            !marker.exists(),
            "the second review ran git inside the submodule"
        );
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--remove"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["rev-parse", "main:sub"]), head);
        assert!(!wt.exists());

        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_submodule_work(t, &wt, &head, "merge --remove");
    });
}

/// A repository whose main worktree is a cone-mode sparse checkout of `in/` (`out/b.txt` is
/// tracked but not checked out); sessions inherit it.
fn sparse(t: &TestEnv) {
    t.write("in/a.txt", "in the cone\n");
    t.write("out/b.txt", "outside the cone\n");
    t.git(&["add", "in", "out"]);
    t.git(&["commit", "-q", "-m", "two dirs"]);
    t.git(&["sparse-checkout", "set", "in"]);
    assert!(!t.repo.join("out").exists());
}

#[test]
fn review_sees_and_commits_changes_outside_the_sparse_cone() {
    each_git(|t| {
        sparse(t);
        let wt = t.add("s");
        assert!(!wt.join("out").exists(), "the session is not sparse");
        // A tracked file outside the cone, edited: the only change.
        write_file(&wt.join("out/b.txt"), "edited by the agent\n");
        let list = json(&run(t.codex(&["session", "list", "--json"])).1);
        assert_eq!(list["sessions"][0]["dirty"], true, "{list}");
        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("out/b.txt"), "{out}");
        assert_eq!(t.git(&["show", "codex/s:out/b.txt"]), "edited by the agent");

        // A new file outside the cone.
        write_file(&wt.join("out/new.txt"), "new outside the cone\n");
        write_file(&wt.join("in/a.txt"), "edited in the cone\n");
        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("out/new.txt"), "{out}");
        assert_eq!(
            t.git(&["show", "codex/s:out/new.txt"]),
            "new outside the cone"
        );
        assert_eq!(t.git(&["show", "codex/s:in/a.txt"]), "edited in the cone");
        assert_eq!(t.git_in(&wt, &["status", "--porcelain"]), "");

        // Approved and merged into the sparse main worktree: all of it lands.
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(t.codex(&["session", "merge", "s", "--remove"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(t.git(&["show", "main:out/b.txt"]), "edited by the agent");
        assert_eq!(t.git(&["show", "main:out/new.txt"]), "new outside the cone");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    });
}

/// The agent's work outside the cone in a fresh session `id`.
fn sparse_work(t: &TestEnv, id: &str) -> PathBuf {
    let wt = t.add(id);
    write_file(&wt.join("out/b.txt"), "edited by the agent\n");
    write_file(&wt.join("out/new.txt"), "new outside the cone\n");
    wt
}

fn assert_sparse_work(wt: &Path, after: &str) {
    for (file, text) in [
        ("out/b.txt", "edited by the agent\n"),
        ("out/new.txt", "new outside the cone\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(wt.join(file)).ok().as_deref(),
            Some(text),
            "{file} after {after}"
        );
    }
}

#[test]
fn remove_prune_and_post_checkout_snapshot_changes_outside_the_cone_and_restore_brings_them_back() {
    each_git(|t| {
        sparse(t);
        for how in REMOVALS {
            let wt = sparse_work(t, how);
            take_away(t, how, how);
            // The snapshot, which outlives the trash, holds them.
            let snapshot = format!("refs/codex/snapshots/{how}");
            assert_eq!(
                t.git(&["show", &format!("{snapshot}:out/b.txt")]),
                "edited by the agent"
            );
            assert_eq!(
                t.git(&["show", &format!("{snapshot}:out/new.txt")]),
                "new outside the cone"
            );
            let (code, _, err) = run(t.codex(&["session", "restore", how]));
            assert_eq!(code, 0, "restore after {how}: {err}");
            assert_sparse_work(&wt, how);
        }
    });
}

#[test]
fn a_snapshot_alone_brings_back_changes_outside_the_cone() {
    each_git(|t| {
        sparse(t);
        t.set_config("[session]\ntrash_retention = \"1s\"\n");
        let wt = sparse_work(t, "s");
        let (code, _, err) = run(t.codex(&["session", "remove", "s"]));
        assert_eq!(code, 0, "{err}");
        // The trash is emptied once its retention has passed: the snapshot is all there is.
        let trash = t.state_dir().join("trash");
        for entry in std::fs::read_dir(&trash).expect("trash").flatten() {
            let meta = entry.path().join("meta.json");
            let mut v = json(&std::fs::read_to_string(&meta).expect("meta"));
            v["removed"] = "2000-01-01T00:00:00Z".into();
            std::fs::write(&meta, v.to_string()).expect("meta");
        }
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_dir(&trash).expect("trash").count(), 0);

        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert_sparse_work(&wt, "restore from the snapshot");
        let status = t.git_in(&wt, &["status", "--porcelain"]);
        assert!(status.contains(" M out/b.txt"), "{status}");
        assert!(status.contains("?? out/new.txt"), "{status}");
    });
}

/// The commits of the submodule in the admin dir `admin` (kept in the trash).
fn commits_in(t: &TestEnv, admin: &Path) -> String {
    let git_dir = admin.join("modules/sub").display().to_string();
    // Its core.worktree names the submodule's old place, gone.
    let root = t.root().display().to_string();
    t.git(&[
        "--git-dir",
        &git_dir,
        "--work-tree",
        &root,
        "log",
        "--format=%s",
        "HEAD",
    ])
}

/// The trash entries of session `id`.
fn trash_of(t: &TestEnv, id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(t.state_dir().join("trash"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{id}@")))
        })
        .collect()
}

#[test]
fn a_worktree_deleted_by_hand_leaves_its_submodules_commits_in_the_trash() {
    each_git(|t| {
        t.add_submodule();
        // Its record still there: pruned as a session whose worktree is missing.
        let (wt, _) = session_with_submodule_work(t, "gone");
        std::fs::remove_dir_all(&wt).expect("rm -rf");
        // No record either: git's entry for it is stale.
        let (wt, _) = session_with_submodule_work(t, "stale");
        std::fs::remove_dir_all(&wt).expect("rm -rf");
        std::fs::remove_file(t.state_dir().join("sessions/stale.json")).expect("record");

        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        for id in ["gone", "stale"] {
            assert!(
                !t.repo.join(format!(".git/worktrees/wt-{id}")).exists(),
                "{id}: git's entry is still there"
            );
            let kept = trash_of(t, id);
            assert_eq!(kept.len(), 1, "{id}: {kept:?}\n{err}");
            let log = commits_in(t, &kept[0].join("admin"));
            assert!(log.starts_with("add agent.txt"), "{id}: {log}");
            assert!(err.contains("git dirs of the submodules"), "{err}");
        }
    });
}

#[test]
fn submodules_that_cannot_go_back_stay_in_the_trash() {
    each_git(|t| {
        t.add_submodule();
        let (wt, _) = session_with_submodule_work(t, "s");
        let (code, _, err) = run(t.codex(&["session", "remove", "s"]));
        assert_eq!(code, 0, "{err}");
        // A worktree of the person's takes the admin dir name the session had.
        let theirs = t.root().join("elsewhere/wt-s").display().to_string();
        t.git(&["worktree", "add", "-q", "--detach", &theirs]);

        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("stay in the trash"), "{err}");
        assert!(wt.join("sub/s.txt").is_file());
        let kept = trash_of(t, "s");
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(commits_in(t, &kept[0].join("admin")).starts_with("add agent.txt"));
    });
}

#[test]
fn an_agent_cannot_hide_its_files_outside_the_cone_from_review() {
    each_git(|t| {
        sparse(t);
        let wt = t.add("s");
        // git would trust the skip-worktree marks, and never look at out/.
        t.git_in(
            &wt,
            &[
                "config",
                "--worktree",
                "sparse.expectFilesOutsideOfPatterns",
                "true",
            ],
        );
        write_file(&wt.join("out/b.txt"), "hidden edit\n");
        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("out/b.txt"), "{out}");
        assert_eq!(t.git(&["show", "codex/s:out/b.txt"]), "hidden edit");
    });
}
