//! Issue 16: add, restore and remove killed (SIGKILL) at each of their git calls. The next
//! command finishes or rolls back what the killed one left, and nothing of the session's work
//! is lost: `restore` then brings back every file, byte for byte with its mode.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, run, write_file};

/// A `GIT_CODEX_GIT` that counts the calls git-codex `session <verb>` makes and kills that
/// git-codex (SIGKILL) right after the `KILL_AT`th returns (just before it runs, with
/// `KILL_BEFORE` set). Other callers (the person's git,
/// hooks) are passed through uncounted.
fn killer(t: &TestEnv, verb: &str) -> PathBuf {
    let path = t.root().join("killer.sh");
    let script = format!(
        r#"#!/bin/sh
case "$(tr '\0' ' ' < /proc/$PPID/cmdline 2>/dev/null)" in
  *"session {verb}"*) ;;
  *) exec "{git}" "$@" ;;
esac
n=$(($(cat "$KILL_COUNT" 2>/dev/null || echo 0) + 1))
echo $n > "$KILL_COUNT"
[ "$n" = "$KILL_AT" ] && [ -n "$KILL_BEFORE" ] && kill -9 $PPID && sleep 5
"{git}" "$@"
rc=$?
[ "$n" = "$KILL_AT" ] && kill -9 $PPID && sleep 5
exit $rc
"#,
        git = t.git.display()
    );
    write_file(&path, &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Runs `session <args>` with the killer armed at call `at`. Returns whether it was killed.
fn run_killed(t: &TestEnv, args: &[&str], at: usize) -> bool {
    run_killed_when(t, args, at, false)
}

fn run_killed_when(t: &TestEnv, args: &[&str], at: usize, before: bool) -> bool {
    let count = t.root().join("kill-count");
    let _ = std::fs::remove_file(&count);
    let verb = args[1];
    let killer = killer(t, verb);
    let mut cmd = t.codex(args);
    cmd.env("GIT_CODEX_GIT", &killer)
        .env("KILL_COUNT", &count)
        .env("KILL_AT", at.to_string());
    if before {
        cmd.env("KILL_BEFORE", "1");
    }
    let (code, _, err) = run(cmd);
    let calls: usize = std::fs::read_to_string(&count)
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if calls < at {
        assert_eq!(code, 0, "{args:?} failed unkilled: {err}");
        return false;
    }
    assert_ne!(code, 0, "{args:?} was not killed at call {at}");
    true
}

/// Every file under `dir` (`.git` aside) with its bytes and mode.
fn files(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u32)>) {
    let Ok(list) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in list.flatten() {
        let path = entry.path();
        // git-codex's own metadata file is written anew with each session.
        if path
            .file_name()
            .is_some_and(|n| n == ".git" || n == ".codex-session.json")
        {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        if meta.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.insert(
                rel.display().to_string(),
                (bytes, meta.permissions().mode() & 0o777),
            );
        }
    }
}

/// Asserts two file maps are equal, naming only the paths that differ.
fn assert_same(
    now: &BTreeMap<String, (Vec<u8>, u32)>,
    before: &BTreeMap<String, (Vec<u8>, u32)>,
    what: &str,
) {
    let mut diffs = Vec::new();
    for (path, old) in before {
        match now.get(path) {
            None => diffs.push(format!("missing {path}")),
            Some(new) if new != old => diffs.push(format!("differs {path}")),
            _ => {}
        }
    }
    diffs.extend(
        now.keys()
            .filter(|p| !before.contains_key(*p))
            .map(|p| format!("extra {p}")),
    );
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} files: {diffs:?}",
        diffs.len(),
        before.len()
    );
}

/// Session `s` with committed, modified, untracked, ignored and executable files, many of
/// them; returns its files.
fn busy_session(t: &TestEnv) -> BTreeMap<String, (Vec<u8>, u32)> {
    let wt = t.add("s");
    t.commit_in(&wt, ".gitignore", "*.log\n");
    for i in 0..60 {
        write_file(
            &wt.join(format!("src/d{}/f{i}.txt", i % 7)),
            &format!("file {i}\n"),
        );
    }
    t.git_in(&wt, &["add", "src"]);
    t.git_in(&wt, &["commit", "-q", "-m", "many"]);
    write_file(&wt.join("src/d0/f0.txt"), "changed, not committed\n");
    write_file(&wt.join("untracked.txt"), "untracked\n");
    write_file(&wt.join("build.log"), "ignored\n");
    write_file(&wt.join("run.sh"), "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(wt.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    files(&wt)
}

/// A sweep: for each call index until the command completes, a fresh repository is made by
/// `setup`, `args` are killed at that call, `next` runs, and `check` looks.
fn sweep(
    setup: impl Fn(&TestEnv) -> BTreeMap<String, (Vec<u8>, u32)>,
    args: &[&str],
    next: &[&[&str]],
    check: impl Fn(&TestEnv, &BTreeMap<String, (Vec<u8>, u32)>, usize),
) {
    // One git kills right after a call returns, the other right before the next runs: the
    // in-process work between two calls is swept too.
    let round = std::cell::Cell::new(0);
    each_git(|first| {
        let kill_before = round.get() % 2 == 1;
        round.set(round.get() + 1);
        let mut at = 1;
        loop {
            let t = TestEnv::new(&first.git);
            let before = setup(&t);
            let killed = run_killed_when(&t, args, at, kill_before);
            for command in next.iter().filter(|_| killed) {
                let (code, _, err) = run(t.codex(command));
                assert_eq!(
                    code, 0,
                    "after a kill at call {at}: {command:?} failed: {err}"
                );
            }
            check(&t, &before, at);
            if !killed {
                break;
            }
            at += 1;
        }
        assert!(at > 3, "the command made too few git calls to sweep: {at}");
    });
}

#[test]
fn a_restore_from_the_trash_killed_at_any_git_call_is_rolled_back_and_runs_again_whole() {
    sweep(
        |t| {
            let before = busy_session(t);
            t.codex(&["session", "remove", "s"]).assert().success();
            before
        },
        &["session", "restore", "s"],
        &[&["session", "prune"]],
        |t, before, at| {
            if !t.state_dir().join("sessions/s.json").exists() {
                t.codex(&["session", "restore", "s"]).assert().success();
            }
            assert_same(
                &files(&t.worktree("s")),
                before,
                &format!("killed at call {at}: the restored worktree differs"),
            );
            let list = t.git(&["worktree", "list", "--porcelain"]);
            assert_eq!(list.matches("worktree ").count(), 2, "{list}");
        },
    );
}

#[test]
fn a_restore_from_the_snapshot_killed_at_any_git_call_never_replaces_the_snapshot() {
    sweep(
        |t| {
            let before = busy_session(t);
            t.codex(&["session", "remove", "s"]).assert().success();
            // The trash emptied: the snapshot ref is all there is of the uncommitted work.
            std::fs::remove_dir_all(t.state_dir().join("trash")).expect("empty the trash");
            before
                .into_iter()
                .filter(|(path, _)| path != "build.log")
                .collect()
        },
        &["session", "restore", "s"],
        &[&["session", "prune"]],
        |t, before, at| {
            let snapshot = t.git(&["rev-parse", "refs/codex/snapshots/s"]);
            if !t.state_dir().join("sessions/s.json").exists() {
                t.codex(&["session", "restore", "s"]).assert().success();
            }
            assert_same(
                &files(&t.worktree("s")),
                before,
                &format!("killed at call {at}: the restored worktree differs"),
            );
            assert_eq!(
                t.git(&["rev-parse", "refs/codex/snapshots/s"]),
                snapshot,
                "killed at call {at}: the snapshot was replaced"
            );
        },
    );
}

#[test]
fn an_add_killed_at_any_git_call_is_rolled_back_and_the_same_add_then_works() {
    sweep(
        |_| BTreeMap::new(),
        &["session", "add", "s"],
        &[&["session", "prune"]],
        |t, _, at| {
            if !t.state_dir().join("sessions/s.json").exists() {
                t.codex(&["session", "add", "s"]).assert().success();
            }
            let (code, out, err) = run(t.codex(&["session", "show", "s", "--json"]));
            assert_eq!(
                code, 0,
                "killed at call {at}: no session after the second add: {err}"
            );
            assert!(out.contains("\"branch\""), "{out}");
            let list = t.git(&["worktree", "list", "--porcelain"]);
            assert_eq!(list.matches("worktree ").count(), 2, "{list}");
            assert!(
                !t.state_dir().join("journal/s.json").exists(),
                "killed at call {at}: the intent is left"
            );
        },
    );
}

#[test]
fn a_remove_killed_at_any_git_call_is_finished_by_the_next_command_and_restore_is_whole() {
    sweep(
        busy_session,
        &["session", "remove", "s"],
        // What a person does after a remove died: runs it again, and it succeeds.
        &[&["session", "remove", "s"]],
        |t, before, at| {
            assert!(
                !t.state_dir().join("sessions/s.json").exists(),
                "killed at call {at}: the session is still live after the re-run"
            );
            t.codex(&["session", "restore", "s"]).assert().success();
            assert_same(
                &files(&t.worktree("s")),
                before,
                &format!("killed at call {at}: the restored worktree differs"),
            );
        },
    );
}

#[test]
fn doctor_names_an_interrupted_restore_and_its_repair_works() {
    each_git(|t| {
        let before = busy_session(t);
        t.codex(&["session", "remove", "s"]).assert().success();
        assert!(run_killed(t, &["session", "restore", "s"], 1));
        let found = common::doctor_check(t, "interrupted");
        assert_eq!(found["status"], "fail", "{found}");
        assert!(
            found["detail"]
                .as_str()
                .is_some_and(|d| d.contains("restore of session s")),
            "{found}"
        );
        let hint = found["hint"].as_str().unwrap_or_default();
        assert!(hint.contains("git codex session prune"), "{found}");
        // While a command holds the lock (it is at work on it), it is in progress, not killed.
        let dir = std::fs::File::open(t.state_dir()).expect("state dir");
        dir.lock().expect("lock");
        let busy = common::doctor_check(t, "interrupted");
        assert_eq!(busy["status"], "warn", "{busy}");
        assert!(
            busy["detail"]
                .as_str()
                .is_some_and(|d| d.contains("in progress")),
            "{busy}"
        );
        drop(dir);
        t.codex(&["session", "prune"]).assert().success();
        assert_eq!(common::doctor_check(t, "interrupted")["status"], "ok");
        t.codex(&["session", "restore", "s"]).assert().success();
        assert_same(
            &files(&t.worktree("s")),
            &before,
            "restored after the repair",
        );
    });
}

#[test]
fn an_intent_naming_paths_git_codex_does_not_make_touches_nothing() {
    each_git(|t| {
        t.add("a");
        let victim = t.root().join("victim");
        write_file(&victim.join("worktree/precious.txt"), "mine\n");
        write_file(&victim.join("only/.git"), "gitdir: /nowhere\n");
        let journal = t.state_dir().join("journal");
        std::fs::create_dir_all(&journal).expect("journal dir");
        let plant = |name: &str, id: &str, worktree: &Path, entry: &Path| {
            let text = serde_json::json!({
                "op": "restore", "id": id, "branch": "codex/x",
                "worktree": worktree, "started": "2026-01-01T00:00:00Z",
                "entry": entry,
            });
            write_file(&journal.join(name), &text.to_string());
        };
        plant(
            "../../victim.json",
            "../../victim",
            &victim.join("only"),
            &victim,
        );
        plant("x.json", "x", &victim.join("only"), &victim);
        plant(
            "y.json",
            "y",
            &t.root().join("repo/.codex-worktrees/wt-y"),
            &victim,
        );
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("cannot finish the interrupted restore of session 'x'"),
            "{err}"
        );
        assert!(victim.join("worktree/precious.txt").is_file());
        assert!(victim.join("only/.git").is_file());
        let after = t.disk();
        let outside = |d: &common::Disk| {
            format!("{d:?}")
                .lines()
                .filter(|l| l.starts_with("victim"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(outside(&before), outside(&after));
        assert_eq!(common::doctor_check(t, "interrupted")["status"], "fail");
    });
}

/// A deletion killed halfway may take a worktree's `.git` file first (and git's admin dir):
/// the session is then named by doctor, and its repair works: nothing stuck, nothing lost.
#[test]
fn a_worktree_that_lost_its_git_file_is_named_removed_and_restored_whole() {
    for git in common::gits() {
        // (.git file gone, admin dir gone): each way a deletion may have got there.
        for (file_too, admin_too) in [(true, false), (true, true), (false, true)] {
            let t = &TestEnv::new(&git);
            let before = busy_session(t);
            let wt = t.worktree("s");
            if file_too {
                std::fs::remove_file(wt.join(".git")).expect("rm .git");
            }
            if admin_too {
                std::fs::remove_dir_all(t.repo.join(".git/worktrees/wt-s")).expect("rm admin");
            }
            let found = common::doctor_check(t, "worktrees");
            assert_eq!(found["status"], "fail", "{found}");
            let hint = found["hint"].as_str().unwrap_or_default().to_string();
            assert!(hint.contains("git codex session remove s"), "{found}");
            let (code, _, err) = run(t.codex(&["session", "remove", "s"]));
            assert_eq!(code, 0, "admin gone too: {admin_too}: {err}");
            t.codex(&["session", "restore", "s"]).assert().success();
            assert_same(
                &files(&wt),
                &before,
                &format!("admin gone too: {admin_too}"),
            );
            let status = t.git_in(&wt, &["status", "--porcelain"]);
            assert!(status.contains("untracked.txt"), "{status}");
        }
    }
}

/// A worktree base on another filesystem (tmpfs) than the trash: the move is a copy, then a
/// deletion. Killed at swept moments of a remove and of a restore, the next command finishes
/// or rolls back, and the work comes back whole: never a half-deleted tree snapshotted over
/// the saved one, never a half-copied tree restored.
#[test]
fn moves_across_filesystems_killed_at_swept_moments_lose_nothing() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have /dev/shm (tmpfs)"
        );
        eprintln!("skipped: no /dev/shm here, so no second filesystem to move across");
        return;
    }
    let git = common::gits().remove(0);
    for verb in ["remove", "restore"] {
        for delay_ms in [0u64, 25, 60, 120] {
            let t = &TestEnv::new(&git);
            let base = tempfile::Builder::new()
                .prefix("codex-xdev")
                .tempdir_in(shm)
                .expect("tmpfs dir");
            t.set_config(&format!(
                "[session]\nworktree_base = \"{}\"\n",
                base.path().display()
            ));
            let wt = t.add("s");
            for i in 0..800 {
                write_file(
                    &wt.join(format!("d{}/f{i}.txt", i % 30)),
                    &format!("file {i}\n"),
                );
            }
            let before = files(&wt);
            if verb == "restore" {
                t.codex(&["session", "remove", "s"]).assert().success();
            }
            let mut child = std::process::Command::new(common::BIN)
                .env_clear()
                .envs(t.vars())
                .current_dir(&t.repo)
                .args(["session", verb, "s"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let _ = child.kill();
            let _ = child.wait();
            let (code, _, err) = run(t.codex(&["session", "prune"]));
            assert_eq!(
                code, 0,
                "{verb} killed after {delay_ms} ms: prune failed: {err}"
            );
            if !t.state_dir().join("sessions/s.json").exists() {
                let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
                assert_eq!(
                    code, 0,
                    "{verb} killed after {delay_ms} ms: restore failed: {err}"
                );
            }
            assert_same(
                &files(&base.path().join("wt-s")),
                &before,
                &format!("{verb} killed after {delay_ms} ms"),
            );
        }
    }
}

/// A git killed with git-codex in the middle of `update-ref` leaves `<ref>.lock`, and git then
/// refuses that ref for good. The next command deletes it when no git runs in the repository,
/// and never while one does (a live git may hold a ref lock without keeping it open).
#[test]
fn a_ref_lock_left_by_a_killed_git_is_cleared_only_when_no_git_runs() {
    each_git(|t| {
        let before = busy_session(t);
        t.codex(&["session", "remove", "s"]).assert().success();
        assert!(run_killed(t, &["session", "restore", "s"], 1));
        // What `git update-ref refs/codex/bases/s` leaves when killed holding its lock.
        let lock = t.repo.join(".git/refs/codex/bases/s.lock");
        write_file(&lock, "0000000000000000000000000000000000000000\n");
        // A git at work in the repository: the lock may be its own.
        let mut busy = std::process::Command::new(&t.git)
            .args(["cat-file", "--batch"])
            .current_dir(&t.repo)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("git cat-file");
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(lock.exists(), "a lock was deleted while a git ran: {err}");
        drop(busy.stdin.take());
        busy.wait().expect("git ends");
        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("moved the stale git lock"), "{err}");
        assert!(!lock.exists());
        assert_same(
            &files(&t.worktree("s")),
            &before,
            "restored after the stale lock",
        );
    });
}

/// `merge --remove` killed after each of its git calls: the next command finishes the merge and
/// the removal, and a merged branch is never left behind without its session.
#[test]
fn a_merge_with_remove_killed_at_any_git_call_leaves_no_session_branch_behind() {
    sweep(
        |t| {
            let wt = t.add("s");
            write_file(&wt.join("s.txt"), "work\n");
            t.codex(&["session", "review", "s"]).assert().success();
            t.codex(&["session", "review", "s", "--approve"])
                .assert()
                .success();
            files(&wt)
        },
        &["session", "merge", "s", "--remove"],
        &[&["session", "prune"]],
        |t, _, at| {
            if t.state_dir().join("sessions/s.json").exists() {
                let (code, _, err) = run(t.codex(&["session", "merge", "s", "--remove"]));
                assert_eq!(code, 0, "killed at call {at}: merge again: {err}");
            }
            let landed = t.git(&["show", "main:s.txt"]);
            assert_eq!(landed, "work", "killed at call {at}");
            let branches = t.git(&["branch", "--list", "codex/*"]);
            assert!(branches.is_empty(), "killed at call {at}: left {branches}");
            assert!(
                !t.state_dir().join("journal/s.json").exists(),
                "killed at call {at}"
            );
        },
    );
}

/// A git-codex killed while it wrote a record leaves its temporary file (`.s.json.tmp<pid>`):
/// doctor names it and the repair deletes it; a live writer's is never touched.
#[test]
fn an_unfinished_record_write_is_named_and_cleared_but_a_live_ones_is_not() {
    each_git(|t| {
        t.add("s");
        let mut gone = std::process::Command::new("true").spawn().expect("true");
        let dead = gone.id();
        gone.wait().expect("true ends");
        let sessions = t.state_dir().join("sessions");
        let stale = sessions.join(format!(".s.json.tmp{dead}"));
        let live = sessions.join(format!(".s.json.tmp{}", std::process::id()));
        write_file(&stale, "{\"half\":");
        write_file(&live, "{\"half\":");
        let found = common::doctor_check(t, "interrupted");
        assert_eq!(found["status"], "fail", "{found}");
        assert!(
            found["detail"]
                .as_str()
                .is_some_and(|d| d.contains(stale.to_str().unwrap_or("?"))),
            "{found}"
        );
        t.codex(&["session", "prune"]).assert().success();
        assert!(!stale.exists());
        assert!(live.exists(), "a live writer's temp file was deleted");
        std::fs::remove_file(&live).expect("rm");
        assert_eq!(common::doctor_check(t, "interrupted")["status"], "ok");
    });
}

/// A review killed while git moved the session branch leaves `refs/heads/codex/s.lock` (crash
/// sweep: review after 160 ms): the re-run moves it aside and reviews.
#[test]
fn a_review_run_again_clears_the_branch_lock_a_killed_git_left() {
    each_git(|t| {
        let wt = t.add("s");
        write_file(&wt.join("one.txt"), "one\n");
        write_file(&t.repo.join(".git/refs/heads/codex/s.lock"), "");
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("refs/heads/codex/s.lock"), "{err}");
        assert!(!t.repo.join(".git/refs/heads/codex/s.lock").exists());
    });
}

/// Starts `session add x` with a `session.setup` of `sh -c BODY` and kills it once the setup
/// has run `pause` into BODY; returns the mark everything the setup started carries.
fn add_killed_during_setup(t: &TestEnv, body: &str, pause: std::time::Duration) -> String {
    let started = t.root().join("setup-started");
    let script = format!("touch '{}'; {body}", started.display());
    t.set_config(&format!(
        "[session]\nsetup = [[\"/bin/sh\", \"-c\", {script:?}]]\n"
    ));
    let mark = t.root().display().to_string();
    let mut child = t
        .codex_process(&["session", "add", "x"])
        .env("INTERRUPTED_SETUP_MARK", &mark)
        .spawn()
        .expect("start git-codex");
    common::wait_until("setup to start", || started.exists());
    std::thread::sleep(pause);
    let _ = child.kill();
    let _ = child.wait();
    mark
}

/// Attacker's break 5: a session.setup command still running when `session add` is killed
/// went on writing into the worktree after the next command had rolled the add back. It
/// ends with git-codex now, and with it what it started (here a child of its shell).
#[test]
fn a_setup_command_ends_with_a_killed_add() {
    each_git(|t| {
        let body = "(while :; do date >> setup.log; /bin/sleep 0.02; done) & wait";
        let mark = add_killed_during_setup(t, body, std::time::Duration::ZERO);
        common::wait_until("the setup command to end", || {
            common::marked("INTERRUPTED_SETUP_MARK", &mark).is_empty()
        });
        // The next command rolls the add back, and nothing writes there any more.
        let (code, out, err) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(!t.worktree("x").exists(), "the add was not rolled back");
    });
}

/// Attacker's break 5, its race: a setup command that forks without pause while git-codex is
/// killed. A round of killing misses what forked after it looked, and the gate used to stop
/// at the setup's own end (session.setup may leave a server running) and leave those behind;
/// once git-codex is gone it goes on until nothing it started is left.
#[test]
fn what_a_setup_forks_while_it_is_killed_goes_too() {
    each_git(|t| {
        let body = "i=0; while [ $i -lt 3000 ]; do /bin/sleep 120 & i=$((i + 1)); done; wait";
        let mark = add_killed_during_setup(t, body, std::time::Duration::from_millis(100));
        common::wait_until_or(
            || {
                let left = common::marked("INTERRUPTED_SETUP_MARK", &mark);
                format!("{} process(es) the setup forked to end", left.len())
            },
            || common::marked("INTERRUPTED_SETUP_MARK", &mark).is_empty(),
        );
    });
}

/// A git another repository's killed git-codex left, or a server a setup here left running on
/// purpose, is none of this replay's business: a killed add here is rolled back at once, not after
/// waiting for it in vain (every replay on the machine waited for it, then gave up).
#[test]
fn another_repositorys_leftover_does_not_hold_up_this_ones_replay() {
    each_git(|t| {
        let mut gone = std::process::Command::new("true").spawn().expect("true");
        let dead = gone.id();
        gone.wait().expect("wait");
        let elsewhere = tempfile::tempdir().expect("temp dir");
        // A real git of that dead git-codex, at work in the other repository until its input
        // ends (here: the end of the test).
        let other = elsewhere.path().join("other");
        t.git_in(elsewhere.path(), &["init", "-q", "other"]);
        let mut stray = std::process::Command::new(&t.git)
            .args(["cat-file", "--batch"])
            .current_dir(&other)
            .env("GIT_CODEX_PID", dead.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("git cat-file");
        // The first git call after which the killed add has left its intent.
        let mut left = None;
        for at in 1..30 {
            let t = TestEnv::new(&t.git);
            if !run_killed(&t, &["session", "add", "s"], at) {
                break;
            }
            if t.state_dir().join("journal/s.json").exists() {
                left = Some(t);
                break;
            }
        }
        let t = &left.expect("a kill that leaves the add's intent");
        // And in this repository, what a git-codex that ended well left running on purpose
        // (a server session.setup started): it carries the mark too, but is no git at work.
        let mut server = std::process::Command::new("sleep")
            .arg("600")
            .current_dir(&t.repo)
            .env("GIT_CODEX_PID", dead.to_string())
            .spawn()
            .expect("sleep");
        let (code, out, err) = run(t.codex(&["session", "prune"]));
        for leftover in [&mut stray, &mut server] {
            let _ = leftover.kill();
            let _ = leftover.wait();
        }
        assert_eq!(code, 0, "{out}{err}");
        assert!(!err.contains("still runs"), "{err}");
        assert!(!t.state_dir().join("journal/s.json").exists(), "{err}");
    });
}
