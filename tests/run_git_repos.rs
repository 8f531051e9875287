//! Agents use git inside a confined `session run` as they do elsewhere (issue 15, point 5),
//! in repositories other than the session's own: a clone of a repository it can read, a
//! repository it makes with `git init`, and a submodule of its session. Each keeps its objects
//! where git keeps them anywhere else, and none of them reaches the person's repository. The
//! agent's store of new objects is its own view: an alternate it adds there is never read when
//! its run settles.

mod common;

use std::path::Path;

use common::sandbox::{can_confine, has_lfs, results, script};
use common::{TestEnv, each_git, run};

/// Whether the person's repository has the object `id` (its shared store, or nowhere).
fn has_object(t: &TestEnv, id: &str) -> bool {
    t.git_output(&t.repo, &["cat-file", "-e", id])
        .status
        .success()
}

/// A repository of its own at `dir` with one commit, "upstream work"; its id.
fn upstream(t: &TestEnv, dir: &Path) -> String {
    let parent = dir.parent().expect("a parent dir");
    let name = dir.file_name().and_then(|n| n.to_str()).expect("a name");
    t.git_in(parent, &["init", "-q", "-b", "main", name]);
    common::write_file(&dir.join("u.txt"), "upstream\n");
    t.git_in(dir, &["add", "u.txt"]);
    t.git_in(dir, &["commit", "-q", "-m", "upstream work"]);
    t.git_in(dir, &["rev-parse", "HEAD"])
}

#[test]
fn git_clone_and_git_init_work_inside_a_confined_run_and_stay_out_of_the_persons_repo() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let up = upstream(t, &t.home.join("upstream"));
        let worktree = t.add("c");
        let agent = script(
            t,
            "repos.sh",
            "#!/bin/sh\n\
             git clone -q \"$HOME/upstream\" \"$TMPDIR/clone\"; echo \"RESULT clone=$?\"\n\
             echo \"RESULT clone-log=$(git -C \"$TMPDIR/clone\" log -1 --format=%s)\"\n\
             (cd \"$TMPDIR/clone\" && echo more > more.txt && git add more.txt \
              && git commit -q -m 'in the clone' && git fsck --no-dangling); \
             echo \"RESULT clone-commit=$?\"\n\
             git clone -q \"$PWD\" self; echo \"RESULT self=$?\"\n\
             echo \"RESULT self-log=$(git -C self log -1 --format=%s)\"\n\
             git -C self fsck --no-dangling; echo \"RESULT self-fsck=$?\"\n\
             (git init -q x && cd x && echo x > x.txt && git add x.txt \
              && git commit -q -m 'a repo of its own'); echo \"RESULT init=$?\"\n\
             echo \"RESULT init-log=$(git -C x log -1 --format=%s)\"\n\
             git -C \"$TMPDIR/clone\" rev-parse HEAD > \"$CODEX_LOG_DIR/clone-head\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "c", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        for name in ["clone", "clone-commit", "self", "self-fsck", "init"] {
            assert_eq!(r[name], "0", "{name}: {out}{err}");
        }
        assert_eq!(r["clone-log"], "upstream work", "{out}{err}");
        assert_eq!(r["self-log"], "initial", "{out}{err}");
        assert_eq!(r["init-log"], "a repo of its own", "{out}{err}");
        assert!(!err.contains("dropped"), "{err}");
        // The repository it made keeps its own objects: it works from outside too.
        let x = worktree.join("x");
        assert_eq!(
            t.git_in(&x, &["log", "-1", "--format=%s"]),
            "a repo of its own"
        );
        t.git_in(&x, &["fsck", "--no-dangling"]);
        // So does a clone of the session's repository (which borrows the shared store).
        let clone = worktree.join("self");
        assert_eq!(t.git_in(&clone, &["log", "-1", "--format=%s"]), "initial");
        t.git_in(&clone, &["fsck", "--no-dangling"]);
        // Nothing of the other repositories joined the person's, nor the session's record.
        let made = t.git_in(&x, &["rev-parse", "HEAD"]);
        let logs = t.state_dir().join("logs/c");
        let clone_head = std::fs::read_to_string(logs.join("clone-head")).expect("clone head");
        for id in [made.as_str(), up.as_str(), clone_head.trim()] {
            assert!(!has_object(t, id), "{id} reached the person's repository");
        }
        t.git(&["fsck", "--no-dangling"]);
    });
}

#[test]
fn git_inside_a_sessions_submodule_sees_and_keeps_the_submodules_own_objects() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add_with_submodule("m");
        let sub = worktree.join("sub");
        t.commit_in(&sub, "before.txt", "made before the run\n");
        let agent = script(
            t,
            "sub.sh",
            "#!/bin/sh\n\
             cd sub\n\
             echo \"RESULT log=$(git log --format=%s | tr '\\n' ,)\"\n\
             echo agent > agent.txt && git add agent.txt && git commit -q -m 'agent in sub'\n\
             echo \"RESULT commit=$?\"\n\
             git fsck --no-dangling; echo \"RESULT fsck=$?\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "m", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_eq!(r["log"], "add before.txt,add s.txt,", "{out}{err}");
        assert_eq!(r["commit"], "0", "{out}{err}");
        assert_eq!(r["fsck"], "0", "{out}{err}");
        // The submodule's commit is in the submodule's own git dir, whole.
        assert_eq!(
            t.git_in(&sub, &["log", "--format=%s"]),
            "agent in sub\nadd before.txt\nadd s.txt"
        );
        t.git_in(&sub, &["fsck", "--no-dangling"]);
        let made = t.git_in(&sub, &["rev-parse", "HEAD"]);
        assert!(
            !has_object(t, &made),
            "the submodule's commit is not the repository's"
        );
        assert!(!err.contains("dropped"), "{err}");
    });
}

/// The agent may write its own object store's `info/alternates` (and keep git-codex from
/// removing it), or link another repository's object into it: what it adds is its own git's
/// view only. When its run settles, nothing
/// is read through it: no object of the other repository joins the person's, and neither a
/// commit of the agent's that needs one (its branch, its ledger, its reflog would name it) nor
/// an index that stages one stays for the person's `gc` and `fsck` to fail on.
#[test]
fn an_alternate_the_agent_adds_to_its_store_is_never_read_when_its_run_settles() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let up = upstream(t, &t.home.join("upstream"));
        let blob = t.git_in(&t.home.join("upstream"), &["rev-parse", "HEAD:u.txt"]);
        let worktree = t.add("a");
        let tip = t.git(&["rev-parse", "codex/a"]);
        let agent = script(
            t,
            "alternates.sh",
            &format!(
                "#!/bin/sh\n\
                 store=$(git rev-parse --path-format=absolute --git-path objects)\n\
                 mkdir -p \"$store/info\"\n\
                 echo \"$HOME/upstream/.git/objects\" >> \"$store/info/alternates\"\n\
                 chmod 555 \"$store/info\"\n\
                 git cat-file -e {blob}; echo \"RESULT sees=$?\"\n\
                 tree=$(printf '100644 blob {blob}\\tborrowed.txt\\n' | git mktree)\n\
                 c=$(git commit-tree \"$tree\" -p HEAD -m 'needs a borrowed blob')\n\
                 git reset -q --soft \"$c\"; echo \"RESULT commit=$?\"\n\
                 git update-index --add --cacheinfo 100644,{blob},staged.txt; echo \"RESULT staged=$?\"\n\
                 mkdir -p \"$store/{b2}\"\n\
                 ln -s \"$HOME/upstream/.git/objects/{b2}/{b38}\" \"$store/{b2}/{b38}\"\n\
                 chmod 555 \"$store\"\n",
                b2 = &blob[..2],
                b38 = &blob[2..],
            ),
        );
        let (code, out, err) = run(t.codex(&["session", "run", "a", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_eq!(r["sees"], "0", "{out}{err}");
        assert_eq!(r["commit"], "0", "{out}{err}");
        assert_eq!(r["staged"], "0", "{out}{err}");
        assert!(
            err.contains("object(s) that session 'a' wrote did not match"),
            "{err}"
        );
        for id in [up.as_str(), blob.as_str()] {
            assert!(
                !has_object(t, id),
                "{id} was read through the agent's alternate"
            );
        }
        assert_eq!(t.git(&["rev-parse", "codex/a"]), tip);
        assert!(
            err.contains("commit(s) that session 'a' wrote need objects"),
            "{err}"
        );
        assert!(
            err.contains("the index session 'a' left named objects"),
            "{err}"
        );
        assert_eq!(
            t.git_in(&worktree, &["symbolic-ref", "HEAD"]),
            "refs/heads/codex/a"
        );
        assert_eq!(t.git_in(&worktree, &["status", "--porcelain"]), "");
        t.git(&["fsck", "--no-dangling"]);
        t.git(&["gc", "--quiet", "--prune=now"]);
        t.git(&["log", "--all", "--format=%s"]);
        assert!(!t.state_dir().join("objects/a").exists());
    });
}

/// The person's repository may borrow objects from another through a relative alternate
/// (its own `objects/info/alternates`, read relative to its object dir): inside the sandbox
/// the agent's git reads them as the person's does.
#[test]
fn objects_the_repository_borrows_through_a_relative_alternate_are_read_inside_a_confined_run() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let up = upstream(t, &t.home.join("base"));
        common::write_file(
            &t.repo.join(".git/objects/info/alternates"),
            "../../../home/base/.git/objects\n",
        );
        t.git(&["update-ref", "refs/heads/borrowed", &up]);
        t.add("b");
        let agent = script(
            t,
            "borrowed.sh",
            "#!/bin/sh\n\
             echo \"RESULT shown=$(git show borrowed:u.txt)\"\n\
             git merge -q --no-edit --allow-unrelated-histories borrowed; echo \"RESULT merge=$?\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "b", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_eq!(r["shown"], "upstream", "{out}{err}");
        assert_eq!(r["merge"], "0", "{out}{err}");
        assert!(!err.contains("does not exist"), "{err}");
        assert_eq!(t.git(&["show", "codex/b:u.txt"]), "upstream");
        t.git(&["fsck", "--no-dangling"]);
    });
}

/// A repository whose LFS store lies elsewhere (`lfs.storage`): inside the sandbox git-lfs
/// reads the person's objects there and writes its own to the agent's store, whose objects
/// join the person's store when the run settles.
#[test]
fn git_lfs_with_its_store_elsewhere_works_inside_a_confined_run() {
    if !can_confine() || !has_lfs() {
        return;
    }
    each_git(|t| {
        let store = t.home.join("lfs-store");
        t.git(&["config", "lfs.storage", &store.display().to_string()]);
        t.git(&["lfs", "install", "--local"]);
        t.git(&["lfs", "track", "*.bin"]);
        t.write("shared.bin", "the person's large file\n");
        t.git(&["add", ".gitattributes", "shared.bin"]);
        t.git(&["commit", "-q", "-m", "lfs"]);
        let worktree = t.add("l");
        let agent = script(
            t,
            "lfs-elsewhere.sh",
            "#!/bin/sh\n\
             rm shared.bin && git checkout -- shared.bin\n\
             echo \"RESULT restored=$(cat shared.bin)\"\n\
             echo 'the agent made this' > agent.bin\n\
             git add agent.bin && git commit -q -m 'an lfs file'; echo \"RESULT commit=$?\"\n",
        );
        let (code, out, err) = run(t.codex(&["session", "run", "l", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_eq!(r["restored"], "the person's large file", "{out}{err}");
        assert_eq!(r["commit"], "0", "{out}{err}");
        let pointer = t.git(&["cat-file", "-p", "codex/l:agent.bin"]);
        let oid = pointer
            .lines()
            .find_map(|l| l.strip_prefix("oid sha256:"))
            .unwrap_or_else(|| panic!("not an LFS pointer: {pointer}"));
        let object = store
            .join("objects")
            .join(&oid[..2])
            .join(&oid[2..4])
            .join(oid);
        assert_eq!(
            std::fs::read_to_string(&object).expect("the agent's LFS object"),
            "the agent made this\n"
        );
        t.git(&["lfs", "fsck"]);
        assert_eq!(t.git_in(&worktree, &["status", "--porcelain"]), "");
    });
}
