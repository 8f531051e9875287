//! Bad input is refused before anything changes: the documented exit code (SPEC §5: 2 bad
//! input, 4 unknown session), an error that says what and where, and nothing on disk made,
//! committed or recorded. A value `config set` accepts is one every later command accepts.

mod common;

use common::{TestEnv, assert_disk_unchanged, each_git, run, write_file};

/// Every session command given an id that names no session, in a repository never set up
/// (no `.git/codex`) and in one set up: exit 4, and not a file or directory made for it.
#[test]
fn an_unknown_session_leaves_no_trace() {
    each_git(|t| {
        let commands: &[&[&str]] = &[
            &["session", "run", "nosuch", "--", "true"],
            &["session", "review", "nosuch"],
            &["session", "review", "nosuch", "--approve"],
            &["session", "touch", "nosuch"],
            &["session", "merge", "nosuch"],
            &["session", "show", "nosuch"],
            &["session", "remove", "nosuch"],
            &["session", "restore", "nosuch"],
        ];
        let check_all = |when: &str| {
            for args in commands {
                let before = t.disk();
                let (code, _, err) = run(t.codex(args));
                assert_eq!(code, 4, "{when}: {args:?}: {err}");
                assert!(err.contains("nosuch"), "{when}: {args:?}: {err}");
                assert_disk_unchanged(&before, &t.disk(), &format!("{when}: {args:?}"));
            }
        };
        check_all("before init");
        assert!(!t.state_dir().exists());
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        check_all("after init");
    });
}

/// `review -o` into a directory that does not exist (or onto a directory): exit 2 before the
/// agent's work is committed, the ledger written or a report saved.
#[test]
fn review_with_an_unwritable_output_path_changes_nothing() {
    each_git(|t| {
        let wt = t.add("s1");
        write_file(&wt.join("new.txt"), "the agent's work\n");
        let dir = t.root().join("a-dir");
        std::fs::create_dir(&dir).unwrap();
        let missing = t.root().join("nonexistent/dir/r.md");
        for (path, what) in [(&missing, "nonexistent"), (&dir, "a-dir")] {
            let before = t.disk();
            let path = path.display().to_string();
            for extra in [&[][..], &["--approve"][..]] {
                let mut args = vec!["session", "review", "s1", "-o", &path];
                args.extend(extra);
                let (code, _, err) = run(t.codex(&args));
                assert_eq!(code, 2, "{args:?}: {err}");
                assert!(err.contains(what) && err.contains("hint:"), "{err}");
                assert_disk_unchanged(&before, &t.disk(), &format!("review -o {path}"));
            }
        }
        // A good path still works, and the work is committed then.
        let out = t.root().join("r.md").display().to_string();
        let (code, _, err) = run(t.codex(&["session", "review", "s1", "-o", &out]));
        assert_eq!(code, 0, "{err}");
        assert!(std::fs::read_to_string(&out).unwrap().contains("new.txt"));
    });
}

/// `config set KEY VALUE` refuses with exit 2 (file unchanged) each value that would make a
/// later command fail; `config validate` refuses the same value written into the file.
fn refused(t: &TestEnv, key: &str, value: &str, says: &str) {
    let before = t.disk();
    let (code, _, err) = run(t.codex(&["config", "set", key, value]));
    assert_eq!(code, 2, "{key} = {value}: {err}");
    assert!(
        err.contains(key) && err.contains(says),
        "{key} = {value}: {err}"
    );
    assert_disk_unchanged(&before, &t.disk(), &format!("config set {key} {value}"));
    let file = t.state_dir().join("config.toml");
    let kept = std::fs::read_to_string(&file).unwrap_or_default();
    let (section, name) = key.split_once('.').unwrap();
    let literal = if value.starts_with('[') {
        value.to_string()
    } else {
        format!("{value:?}")
    };
    write_file(&file, &format!("[{section}]\n{name} = {literal}\n"));
    let (code, _, err) = run(t.codex(&["config", "validate"]));
    assert_eq!(code, 2, "validate {key} = {value}: {err}");
    assert!(err.contains(key), "validate {key} = {value}: {err}");
    write_file(&file, &kept);
}

fn accepted(t: &TestEnv, key: &str, value: &str) {
    let (code, _, err) = run(t.codex(&["config", "set", key, value]));
    assert_eq!(code, 0, "{key} = {value}: {err}");
}

#[test]
fn config_set_refuses_copy_files_that_add_would_refuse() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        for value in [
            r#"["../outside"]"#,
            r#"["a/../../x"]"#,
            r#"["/etc/passwd"]"#,
        ] {
            refused(t, "session.copy_files", value, "must be relative");
        }
        refused(t, "session.copy_files", r#"["[unclosed"]"#, "bad glob");
        accepted(t, "session.copy_files", r#"[".env", "config/*.local"]"#);
        t.add("s1");
    });
}

#[test]
fn config_set_refuses_a_branch_prefix_git_would_not_take() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        for prefix in [
            "refs/heads/",
            "refs/",
            "heads/",
            "-x/",
            "a..b/",
            "a/.hidden/",
            "x.lock/",
            "a//b/",
            "a b/",
            "a@{b/",
        ] {
            refused(t, "session.branch_prefix", prefix, "branch name prefix");
        }
        for prefix in ["agents/codex-", "team.x/", "ai_"] {
            accepted(t, "session.branch_prefix", prefix);
            let id = format!("s{}", prefix.len());
            t.add(&id);
            let branch = format!("refs/heads/{prefix}{id}");
            t.git(&["rev-parse", "--verify", &branch]);
        }
    });
}

/// The same class: values every run would refuse (a writable path that hands the agent the
/// git dir or the person's git config; a network variable that overwrites one the agent
/// needs) are refused when set.
#[test]
fn config_set_refuses_writable_paths_and_env_vars_a_run_would_refuse() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        for value in [
            r#"[".git"]"#,
            r#"[".git/hooks"]"#,
            r#"["~/.gitconfig"]"#,
            r#"["~"]"#,
        ] {
            refused(t, "sandbox.writable_paths", value, "holds or lies in");
        }
        accepted(t, "sandbox.writable_paths", r#"["build-cache"]"#);
        for name in [
            "PATH",
            "HOME",
            "GIT_DIR",
            "LD_PRELOAD",
            "HTTPS_PROXY",
            "CODEX_PORT",
        ] {
            refused(t, "sandbox.env_var", name, "needs or git-codex sets");
        }
        accepted(t, "sandbox.env_var", "MY_NETWORK");
    });
}
