//! Output conventions: exit codes, git-style messages, colour, where git-codex refuses to run.

mod common;

use common::{each_git, run};

#[test]
fn outside_a_repository_is_bad_input() {
    each_git(|t| {
        let outside = t.root().join("nowhere");
        std::fs::create_dir_all(&outside).unwrap();
        // GIT_CEILING_DIRECTORIES keeps discovery from wandering above the temp dir.
        let mut cmd = t.codex_in(&outside, &["session", "list"]);
        cmd.env("GIT_CEILING_DIRECTORIES", t.root());
        let (code, out, err) = run(cmd);
        assert_eq!(code, 2, "{err}");
        assert_eq!(out, "");
        assert!(err.starts_with("error: not a git repository"), "{err}");
        assert!(err.contains("hint:"), "{err}");
        assert!(!outside.join(".git").exists());
    });
}

#[test]
fn a_bare_repository_is_refused() {
    each_git(|t| {
        t.git_in(&t.root(), &["init", "-q", "--bare", "bare.git"]);
        let bare = t.root().join("bare.git");
        let before = t.disk();
        let (code, _, err) = run(t.codex_in(&bare, &["session", "add", "x"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("bare repository"), "{err}");
        common::assert_disk_unchanged(&before, &t.disk(), "a bare repository");
    });
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    each_git(|t| {
        let (code, _, _) = run(t.codex(&["frobnicate"]));
        assert_eq!(code, 2);
        let (code, _, _) = run(t.codex(&["session", "add"]));
        assert_eq!(code, 2);
        let (code, out, _) = run(t.codex(&["--help"]));
        assert_eq!(code, 0);
        assert!(out.contains("Exit codes"), "{out}");
        let (code, out, _) = run(t.codex(&["session", "--help"]));
        assert_eq!(code, 0);
        assert!(out.contains("add") && out.contains("remove"), "{out}");
    });
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    each_git(|t| {
        let esc = '\u{1b}';
        let (_, _, err) = run(t.codex(&["--color", "always", "session", "show", "nope"]));
        assert!(err.contains(esc), "always colours: {err:?}");
        let (_, _, err) = run(t.codex(&["session", "show", "nope"]));
        assert!(
            !err.contains(esc),
            "auto without a terminal is plain: {err:?}"
        );
        let mut cmd = t.codex(&["session", "show", "nope"]);
        cmd.env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
        let (_, _, err) = run(cmd);
        assert!(!err.contains(esc), "NO_COLOR wins in auto: {err:?}");
        let (_, _, err) = run(t.codex(&["--color", "never", "session", "show", "nope"]));
        assert_eq!(err.lines().next(), Some("error: no session 'nope'"));
        assert!(
            err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
            "{err}"
        );
    });
}
