//! A server admin configures the server gate in the bare repository itself (issue 13 point 10):
//! the `config` commands work there, with the state dir at `<git-dir>/codex/`.

mod common;

use common::{each_git, run, write_file};

#[test]
fn config_commands_work_in_a_bare_server_repository() {
    each_git(|t| {
        let server = t.root().join("server.git");
        t.git_in(&t.root(), &["init", "-q", "--bare", "server.git"]);
        let file = server.join("codex/config.toml");

        let (code, _, err) =
            run(t.codex_in(&server, &["config", "set", "review.protected", "release/*"]));
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("not a git repository"), "{err}");
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .contains("release/*")
        );
        // From the bare repository and from a dir inside it.
        for dir in [server.clone(), server.join("refs")] {
            let (code, out, err) = run(t.codex_in(&dir, &["config", "get", "review.protected"]));
            assert_eq!(code, 0, "{err}");
            assert!(out.contains("release/*"), "{out}");
        }
        let (code, out, _) = run(t.codex_in(&server, &["config", "list", "--show-origin"]));
        assert_eq!(code, 0);
        assert!(
            out.contains(&format!("file:{}\treview.protected", file.display())),
            "{out}"
        );
        let (code, out, _) = run(t.codex_in(&server, &["config", "path"]));
        assert_eq!(code, 0);
        assert!(out.contains(&format!("repo\t{}", file.display())), "{out}");
        let (code, _, err) = run(t.codex_in(&server, &["config", "validate"]));
        assert_eq!(code, 0, "{err}");

        // Bad input is refused there as anywhere, and changes nothing.
        let before = std::fs::read(&file).unwrap();
        let (code, _, _) = run(t.codex_in(&server, &["config", "set", "session.ttl", "soon"]));
        assert_eq!(code, 2);
        assert_eq!(std::fs::read(&file).unwrap(), before);
        write_file(&file, "[review]\nprotected = 3\n");
        let (code, _, err) = run(t.codex_in(&server, &["config", "validate"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("review.protected"), "{err}");
    });
}

#[test]
fn the_server_gate_follows_what_config_set_wrote_in_the_bare_repository() {
    each_git(|t| {
        let server = t.bare_clone("server.git");
        let (code, _, err) = run(t.codex_in(&server, &["hooks", "install", "--server"]));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) =
            run(t.codex_in(&server, &["config", "set", "review.protected", "release/*"]));
        assert_eq!(code, 0, "{err}");
        t.git(&["remote", "add", "origin", server.to_str().unwrap()]);

        let wt = t.add("s");
        t.commit_in(&wt, "a.txt", "a\n");
        let push = |spec: &str| {
            t.git_output(
                &t.repo,
                &[
                    "push",
                    "--no-verify",
                    "origin",
                    "codex/s",
                    "refs/codex/bases/s",
                    spec,
                ],
            )
        };
        let out = push("codex/s:refs/heads/release/1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("session 's'"),
            "release/1 is protected by the server's config: {err}"
        );
        assert!(
            !t.git_output(&server, &["rev-parse", "--verify", "-q", "release/1"])
                .status
                .success()
        );
        let out = push("codex/s:refs/heads/feature");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
