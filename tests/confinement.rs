//! Confinement (SPEC §7a, `sandbox.filesystem = "worktree"`), proved from inside `session
//! run`: the agent works and commits, and every way it could approve, land, unhook or
//! destroy fails with nothing changed outside its session.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{TestEnv, each_git, json, run, write_file};

/// Whether bubblewrap can make a mount namespace here; with CI=true it must.
fn can_confine() -> bool {
    let ok = std::process::Command::new("bwrap")
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev-bind",
            "/dev",
            "/dev",
            "--",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to confine (bubblewrap)"
        );
        eprintln!("skipping: bwrap cannot make a mount namespace here");
    }
    ok
}

/// The agent: a script of attempts, each printed as `TRY <name> <exit code>`.
const AGENT: &str = r#"
try() { name=$1; shift; "$@" >/dev/null 2>&1; echo "TRY $name $?"; }
# Work it may do.
echo "agent work" > feature.txt
try edit test -f feature.txt
try status git status --porcelain
try diff git diff
try log git log --oneline -1
try build sh -c 'mkdir -p "$TMPDIR/build" && echo built > "$TMPDIR/build/out" && test -f "$TMPDIR/build/out"'
try own-state sh -c 'echo state > "$STATE/session.log"'
git add feature.txt
try commit git commit -q -m "agent commit"
# What it must not do.
try hooks sh -c "echo 'exit 0' > '$COMMON/hooks/pre-commit'"
try new-hook sh -c "echo x > '$COMMON/hooks/evil'"
try approval-ref git update-ref "refs/codex/approvals/$CODEX_SESSION_ID" HEAD
try self-approve git codex session review "$CODEX_SESSION_ID" --approve
try codex-config sh -c "echo '[review]' >> '$COMMON/codex/config.toml'"
try git-config git config review.evil true
try other-worktree sh -c "echo x > '$OTHER/feature.txt'"
try main-worktree sh -c "echo x > '$MAIN/README.md'"
try move-main git update-ref refs/heads/main HEAD
try branch-f-main git branch -f main HEAD
try move-other git update-ref refs/heads/codex/other HEAD
# The repository's object dir is the agent's own store; the person's is its alternate.
shared=$(head -n 1 "$COMMON/objects/info/alternates")
try see-shared-objects test -d "$shared/pack"
try rm-objects sh -c "rm -rf '$shared'/*"
try rm-snapshot git update-ref -d refs/codex/snapshots/old
try rm-approval git update-ref -d refs/codex/approvals/other
try unprotect git codex config set review.protected '[]'
try unhook git codex hooks uninstall
try read-signing-key grep -q PRIVATE "$KEY"
try signal-outside kill -0 "$RUNNER"
true
"#;

fn attempts(out: &str) -> BTreeMap<String, i32> {
    out.lines()
        .filter_map(|l| l.strip_prefix("TRY "))
        .filter_map(|l| {
            let (name, code) = l.rsplit_once(' ')?;
            Some((name.to_string(), code.parse().ok()?))
        })
        .collect()
}

/// Every object in the repository, by `cat-file --batch-all-objects`.
fn objects(t: &TestEnv) -> BTreeSet<String> {
    t.git(&[
        "cat-file",
        "--batch-all-objects",
        "--batch-check=%(objectname)",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// What must not change: refs (but the session's own branch, and its ledger, which
/// git-codex grows after the run with what the agent committed), the main and the other
/// session's files, hooks, configs.
fn guarded(t: &TestEnv, other: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = t
        .git(&["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .filter(|l| !l.starts_with("refs/heads/codex/s ") && !l.starts_with("refs/codex/ledger/s "))
        .map(|l| ("ref".to_string(), l.to_string()))
        .collect();
    for path in [
        t.repo.join("README.md"),
        other.join("feature.txt"),
        t.repo.join(".git/config"),
        t.repo.join(".git/codex/config.toml"),
        t.repo.join(".git/hooks/pre-commit"),
        t.repo.join(".git/hooks/reference-transaction"),
    ] {
        out.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap_or_else(|_| "(absent)".to_string()),
        ));
    }
    out.push((
        "hooks".to_string(),
        format!(
            "{:?}",
            std::fs::read_dir(t.repo.join(".git/hooks"))
                .unwrap()
                .count()
        ),
    ));
    out
}

#[test]
fn a_confined_agent_commits_its_work_and_can_touch_nothing_else() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let other = t.add("other");
        t.commit_in(&other, "feature.txt", "the other session's work\n");
        t.codex(&["session", "review", "other", "--approve"])
            .assert()
            .success();
        let head = t.git(&["rev-parse", "HEAD"]);
        t.git(&["update-ref", "refs/codex/snapshots/old", &head]);
        let worktree = t.add("s");
        // The person signs approvals with a key file: the agent must not read it.
        let key = t.root().join("keys/approver");
        write_file(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n");
        t.git(&["config", "user.signingkey", key.to_str().unwrap()]);
        // An agent's own state dir, given by sandbox.writable_paths (made when missing).
        let state = t.root().join("agent-state");
        t.set_config(&format!(
            "[sandbox]\nwritable_paths = [\"{}\"]\n",
            state.display()
        ));
        let script = t.root().join("agent.sh");
        write_file(&script, AGENT);

        let before_objects = objects(t);
        let before = guarded(t, &other);
        let mut cmd = t.codex(&["session", "run", "s", "--", "/bin/sh"]);
        cmd.arg(&script)
            .env("COMMON", t.repo.join(".git"))
            .env("MAIN", &t.repo)
            .env("OTHER", &other)
            .env("KEY", &key)
            .env("STATE", &state)
            .env("RUNNER", std::process::id().to_string());
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(err.contains("filesystem confined: true (bwrap)"), "{err}");
        let tried = attempts(&out);
        for allowed in [
            "edit",
            "status",
            "diff",
            "log",
            "build",
            "own-state",
            "commit",
            "see-shared-objects",
        ] {
            assert_eq!(
                tried.get(allowed),
                Some(&0),
                "{allowed} must work: {out}\n{err}"
            );
        }
        for refused in [
            "hooks",
            "new-hook",
            "approval-ref",
            "self-approve",
            "codex-config",
            "git-config",
            "other-worktree",
            "main-worktree",
            "move-main",
            "branch-f-main",
            "move-other",
            "rm-objects",
            "rm-snapshot",
            "rm-approval",
            "unprotect",
            "unhook",
            "read-signing-key",
            "signal-outside",
        ] {
            let code = tried.get(refused).copied();
            assert!(
                matches!(code, Some(c) if c != 0),
                "{refused} must fail: {out}\n{err}"
            );
        }
        assert_eq!(tried.get("self-approve"), Some(&3), "{out}");
        assert_eq!(
            std::fs::read_to_string(state.join("session.log")).unwrap(),
            "state\n"
        );

        // Nothing outside the session changed; every object is still there and readable.
        assert_eq!(guarded(t, &other), before);
        // The session's ledger holds the agent's commit (git-codex recorded it after the run).
        let tip = t.git(&["rev-parse", "codex/s"]);
        let ledger_has_it = t.git_output(
            &t.repo,
            &["merge-base", "--is-ancestor", &tip, "refs/codex/ledger/s"],
        );
        assert!(ledger_has_it.status.success(), "the ledger records {tip}");
        let after_objects = objects(t);
        assert!(
            before_objects.is_subset(&after_objects),
            "objects were lost"
        );
        let fsck = t.git_output(&t.repo, &["fsck", "--no-dangling"]);
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stderr)
        );

        // The agent's commit is on its branch, HEAD is on the branch again, and the
        // session's own object directory is gone into the shared store.
        let log = t.git(&["log", "--format=%s", "codex/s"]);
        assert_eq!(log.lines().next(), Some("agent commit"), "{log}");
        assert_eq!(
            t.git_in(&worktree, &["symbolic-ref", "HEAD"]),
            "refs/heads/codex/s"
        );
        assert_eq!(t.git_in(&worktree, &["status", "--porcelain"]), "");
        assert!(!t.repo.join(".git/codex/objects/s").exists());
        let record = t.show("s");
        assert_eq!(record["lastRun"]["filesystemConfined"], true, "{record}");
        // The pinned files are as git made them.
        let admin = t.git_in(&worktree, &["rev-parse", "--absolute-git-dir"]);
        assert!(
            std::fs::read_to_string(worktree.join(".git"))
                .unwrap()
                .contains(&admin)
        );
    });
}

#[test]
fn open_mode_and_missing_bubblewrap_are_said_and_recorded() {
    each_git(|t| {
        t.set_config("[sandbox]\nfilesystem = \"open\"\nmode = \"network-enabled\"\n");
        t.add("o");
        let (code, out, err) = run(t.codex(&[
            "session",
            "run",
            "o",
            "--",
            "/bin/sh",
            "-c",
            "echo x > ../../README.md && echo WROTE",
        ]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), "WROTE", "open mode does not confine");
        assert!(err.contains("filesystem open"), "{err}");
        assert!(!err.contains("NOT confined"), "{err}");
        let s = t.show("o");
        assert_eq!(s["lastRun"]["filesystemConfined"], false);

        // Confinement asked for, but no bubblewrap on PATH: a warning, or exit 3.
        t.set_config("[sandbox]\nmode = \"network-enabled\"\n");
        let bin_dir = common::codex_only_path();
        let mut cmd = t.codex(&["session", "run", "o", "--", "/bin/sh", "-c", "true"]);
        cmd.env("PATH", &bin_dir);
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("the filesystem is NOT confined"), "{err}");
        let s = t.show("o");
        assert_eq!(s["lastRun"]["filesystemConfined"], false);
        let before = t.disk();
        let mut cmd = t.codex(&[
            "session",
            "run",
            "o",
            "--require-sandbox",
            "--",
            "/bin/sh",
            "-c",
            "echo RAN > ran.txt",
        ]);
        cmd.env("PATH", &bin_dir);
        let (code, _, err) = run(cmd);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("cannot confine the filesystem"), "{err}");
        common::assert_disk_unchanged(&before, &t.disk(), "a refused run");
    });
}

#[test]
fn commits_of_a_run_whose_git_codex_was_killed_reach_the_branch_later() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add("k");
        // The agent commits, says so, and works on; then its git-codex is killed.
        let agent = "echo work > killed.txt && git add killed.txt \
                     && git commit -q -m 'before the kill' && touch \"$TMPDIR/committed\"; sleep 30";
        let mut child = std::process::Command::new(common::BIN)
            .env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["session", "run", "k", "--", "/bin/sh", "-c", agent])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("session run");
        let committed = t.repo.join(".git/codex/tmp/k/committed");
        let start = std::time::Instant::now();
        while !committed.exists() {
            assert!(start.elapsed().as_secs() < 20, "the agent never committed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // While it works, a review waits for it.
        let (code, _, err) = run(t.codex(&["session", "review", "k"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("confined agent at work"), "{err}");
        let record = t.show("k");
        assert_eq!(record["agent"]["filesystemConfined"], true, "{record}");
        let sandbox_pid = record["agent"]["pid"].as_u64().expect("agent pid");
        child.kill().expect("kill git-codex");
        child.wait().expect("reap git-codex");
        // bwrap dies with its parent (and the agent with it): wait for that.
        let gone = || {
            std::fs::read_to_string(format!("/proc/{sandbox_pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true)
        };
        while !gone() {
            assert!(
                start.elapsed().as_secs() < 20,
                "the sandbox outlived git-codex"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            t.repo.join(".git/codex/objects/k").is_dir(),
            "the run never settled"
        );
        let branch_before = t.git(&["rev-parse", "codex/k"]);
        // Review settles what the run left: the commit joins the branch.
        let (code, _, err) = run(t.codex(&["session", "review", "k"]));
        assert_eq!(code, 0, "{err}");
        assert_ne!(t.git(&["rev-parse", "codex/k"]), branch_before);
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "codex/k"]),
            "before the kill"
        );
        assert_eq!(
            t.git_in(&worktree, &["symbolic-ref", "HEAD"]),
            "refs/heads/codex/k"
        );
        assert!(!t.repo.join(".git/codex/objects/k").exists());
        let fsck = t.git_output(&t.repo, &["fsck", "--no-dangling"]);
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stderr)
        );
    });
}

/// `doctor --json`'s check named `name`.
fn doctor_check(t: &TestEnv, path: Option<&str>, name: &str) -> serde_json::Value {
    let mut cmd = t.codex(&["doctor", "--json"]);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let v = json(&run(cmd).1);
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {v}"))
        .clone()
}

#[test]
fn doctor_says_whether_agents_are_confined_and_approvals_signed() {
    each_git(|t| {
        t.add("d");
        let bin_dir = common::codex_only_path();
        if can_confine() {
            let c = doctor_check(t, None, "confinement");
            assert_eq!(c["status"], "ok", "{c}");
            assert!(c["detail"].as_str().unwrap().contains("bwrap"), "{c}");
        }
        let c = doctor_check(t, Some(&bin_dir), "confinement");
        assert_eq!(c["status"], "warn", "{c}");
        assert!(
            c["detail"].as_str().unwrap().contains("cannot be confined"),
            "{c}"
        );
        t.set_config("[sandbox]\nfilesystem = \"open\"\n");
        let c = doctor_check(t, None, "confinement");
        assert_eq!(c["status"], "warn", "{c}");
        assert!(c["detail"].as_str().unwrap().contains("open"), "{c}");

        let s = doctor_check(t, None, "signing");
        assert_eq!(s["status"], "ok", "{s}");
        assert!(
            s["detail"].as_str().unwrap().contains("need not be signed"),
            "{s}"
        );
        let allowed = t.root().join("allowed_signers");
        let config = format!(
            "[review]\nrequire_signed = true\nallowed_signers = \"{}\"\n",
            allowed.display()
        );
        t.set_config(&config);
        let s = doctor_check(t, None, "signing");
        assert_eq!(s["status"], "fail", "{s}");
        assert!(
            s["detail"].as_str().unwrap().contains("does not exist"),
            "{s}"
        );
        write_file(&allowed, "someone@example.com ssh-ed25519 AAAA\n");
        let s = doctor_check(t, None, "signing");
        assert_eq!(s["status"], "ok", "{s}");
        assert!(
            s["detail"].as_str().unwrap().contains("must be signed"),
            "{s}"
        );
    });
}

/// An agent that commits a payload, resets it away and leaves only an innocent commit:
/// the payload stays a session commit (confined: every commit it wrote is recorded when the
/// run ends; open: the worktree's reflog is), so landing it on main is refused.
#[test]
fn a_commit_an_agent_reset_away_is_still_gated() {
    each_git(|t| {
        for filesystem in ["worktree", "open"] {
            if filesystem == "worktree" && !can_confine() {
                continue;
            }
            let id = format!("reset-{filesystem}");
            t.set_config(&format!("[sandbox]\nfilesystem = \"{filesystem}\"\n"));
            t.add(&id);
            let script = "echo payload > payload.txt && git add payload.txt && git commit -q -m payload \
                 && git rev-parse HEAD > \"$TMPDIR/payload\" && git reset -q --hard HEAD~1 \
                 && echo fine > fine.txt && git add fine.txt && git commit -q -m fine";
            let (code, out, err) = run(t.codex(&["session", "run", &id, "--", "sh", "-c", script]));
            assert_eq!(code, 0, "{out}\n{err}");
            let payload =
                std::fs::read_to_string(t.state_dir().join("tmp").join(&id).join("payload"))
                    .expect("the agent wrote its payload's id");
            let payload = payload.trim();
            let before = t.git(&["rev-parse", "main"]);
            let out = t.git_output(&t.repo, &["merge", "-q", "--ff-only", payload]);
            assert!(
                !out.status.success(),
                "{filesystem}: landing the payload is refused"
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(&format!("session '{id}'")), "{err}");
            assert_eq!(t.git(&["rev-parse", "main"]), before);
            t.git(&["reset", "-q", "--merge"]);
        }
    });
}
