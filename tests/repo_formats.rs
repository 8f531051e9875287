//! Repository formats git-codex cannot read yet say so (issue 15, point 4).

mod common;

use common::{each_git, run};

#[test]
fn a_sha256_repository_is_named_as_unsupported() {
    each_git(|t| {
        let repo = t.root().join("sha256");
        let out = t.git_output(
            &t.root(),
            &["init", "-q", "--object-format=sha256", "sha256"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, _, err) = run(t.codex_in(&repo, &["session", "list"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("SHA-256 repository"), "{err}");
        assert!(err.contains("does not support yet"), "{err}");
        assert!(!err.contains("not a git repository"), "{err}");
    });
}

/// The version of the git under test, as (major, minor).
fn git_version(t: &common::TestEnv) -> (u32, u32) {
    let out = t.git_output(&t.root(), &["--version"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut numbers = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

fn says_reftable_unsupported(err: &str) -> bool {
    err.contains("reftable") && err.contains("does not support yet")
}

/// A reftable repository (`git init --ref-format=reftable`, git 2.45+): gix reads refs from
/// files only, so every command would see no branches (init protected `.invalid`, `verify`
/// passed what it could not see). Every command refuses it instead, exit 2, nothing made.
#[test]
fn a_reftable_repository_is_named_as_unsupported_by_every_command() {
    each_git(|t| {
        if git_version(t) < (2, 45) {
            eprintln!(
                "skipped: {} cannot make reftable repositories (2.45+)",
                t.git.display()
            );
            return;
        }
        let root = t.root();
        t.git_in(
            &root,
            &["init", "-q", "--ref-format=reftable", "-b", "main", "rt"],
        );
        let repo = root.join("rt");
        common::write_file(&repo.join("a"), "a\n");
        t.git_in(&repo, &["add", "a"]);
        t.git_in(&repo, &["commit", "-q", "-m", "init"]);
        let head = t.git_in(&repo, &["rev-parse", "HEAD"]);
        let commands: &[&[&str]] = &[
            &["init"],
            &["session", "add", "s1"],
            &["session", "add", "s1", "--base", head.trim()],
            &["session", "list"],
            &["session", "prune"],
            &["verify"],
            &["verify", &format!("{}..main", head.trim())],
            &["config", "get", "review.protected"],
            &["config", "set", "review.protected", "main"],
            &["hook", "pre-commit"],
        ];
        for args in commands {
            let before = t.disk();
            let (code, _, err) = run(t.codex_in(&repo, args));
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(says_reftable_unsupported(&err), "{args:?}: {err}");
            assert!(err.contains("hint:"), "{args:?}: {err}");
            common::assert_disk_unchanged(&before, &t.disk(), &format!("{args:?}"));
        }
        let (code, out, err) = run(t.codex_in(&repo, &["doctor"]));
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            says_reftable_unsupported(&format!("{out}{err}")),
            "{out}{err}"
        );

        // A linked worktree's own config (which its agent may write) saying "files" changes
        // nothing: git still reads reftable, and so git-codex still refuses.
        t.git_in(&repo, &["config", "extensions.worktreeConfig", "true"]);
        t.git_in(&repo, &["worktree", "add", "-q", "../w"]);
        let w = root.join("w");
        t.git_in(
            &w,
            &["config", "--worktree", "extensions.refStorage", "files"],
        );
        for args in [
            &["session", "list"][..],
            &["verify"],
            &["hook", "pre-commit"],
        ] {
            let (code, _, err) = run(t.codex_in(&w, args));
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(says_reftable_unsupported(&err), "{args:?}: {err}");
        }
    });
}

/// Hooks git-codex installed before the repository moved to reftable (`git refs migrate`,
/// git 2.46+) fail closed: nothing moves a protected branch until it is back on files.
#[test]
fn hooks_of_a_repository_migrated_to_reftable_fail_closed() {
    each_git(|t| {
        if git_version(t) < (2, 46) {
            eprintln!(
                "skipped: {} cannot migrate to reftable (2.46+)",
                t.git.display()
            );
            return;
        }
        t.codex(&["init"]).assert().success();
        // git 2.46-2.47 migrate no reflogs.
        std::fs::remove_dir_all(t.repo.join(".git/logs")).unwrap();
        t.git(&["refs", "migrate", "--ref-format=reftable"]);
        let main = t.git(&["rev-parse", "main"]);
        common::write_file(&t.repo.join("b"), "b\n");
        t.git(&["add", "b"]);
        let out = t.git_output(&t.repo, &["commit", "-q", "-m", "on main"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(says_reftable_unsupported(&err), "{err}");
        assert_eq!(t.git(&["rev-parse", "main"]), main, "main did not move");
    });
}

/// A bare reftable server stays supported: its `pre-receive` gate and its config read refs
/// through the git CLI, which reads reftable. An unapproved session commit is refused there.
#[test]
fn a_bare_reftable_server_gates_pushes() {
    each_git(|t| {
        if git_version(t) < (2, 45) {
            eprintln!(
                "skipped: {} cannot make reftable repositories (2.45+)",
                t.git.display()
            );
            return;
        }
        let root = t.root();
        t.git_in(
            &root,
            &[
                "init",
                "-q",
                "--bare",
                "--ref-format=reftable",
                "-b",
                "main",
                "s.git",
            ],
        );
        let server = root.join("s.git");
        for args in [
            &["hooks", "install", "--server"][..],
            &["config", "set", "review.protected", "main"],
        ] {
            let (code, _, err) = run(t.codex_in(&server, args));
            assert_eq!(code, 0, "{args:?}: {err}");
        }
        let url = server.display().to_string();
        t.git(&["push", "-q", &url, "main"]);
        let main = t.git_in(&server, &["rev-parse", "main"]);
        let wt = t.add("s1");
        t.commit_in(&wt, "evil.txt", "unapproved\n");
        let out = t.git_output(
            &t.repo,
            &["push", "--no-verify", &url, "codex/s1", "codex/s1:main"],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("not approved"), "{err}");
        assert_eq!(t.git_in(&server, &["rev-parse", "main"]), main);
    });
}
