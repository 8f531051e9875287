//! Issue 16, point 2: git lock files a killed git left (a killed agent's `index.lock` and
//! `HEAD.lock` in its worktree's admin dir, a killed merge's in the repository) are moved to
//! the trash when provably stale, before review, remove and merge run git there, with a
//! note; `doctor` names them with `git codex doctor --repair`, which works. A lock held by a
//! live process is never touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{TestEnv, doctor_check, each_git, run, write_file};

/// The admin dir of session `id`'s worktree (`.git/worktrees/<name>`).
fn admin(t: &TestEnv, id: &str) -> PathBuf {
    let text = std::fs::read_to_string(t.worktree(id).join(".git")).expect(".git file");
    PathBuf::from(text.trim().trim_start_matches("gitdir:").trim())
}

/// What a git killed mid-commit leaves: a lock naming a new value.
fn plant(path: &Path) {
    write_file(path, "0123456789abcdef0123456789abcdef01234567\n");
}

/// Every file under the trash whose name ends with `suffix`.
fn in_trash(t: &TestEnv, suffix: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, suffix, out);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&t.state_dir().join("trash"), suffix, &mut out);
    out
}

/// A process that lives until killed, at work in `cwd`, optionally holding `open` open.
fn bystander(cwd: &Path, open: Option<&Path>) -> Child {
    let stdin = match open {
        Some(path) => Stdio::from(std::fs::File::open(path).expect("open lock")),
        None => Stdio::null(),
    };
    Command::new("/bin/sleep")
        .arg("600")
        .current_dir(cwd)
        .stdin(stdin)
        .spawn()
        .expect("start sleep")
}

#[test]
fn review_moves_a_killed_gits_locks_aside_and_stages() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("work.txt"), "work\n");
        let admin = admin(t, "s");
        plant(&admin.join("index.lock"));
        plant(&admin.join("HEAD.lock"));
        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("moved the stale git lock"), "{err}");
        assert!(!admin.join("index.lock").exists());
        assert!(!admin.join("HEAD.lock").exists());
        // Kept in the trash, byte for byte: a HEAD.lock may name the only copy of a commit.
        let kept = in_trash(t, "HEAD.lock");
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(
            std::fs::read_to_string(&kept[0]).unwrap(),
            "0123456789abcdef0123456789abcdef01234567\n"
        );
        let files = t.git_in(&wt, &["show", "--name-only", "--format=", "HEAD"]);
        assert!(files.contains("work.txt"), "{files}");
    });
}

#[test]
fn a_lock_held_by_a_live_process_is_never_touched_until_it_is_stale() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("work.txt"), "work\n");
        let admin = admin(t, "s");
        let lock = admin.join("index.lock");
        plant(&lock);
        // Held open by a process elsewhere; then a process at work in the worktree.
        for (cwd, open) in [(t.root(), Some(lock.as_path())), (wt.clone(), None)] {
            let mut holder = bystander(&cwd, open);
            let (code, out, err) = run(t.codex(&["session", "review", "s"]));
            assert_ne!(code, 0, "{out}{err}");
            assert!(lock.exists(), "a held lock was moved: {err}");
            let (code, _, err) = run(t.codex(&["doctor", "--repair"]));
            assert!(
                lock.exists(),
                "doctor --repair moved a held lock: {code} {err}"
            );
            let c = doctor_check(t, "git-locks");
            assert_eq!(c["status"], "ok", "{c}");
            assert!(c["detail"].as_str().unwrap().contains("held by pid"), "{c}");
            holder.kill().unwrap();
            holder.wait().unwrap();
        }
        // Nothing holds it now: doctor names it and its repair.
        let c = doctor_check(t, "git-locks");
        assert_eq!(c["status"], "fail", "{c}");
        assert!(c["detail"].as_str().unwrap().contains("index.lock"), "{c}");
        assert!(c["detail"].as_str().unwrap().contains("session 's'"), "{c}");
        assert!(
            c["hint"]
                .as_str()
                .unwrap()
                .starts_with("git codex doctor --repair"),
            "{c}"
        );
        let (code, out, err) = run(t.codex(&["doctor", "--repair"]));
        assert!(
            err.contains("moved the stale git lock"),
            "{code} {out}{err}"
        );
        assert!(!lock.exists());
        assert_eq!(doctor_check(t, "git-locks")["status"], "ok");
        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{out}{err}");
    });
}

#[test]
fn merge_moves_the_repositorys_stale_index_lock_aside() {
    each_git(|t| {
        let wt = t.add("s");
        t.commit_in(&wt, "feature.txt", "feature\n");
        let (code, out, err) = run(t.codex(&["session", "review", "s", "--approve"]));
        assert_eq!(code, 0, "{out}{err}");
        let lock = t.repo.join(".git/index.lock");
        plant(&lock);
        let c = doctor_check(t, "git-locks");
        assert_eq!(c["status"], "fail", "{c}");
        assert!(
            c["detail"].as_str().unwrap().contains("the repository"),
            "{c}"
        );
        let (code, out, err) = run(t.codex(&["session", "merge", "s"]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("moved the stale git lock"), "{err}");
        assert!(!lock.exists());
        assert!(t.repo.join("feature.txt").exists());
        assert_eq!(doctor_check(t, "git-locks")["status"], "ok");
    });
}

#[test]
fn doctor_repair_clears_a_stale_ref_lock_of_the_repository() {
    each_git(|t| {
        t.add("s");
        let lock = t.repo.join(".git/refs/heads/codex/s.lock");
        plant(&lock);
        let c = doctor_check(t, "git-locks");
        assert_eq!(c["status"], "fail", "{c}");
        let hint = c["hint"].as_str().unwrap().to_string();
        let words: Vec<&str> = hint.split(" (").next().unwrap().split(' ').collect();
        assert_eq!(&words[..2], ["git", "codex"], "{hint}");
        let (code, out, err) = run(t.codex(&words[2..]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(!lock.exists());
        assert_eq!(in_trash(t, "s.lock").len(), 1);
        assert_eq!(doctor_check(t, "git-locks")["status"], "ok");
    });
}

#[test]
fn remove_with_a_killed_gits_locks_saves_the_work_and_restore_brings_it_back() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("work.txt"), "work\n");
        let admin = admin(t, "s");
        plant(&admin.join("index.lock"));
        plant(&admin.join("HEAD.lock"));
        let (code, out, err) = run(t.codex(&["session", "remove", "s"]));
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            std::fs::read_to_string(wt.join("work.txt")).unwrap(),
            "work\n"
        );
        assert!(!admin.join("index.lock").exists());
        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(doctor_check(t, "git-locks")["status"], "ok");
    });
}
