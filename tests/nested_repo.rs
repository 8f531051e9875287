//! Nested repositories the agent makes in its worktree, with a config of its own: git run
//! inside one honours that config (`core.fsmonitor`, clean filters, …) and runs the agent's
//! commands unconfined. git-codex's own git and gix never look inside one, and the review
//! names each one.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, json, run, write_file};

/// The agent's commands, and the file they leave when anything runs them.
struct Trap {
    marker: PathBuf,
}

impl Trap {
    fn new(t: &TestEnv) -> Trap {
        let marker = t.root().join("marker");
        let script = t.root().join("evil.sh");
        write_file(
            &script,
            &format!(
                "#!/bin/sh\necho \"$0 $*\" >> '{}'\nexit 1\n",
                marker.display()
            ),
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("mode");
        Trap { marker }
    }

    fn script(&self) -> PathBuf {
        self.marker.with_file_name("evil.sh")
    }

    /// Arms the nested repository at `sub`: an fsmonitor hook, and a clean filter on every
    /// file (through `info/attributes`, which the agent also owns), with a tracked file whose
    /// time changed (same size), so a status there must run the filter to compare it.
    fn arm(&self, t: &TestEnv, sub: &Path) {
        let script = self.script().display().to_string();
        t.git_in(sub, &["config", "core.fsmonitor", &script]);
        let filter = format!("echo filter >> '{}'; cat", self.marker.display());
        t.git_in(sub, &["config", "filter.evil.clean", &filter]);
        let git_dir =
            PathBuf::from(t.git_in(sub, &["rev-parse", "--path-format=absolute", "--git-dir"]));
        write_file(&git_dir.join("info/attributes"), "* filter=evil\n");
        let file = sub.join("f.txt");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .expect("open")
            .set_modified(later)
            .expect("mtime");
        let _ = std::fs::remove_file(&self.marker);
    }

    fn assert_untouched(&self, after: &str) {
        assert!(
            !self.marker.exists(),
            "{after} ran the nested repository's commands: {}",
            std::fs::read_to_string(&self.marker).unwrap_or_default()
        );
    }
}

/// A nested repository `sub` with one commit, made a submodule of the session by the agent
/// (gitlink and `.gitmodules` committed on its branch).
fn nested_submodule(t: &TestEnv, wt: &Path) -> PathBuf {
    let sub = wt.join("sub");
    t.git_in(wt, &["init", "-q", "sub"]);
    t.commit_in(&sub, "f.txt", "nested\n");
    write_file(
        &wt.join(".gitmodules"),
        "[submodule \"sub\"]\n\tpath = sub\n\turl = ./sub\n",
    );
    t.git_in(wt, &["add", ".gitmodules", "sub"]);
    t.git_in(wt, &["commit", "-q", "-m", "vendor sub"]);
    sub
}

#[test]
fn git_codex_never_runs_a_nested_repositorys_config() {
    each_git(|t| {
        let trap = Trap::new(t);
        let wt = t.add("s");
        let sub = nested_submodule(t, &wt);
        // Something for review to stage, so it runs `git add` there.
        write_file(&wt.join("work.txt"), "uncommitted\n");
        trap.arm(t, &sub);

        let (code, _, err) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session list");

        let (code, out, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session review");
        assert!(out.contains("nested repositor"), "{out}");
        assert!(err.contains("nested repository at sub/"), "{err}");

        // Again, now that review committed: the gitlink is in the index it refreshes.
        write_file(&wt.join("more.txt"), "more\n");
        trap.arm(t, &sub);
        let (code, out, err) = run(t.codex(&["session", "review", "s", "--format", "json"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("a second session review");
        let v = json(&out);
        assert_eq!(
            v["nestedRepositories"],
            serde_json::json!(["sub/"]),
            "{out}"
        );

        let (code, _, err) = run(t.codex(&["doctor"]));
        assert!(code == 0 || code == 1, "{err}");
        trap.assert_untouched("doctor");

        write_file(&wt.join("left.txt"), "left\n");
        trap.arm(t, &sub);
        let (code, _, err) = run(t.codex(&["session", "remove", "s", "--force"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session remove");

        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session restore");
    });
}

#[test]
fn a_dot_git_file_to_a_gitdir_of_the_agents_making_is_never_entered() {
    each_git(|t| {
        let trap = Trap::new(t);
        let wt = t.add("s");
        // `lib/.git` is a file naming a git dir the agent made elsewhere in its worktree.
        let lib = wt.join("lib");
        let hidden = wt.join(".hidden-gitdir");
        let hidden_arg = hidden.display().to_string();
        t.git_in(
            &wt,
            &["init", "-q", "--separate-git-dir", &hidden_arg, "lib"],
        );
        assert!(lib.join(".git").is_file());
        t.commit_in(&lib, "f.txt", "nested\n");
        t.git_in(&wt, &["add", "lib"]);
        t.git_in(&wt, &["commit", "-q", "-m", "lib"]);
        write_file(&wt.join("work.txt"), "uncommitted\n");
        trap.arm(t, &lib);

        let (code, _, err) = run(t.codex(&["session", "list"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session list");
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session review");
        assert!(err.contains("nested repository at lib/"), "{err}");

        write_file(&wt.join("left.txt"), "left\n");
        trap.arm(t, &lib);
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        t.age("s", 24 * 400);
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session prune");
    });
}

#[test]
fn an_untracked_nested_repository_is_named_and_never_entered() {
    each_git(|t| {
        let trap = Trap::new(t);
        let wt = t.add("s");
        let sub = wt.join("deep/sub");
        std::fs::create_dir_all(wt.join("deep")).expect("deep");
        t.git_in(&wt.join("deep"), &["init", "-q", "sub"]);
        t.commit_in(&sub, "f.txt", "nested\n");
        trap.arm(t, &sub);
        // First review: git adds it as a gitlink (git's own way with an embedded repository).
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session review");
        assert!(err.contains("nested repository at deep/sub/"), "{err}");
        // Second: a gitlink in the index must not make git look inside.
        write_file(&wt.join("work.txt"), "uncommitted\n");
        trap.arm(t, &sub);
        let (code, _, err) = run(t.codex(&["session", "review", "s"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("a second session review");
        let (code, _, err) = run(t.codex(&["session", "remove", "s", "--force"]));
        assert_eq!(code, 0, "{err}");
        trap.assert_untouched("session remove");
    });
}
