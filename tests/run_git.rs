//! Agents use git inside a confined `session run` as they do elsewhere (issue 15, point 5):
//! LFS-tracked files commit, `git stash` says why it cannot save and what to do instead, and
//! while the agent has commits of its own the person's history-wide commands (`log --all`,
//! `gc`, `maintenance run`, `fsck`) work in the main worktree and lose nothing of the agent's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::sandbox::{can_confine, has_lfs, results, script};
use common::{TestEnv, each_git, run};

/// Git in `dir`, which must succeed; its stdout.
fn git_ok(t: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let out = t.git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `*.bin` tracked by LFS, with `shared.bin` committed on main (its object in the shared
/// LFS store).
fn track_lfs(t: &TestEnv) {
    t.git(&["lfs", "install", "--local"]);
    t.git(&["lfs", "track", "*.bin"]);
    t.write("shared.bin", "the person's large file\n");
    t.git(&["add", ".gitattributes", "shared.bin"]);
    t.git(&["commit", "-q", "-m", "lfs"]);
}

/// Where the shared LFS store keeps the object `oid`.
fn lfs_object(t: &TestEnv, oid: &str) -> PathBuf {
    t.repo
        .join(".git/lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(oid)
}

/// The LFS oid a pointer file names.
fn pointer_oid(pointer: &str) -> String {
    pointer
        .lines()
        .find_map(|l| l.strip_prefix("oid sha256:"))
        .unwrap_or_else(|| panic!("not an LFS pointer: {pointer}"))
        .to_string()
}

#[test]
fn an_lfs_file_commits_inside_a_confined_run_and_its_object_reaches_the_shared_store() {
    if !can_confine() || !has_lfs() {
        return;
    }
    each_git(|t| {
        track_lfs(t);
        let worktree = t.add("l");
        let agent = script(
            t,
            "lfs.sh",
            "#!/bin/sh\n\
             echo 'the agent made this' > agent.bin\n\
             git add agent.bin && git commit -q -m 'an lfs file'\n\
             echo \"RESULT commit=$?\"\n\
             rm shared.bin && git checkout -- shared.bin\n\
             echo \"RESULT restored=$(cat shared.bin)\"\n\
             echo \"RESULT status=$(git status --porcelain | wc -l)\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "l", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_eq!(r["commit"], "0", "{out}{err}");
        // Objects of the shared store read as ever.
        assert_eq!(r["restored"], "the person's large file", "{out}{err}");
        assert_eq!(r["status"], "0", "{out}{err}");
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "codex/l"]),
            "an lfs file"
        );
        let pointer = t.git(&["cat-file", "-p", "codex/l:agent.bin"]);
        let oid = pointer_oid(&pointer);
        assert_eq!(
            std::fs::read_to_string(lfs_object(t, &oid)).expect("the agent's LFS object"),
            "the agent made this\n"
        );
        // A checkout of the session's work has the file itself, not its pointer.
        let check = t.root().join("check");
        let check_arg = check.display().to_string();
        git_ok(
            t,
            &t.repo,
            &["worktree", "add", "-q", "--detach", &check_arg, "codex/l"],
        );
        assert_eq!(
            std::fs::read_to_string(check.join("agent.bin")).expect("checked out"),
            "the agent made this\n"
        );
        git_ok(t, &t.repo, &["lfs", "fsck"]);
        assert!(git_ok(t, &worktree, &["status", "--porcelain"]).is_empty());
        assert!(!t.repo.join(".git/codex/lfs/l").exists());
    });
}

/// What the agent leaves in its own LFS store is checked before it joins the person's: an
/// object whose content is not what its name says, a link to a file of the person's, and a
/// copy of an object the person has, changed, are not taken; the person's object is unchanged.
#[test]
fn lfs_objects_that_are_not_what_they_claim_are_not_imported() {
    if !can_confine() || !has_lfs() {
        return;
    }
    each_git(|t| {
        track_lfs(t);
        let shared_oid = pointer_oid(&t.git(&["cat-file", "-p", "main:shared.bin"]));
        let shared_before = std::fs::read(lfs_object(t, &shared_oid)).expect("shared object");
        t.add("p");
        let secret = t.home.join(".gitconfig").display().to_string();
        // The store's path comes from git-lfs itself, as any agent would find it.
        let agent = script(
            t,
            "plant-lfs.sh",
            &format!(
                "#!/bin/sh\n\
                 set -e\n\
                 store=$(git lfs env | sed -n 's/^LocalMediaDir=//p')\n\
                 put() {{ mkdir -p \"$store/$(echo $1 | cut -c1-2)/$(echo $1 | cut -c3-4)\"; \
                 echo \"$store/$(echo $1 | cut -c1-2)/$(echo $1 | cut -c3-4)/$1\"; }}\n\
                 lie={lie}\n\
                 echo 'not what the name says' > $(put $lie)\n\
                 ln -s {secret} $(put {link})\n\
                 rm -f $(put {shared}); echo 'a changed copy' > $(put {shared})\n\
                 echo RESULT planted=yes\n",
                lie = "ab".repeat(32),
                link = "cd".repeat(32),
                shared = shared_oid,
            ),
        );
        let (code, out, err) = run(t.codex(&["session", "run", "p", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(results(&out)["planted"], "yes", "{out}{err}");
        assert!(
            err.contains("LFS object(s)") && err.contains("dropped"),
            "{err}"
        );
        assert!(!lfs_object(t, &"ab".repeat(32)).exists());
        assert!(std::fs::symlink_metadata(lfs_object(t, &"cd".repeat(32))).is_err());
        assert_eq!(
            std::fs::read(lfs_object(t, &shared_oid)).expect("shared object"),
            shared_before
        );
        assert!(!t.repo.join(".git/codex/lfs/p").exists());
    });
}

#[test]
fn git_stash_in_a_confined_run_says_why_it_cannot_save_and_what_to_do() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add("st");
        let agent = script(
            t,
            "stash.sh",
            "#!/bin/sh\n\
             echo 'work in progress' >> README.md\n\
             git stash > \"$TMPDIR/push.txt\" 2>&1; echo \"RESULT push=$?\"\n\
             git -C \"$PWD\" -c core.quotepath=false stash push -m wip > \"$TMPDIR/push2.txt\" 2>&1; echo \"RESULT push2=$?\"\n\
             git stash list > \"$TMPDIR/list.txt\" 2>&1; echo \"RESULT list=$?\"\n\
             git status --short > \"$TMPDIR/status.txt\" 2>&1; echo \"RESULT status=$?\"\n\
             c=$(git stash create) && git checkout -- README.md && git diff --quiet && git stash apply -q \"$c\"\n\
             echo \"RESULT create-apply=$? $(grep -c 'work in progress' README.md)\"\n\
             cp \"$TMPDIR\"/*.txt \"$CODEX_LOG_DIR/\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "st", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_ne!(r["push"], "0", "{out}");
        assert_ne!(r["push2"], "0", "{out}");
        assert_eq!(r["list"], "0", "{out}");
        assert_eq!(r["status"], "0", "{out}");
        // What the hint offers works there.
        assert_eq!(r["create-apply"], "0 1", "{out}{err}");
        let logs = t.state_dir().join("logs/st");
        let said = |name: &str| std::fs::read_to_string(logs.join(name)).expect(name);
        for name in ["push.txt", "push2.txt"] {
            let text = said(name);
            assert!(
                text.contains("refs/stash is shared"),
                "{name} says no why: {text}"
            );
            assert!(
                text.contains("hint:") && text.contains("git commit"),
                "{name} says not what to do: {text}"
            );
        }
        // Only a stash that fails says so.
        assert!(
            !said("status.txt").contains("hint:"),
            "{}",
            said("status.txt")
        );
        assert!(!said("list.txt").contains("hint:"), "{}", said("list.txt"));
        // Nothing was lost: the change is still in the worktree, no stash was made.
        assert!(
            std::fs::read_to_string(worktree.join("README.md"))
                .expect("readme")
                .contains("work in progress")
        );
        assert_eq!(t.git(&["stash", "list"]), "");
    });
}

/// The agent: commits, says so, then waits until the test lets it go (or a minute passes).
const COMMIT_AND_WAIT: &str = "#!/bin/sh\n\
     echo 'the agent was here' > agent.txt\n\
     git add agent.txt && git commit -q -m 'agent work' && touch \"$TMPDIR/committed\"\n\
     n=0; while [ ! -e \"$HOME/go\" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done\n";

/// A `session run` in the background; lets its agent go when dropped.
struct Running<'a> {
    t: &'a TestEnv,
    child: Option<Child>,
}

impl Running<'_> {
    fn finish(mut self) -> i32 {
        std::fs::write(self.t.home.join("go"), "").expect("go");
        let mut child = self.child.take().expect("child");
        child.wait().expect("wait").code().unwrap_or(-1)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.t.home.join("go"), "");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// Starts `session run id` with [`COMMIT_AND_WAIT`] and returns once the agent committed.
fn run_until_committed<'a>(t: &'a TestEnv, id: &str) -> Running<'a> {
    run_until_said(t, id, COMMIT_AND_WAIT)
}

/// Starts `session run id` with the agent `text`, and returns once the agent made
/// `$TMPDIR/committed`.
fn run_until_said<'a>(t: &'a TestEnv, id: &str, text: &str) -> Running<'a> {
    let agent = script(t, &format!("agent-{id}.sh"), text);
    let child = std::process::Command::new(common::BIN)
        .env_clear()
        .envs(t.vars())
        .current_dir(&t.repo)
        .args(["session", "run", id, "--", &agent])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("session run");
    let running = Running {
        t,
        child: Some(child),
    };
    let committed = t.state_dir().join("tmp").join(id).join("committed");
    let start = Instant::now();
    while !committed.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the agent never committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

#[test]
fn history_wide_commands_work_during_a_confined_run_and_lose_nothing_of_the_agents() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add("h");
        let tip = t.git(&["rev-parse", "codex/h"]);
        let running = run_until_committed(t, "h");
        // The person, in the main worktree, while the agent's commit exists only in its store.
        let log = git_ok(t, &t.repo, &["log", "--all", "--format=%s"]);
        assert!(log.contains("initial"), "{log}");
        git_ok(t, &t.repo, &["fsck", "--no-dangling"]);
        git_ok(t, &t.repo, &["gc", "--quiet", "--prune=now"]);
        git_ok(t, &t.repo, &["maintenance", "run"]);
        git_ok(t, &t.repo, &["fsck", "--no-dangling"]);
        // The session's worktree is on its branch, as the person left it.
        assert_eq!(
            git_ok(t, &worktree, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/codex/h"
        );
        assert_eq!(git_ok(t, &t.repo, &["rev-parse", "codex/h"]).trim(), tip);
        assert_eq!(running.finish(), 0);
        // Then the agent's commit is on the session's branch, whole.
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "codex/h"]),
            "agent work"
        );
        assert_eq!(t.git(&["show", "codex/h:agent.txt"]), "the agent was here");
        assert_eq!(
            git_ok(t, &worktree, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/codex/h"
        );
        assert!(git_ok(t, &worktree, &["status", "--porcelain"]).is_empty());
        assert!(git_ok(t, &t.repo, &["log", "--all", "--format=%s"]).contains("agent work"));
        git_ok(t, &t.repo, &["gc", "--quiet", "--prune=now"]);
        git_ok(t, &t.repo, &["fsck", "--no-dangling"]);
    });
}

/// What the agent leaves as its worktree's HEAD is the person's git's to read after the run:
/// a HEAD naming no object the repository has would break `log --all` and `gc` for good.
#[test]
fn a_head_the_agent_points_at_nothing_does_not_break_the_persons_history_commands() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add("n");
        let agent = script(
            t,
            "bogus-head.sh",
            "#!/bin/sh\necho 'x' > x.txt && git add x.txt && git commit -q -m 'real work'\n\
             echo 1234567890123456789012345678901234567890 > \"$(git rev-parse --absolute-git-dir)/HEAD\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "n", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("is no commit of the repository's"), "{err}");
        assert_eq!(
            git_ok(t, &worktree, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/codex/n"
        );
        git_ok(t, &t.repo, &["log", "--all", "--format=%s"]);
        git_ok(t, &t.repo, &["gc", "--quiet"]);
        git_ok(t, &t.repo, &["fsck", "--no-dangling"]);
    });
}

/// A session worktree's submodules keep their git dirs in its admin dir (`modules/`): whole
/// repositories, which the agent's own copy of the admin dir does not copy but mounts. What
/// the agent writes there is in the shared dir at once, and the submodule's commits made
/// before the run are still there after it.
#[test]
fn a_sessions_submodule_git_dir_is_the_shared_one_during_a_confined_run() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add_with_submodule("m");
        t.commit_in(&worktree.join("sub"), "before.txt", "made before the run\n");
        let before = t.git_in(&worktree.join("sub"), &["rev-parse", "HEAD"]);
        let running = run_until_said(
            t,
            "m",
            "#!/bin/sh\n\
             touch \"$(git -C sub rev-parse --absolute-git-dir)/agent-was-here\"\n\
             git status --porcelain > /dev/null && touch \"$TMPDIR/committed\"\n\
             n=0; while [ ! -e \"$HOME/go\" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done\n",
        );
        let modules = t.repo.join(".git/worktrees/wt-m/modules/sub");
        assert!(modules.join("agent-was-here").is_file());
        assert!(!t.state_dir().join("admin/m/modules/sub").exists());
        assert_eq!(running.finish(), 0);
        assert_eq!(
            t.git_in(&worktree.join("sub"), &["rev-parse", "HEAD"]),
            before
        );
        assert_eq!(
            t.git_in(&worktree.join("sub"), &["log", "-1", "--format=%s"]),
            "add before.txt"
        );
        git_ok(t, &t.repo, &["fsck", "--no-dangling"]);
    });
}
