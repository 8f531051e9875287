//! A confined agent must not get a program of its choosing run by the person's git through the
//! session's submodules: git runs what a repository's own config names (`core.fsmonitor`,
//! hooks), and the person's `git status` in the session worktree runs git in every populated
//! submodule, reading the git dir its `.git` names.

mod common;

use std::path::{Path, PathBuf};

use common::sandbox::{can_confine, results, script};
use common::{TestEnv, each_git, run};

/// The program the agent hopes the person's git runs: it leaves `ran-<why>` in `marks`.
fn evil_program(t: &TestEnv) -> (PathBuf, String) {
    let marks = t.root().join("marks");
    std::fs::create_dir_all(&marks).expect("marks");
    let evil = script(
        t,
        "evil.sh",
        &format!("#!/bin/sh\ntouch '{}/ran-$1'\nexit 1\n", marks.display()),
    );
    (marks, evil)
}

/// Asserts nothing ran the agent's program.
fn assert_nothing_ran(marks: &Path) {
    let ran: Vec<_> = std::fs::read_dir(marks)
        .expect("marks")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        ran.is_empty(),
        "the person's git ran the agent's program: {ran:?}"
    );
}

#[test]
fn the_persons_git_in_a_sessions_submodules_runs_nothing_the_agent_chose() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add_with_submodule("m");
        let (marks, evil) = evil_program(t);
        let agent = script(
            t,
            "agent.sh",
            &format!(
                "#!/bin/sh\n\
                 # 1: the submodule's own config names a program.\n\
                 git -C sub config core.fsmonitor '{evil} config' 2>/dev/null; echo \"RESULT config=$?\"\n\
                 # 2: a hook in the submodule's git dir.\n\
                 hooks=$(git -C sub rev-parse --path-format=absolute --git-path hooks)\n\
                 printf '#!/bin/sh\\n{evil} hook\\n' > \"$hooks/post-checkout\" 2>/dev/null; echo \"RESULT hook=$?\"\n\
                 # 3: the submodule's .git names a git dir of the agent's own.\n\
                 git init -q evil && git -C evil config core.fsmonitor '{evil} gitfile'\n\
                 echo 'gitdir: ../evil/.git' > sub/.git; echo \"RESULT gitfile=$?\"\n\
                 # 4: the submodule's git dir made a linked worktree's, its config elsewhere.\n\
                 gitdir=$(git -C sub rev-parse --path-format=absolute --git-dir 2>/dev/null || true)\n\
                 echo \"$PWD/evil/.git\" > \"$(dirname \"$hooks\")/commondir\"; echo \"RESULT commondir=$?\"\n",
            ),
        );
        let (code, out, err) = run(t.codex(&["session", "run", "m", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        let r = results(&out);
        assert_ne!(
            r["config"], "0",
            "the submodule's config was writable: {out}{err}"
        );
        assert_ne!(
            r["hook"], "0",
            "the submodule's hooks were writable: {out}{err}"
        );
        // What the agent left is moved aside, and said.
        assert!(err.contains("moved aside"), "{err}");
        assert!(worktree.join("sub/.git.agent-planted").exists());
        // The person's git in the session worktree and its submodule runs none of it.
        for args in [
            vec!["status"],
            vec!["submodule", "status"],
            vec!["diff", "--submodule=log"],
        ] {
            t.git_in(&worktree, &args);
        }
        assert_nothing_ran(&marks);
        // The submodule itself is as it was: its history reads, its `.git` names its git dir.
        t.init_submodules(&worktree);
        assert_eq!(
            t.git_in(&worktree.join("sub"), &["log", "--format=%s"]),
            "add s.txt"
        );
        assert_nothing_ran(&marks);
    });
}

#[test]
fn a_swapped_submodule_git_dir_or_a_stopped_rebase_in_it_runs_nothing_for_the_person() {
    if !can_confine() {
        return;
    }
    each_git(|t| {
        let worktree = t.add_with_submodule("m");
        t.commit_in(&worktree.join("sub"), "second.txt", "two\n");
        let (marks, evil) = evil_program(t);
        let agent = script(
            t,
            "agent.sh",
            &format!(
                "#!/bin/sh\n\
                 # A rebase left stopped in the submodule, an exec line to come.\n\
                 (cd sub && GIT_SEQUENCE_EDITOR='sed -i \"1i break\" ; sed -i \"\\$a exec {evil} exec\"' git rebase -q -i HEAD~1 >/dev/null 2>&1)\n\
                 # The submodule's git dir renamed, and one of the agent's made in its place.\n\
                 M=$(cd sub && git rev-parse --absolute-git-dir)\n\
                 mv \"$M\" \"$M.old\"; echo \"RESULT renamed=$?\"\n\
                 cp -a \"$M.old\" \"$M\"; rm -f \"$M/config\"; rm -rf \"$M/hooks\"; mkdir \"$M/hooks\"\n\
                 printf '[core]\\n\\trepositoryformatversion = 0\\n\\tworktree = ../../../../../sub\\n\\tfsmonitor = \"{evil} config\"\\n' > \"$M/config\"\n\
                 printf '#!/bin/sh\\n{evil} hook\\n' > \"$M/hooks/post-checkout\"; chmod +x \"$M/hooks/post-checkout\"\n",
            ),
        );
        let (code, out, err) = run(t.codex(&["session", "run", "m", "--", &agent]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("moved aside"), "{err}");
        // The person goes on in the session worktree and its submodule.
        t.git_in(&worktree, &["status"]);
        let sub = worktree.join("sub");
        t.git_in(&sub, &["status"]);
        let _ = t.git_output(&sub, &["rebase", "--continue"]);
        t.git_in(&sub, &["checkout", "-q", "HEAD~1"]);
        assert_nothing_ran(&marks);
    });
}
