//! Configuration: defaults, layers and origins, get/set/list/path/validate, import, bad values.

mod common;

use common::{assert_disk_unchanged, each_git, json, run, write_file};

fn user_config(t: &common::TestEnv) -> std::path::PathBuf {
    t.home.join(".config/git-codex/config.toml")
}

#[test]
fn list_shows_every_default_with_its_origin() {
    each_git(|t| {
        let (code, out, err) = run(t.codex(&["config", "list", "--show-origin"]));
        assert_eq!(code, 0, "{err}");
        for line in [
            "default\tsession.max_parallel=4",
            "default\tsession.worktree_base=.codex-worktrees",
            "default\tsession.branch_prefix=codex/",
            "default\tsession.ttl=1h",
            "default\tsession.cleanup_on_exit=true",
            "default\tsession.copy_files=[\".env\"]",
            "default\tsession.setup=[]",
            "default\tsession.port_range=20000-29999",
            "default\tsandbox.mode=strict",
            "default\tsandbox.allowed_domains=[]",
            "default\tsandbox.env_var=CODEX_NETWORK",
            "default\tsandbox.filesystem=worktree",
            "default\treview.auto_stage=true",
            "default\treview.require_approval=true",
            "default\treview.summary_format=markdown",
            "default\treview.hook=",
            "default\treview.hook_timeout=5m",
            "default\treview.require_signed=false",
            "default\treview.allowed_signers=",
            "default\treview.protected=[\"main\"]",
            "default\tgate.reference_transaction=true",
            "default\tplatform.linux.recommended_client=codexmonitor",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    });
}

#[test]
fn layers_apply_in_order_and_origins_say_where_each_value_came_from() {
    each_git(|t| {
        write_file(
            &user_config(t),
            "[session]\nttl = \"2h\"\nmax_parallel = 2\n",
        );
        t.set_config("[session]\nmax_parallel = 8\n");
        let mut cmd = t.codex(&["config", "list", "--show-origin"]);
        cmd.env("GIT_CODEX_SESSION_BRANCH_PREFIX", "agent/")
            .env("CODEX_NETWORK", "enabled");
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let user = user_config(t).display().to_string();
        let repo = t.state_dir().join("config.toml").display().to_string();
        for line in [
            format!("file:{user}\tsession.ttl=2h"),
            format!("file:{repo}\tsession.max_parallel=8"),
            "env:GIT_CODEX_SESSION_BRANCH_PREFIX\tsession.branch_prefix=agent/".to_string(),
            "env:CODEX_NETWORK\tsandbox.mode=network-enabled".to_string(),
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        // Flags beat the environment: --ttl over GIT_CODEX_SESSION_TTL, --sandbox over CODEX_NETWORK.
        let mut cmd = t.codex(&["session", "add", "s", "--ttl", "5m", "--sandbox", "strict"]);
        cmd.env("GIT_CODEX_SESSION_TTL", "3h")
            .env("CODEX_NETWORK", "enabled")
            .env("GIT_CODEX_SESSION_BRANCH_PREFIX", "agent/");
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        let record = json(&std::fs::read_to_string(t.state_dir().join("sessions/s.json")).unwrap());
        assert_eq!(record["ttlSeconds"], 300);
        assert_eq!(record["sandbox"], "strict");
        assert_eq!(record["branch"], "agent/s");
        // The environment beats the files.
        let mut cmd = t.codex(&["config", "get", "session.ttl"]);
        cmd.env("GIT_CODEX_SESSION_TTL", "3h");
        assert_eq!(run(cmd).1, "3h\n");
    });
}

#[test]
fn get_prints_values_and_json_names_the_origin() {
    each_git(|t| {
        assert_eq!(
            run(t.codex(&["config", "get", "session.max_parallel"])).1,
            "4\n"
        );
        assert_eq!(
            run(t.codex(&["config", "get", "review.protected"])).1,
            "[\"main\"]\n"
        );
        let (code, out, _) = run(t.codex(&["config", "get", "session.ttl", "--json"]));
        assert_eq!(code, 0);
        let v = json(&out);
        assert_eq!(v["schema"], 1);
        assert_eq!(v["value"], "1h");
        assert_eq!(v["origin"], "default");
        let (code, _, err) = run(t.codex(&["config", "get", "session.nope"]));
        assert_eq!(code, 2);
        assert!(err.contains("unknown config key 'session.nope'"), "{err}");
    });
}

#[test]
fn set_keeps_comments_and_checks_the_value() {
    each_git(|t| {
        t.set_config("# my settings\n[session]\n# how many agents\nmax_parallel = 3 # three is plenty\nttl = \"1h\"\n");
        let (code, _, err) = run(t.codex(&["config", "set", "session.max_parallel", "6"]));
        assert_eq!(code, 0, "{err}");
        t.codex(&["config", "set", "review.protected", "main, release/*"])
            .assert()
            .success();
        t.codex(&[
            "config",
            "set",
            "sandbox.allowed_domains",
            "[\"api.openai.com\"]",
        ])
        .assert()
        .success();
        let text = std::fs::read_to_string(t.state_dir().join("config.toml")).unwrap();
        assert!(text.contains("# my settings"), "{text}");
        assert!(text.contains("# how many agents"), "{text}");
        assert!(
            text.contains("max_parallel = 6 # three is plenty"),
            "{text}"
        );
        assert!(
            text.contains("protected = [\"main\", \"release/*\"]"),
            "{text}"
        );
        assert_eq!(
            run(t.codex(&["config", "get", "session.max_parallel"])).1,
            "6\n"
        );

        for (key, bad) in [
            ("session.max_parallel", "-1"),
            ("session.max_parallel", "lots"),
            ("session.ttl", "soon"),
            ("sandbox.mode", "wide-open"),
            ("session.port_range", "10-5"),
            ("session.nope", "1"),
        ] {
            let before = t.disk();
            let (code, _, err) = run(t.codex(&["config", "set", key, bad]));
            assert_eq!(code, 2, "{key}={bad}: {err}");
            assert!(err.contains(key), "{err}");
            assert_disk_unchanged(&before, &t.disk(), &format!("config set {key} {bad}"));
        }
    });
}

#[test]
fn set_works_on_the_commented_file_that_init_writes_and_on_the_user_file() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        let before = std::fs::read_to_string(t.state_dir().join("config.toml")).unwrap();
        assert!(before.contains("# max_parallel = 4"), "{before}");
        t.codex(&["config", "set", "session.ttl", "2h 30m"])
            .assert()
            .success();
        let after = std::fs::read_to_string(t.state_dir().join("config.toml")).unwrap();
        assert!(
            after.contains("# max_parallel = 4"),
            "comments kept: {after}"
        );
        assert_eq!(
            run(t.codex(&["config", "get", "session.ttl"])).1,
            "2h 30m\n"
        );
        t.codex(&["config", "set", "--user", "session.max_parallel", "9"])
            .assert()
            .success();
        let user = std::fs::read_to_string(user_config(t)).unwrap();
        assert!(user.contains("max_parallel = 9"), "{user}");
    });
}

#[test]
fn every_duration_form_is_accepted() {
    each_git(|t| {
        for (text, seconds) in [
            ("90m", 5400),
            ("2h 30m", 9000),
            ("2d", 172_800),
            ("PT1H", 3600),
        ] {
            let (code, _, err) =
                run(t.codex(&["session", "add", &format!("d{seconds}"), "--ttl", text]));
            assert_eq!(code, 0, "{text}: {err}");
            let record = json(
                &std::fs::read_to_string(t.state_dir().join(format!("sessions/d{seconds}.json")))
                    .unwrap(),
            );
            assert_eq!(record["ttlSeconds"], seconds, "{text}");
        }
        for never in ["never", "0"] {
            t.codex(&["config", "set", "session.ttl", never])
                .assert()
                .success();
        }
    });
}

/// A broken repo config makes every command fail with exit 2, naming the file, the key and
/// what was expected; nothing on disk changes.
#[test]
fn bad_config_files_are_refused_with_file_key_and_expectation() {
    each_git(|t| {
        t.codex(&["init"]).assert().success();
        let file = t.state_dir().join("config.toml").display().to_string();
        let cases = [
            (
                "[session]\nmax_parallel = = 3\n",
                vec!["invalid TOML", "line 2", "column"],
            ),
            (
                "[session]\nmax_paralel = 3\n",
                vec!["unknown key 'session.max_paralel'"],
            ),
            (
                "[session]\nmax_parallel = -1\n",
                vec!["session.max_parallel", "expected a whole number", "-1"],
            ),
            (
                "[session]\nttl = \"soon\"\n",
                vec!["session.ttl", "expected a duration", "soon"],
            ),
            (
                "[sandbox]\nmode = \"yolo\"\n",
                vec!["sandbox.mode", "expected one of"],
            ),
            ("[nope]\nx = 1\n", vec!["unknown key 'nope.x'"]),
        ];
        for (text, needles) in cases {
            t.set_config(text);
            for args in [
                vec!["session", "list"],
                vec!["session", "add", "x"],
                vec!["config", "validate"],
            ] {
                let before = t.disk();
                let (code, out, err) = run(t.codex(&args));
                assert_eq!(code, 2, "{args:?} with {text:?}: {err}");
                assert_eq!(out, "");
                assert!(err.starts_with("error:") && err.contains(&file), "{err}");
                for needle in &needles {
                    assert!(err.contains(needle), "{needle:?} not in {err}");
                }
                assert_disk_unchanged(&before, &t.disk(), &format!("{args:?}"));
            }
        }
        t.set_config("[session]\nmax_parallel = 2\n");
        let (code, _, err) = run(t.codex(&["config", "validate"]));
        assert_eq!(code, 0, "{err}");
    });
}

#[test]
fn bad_environment_overrides_are_refused() {
    each_git(|t| {
        for (name, value, needle) in [
            (
                "GIT_CODEX_SESSION_MAX_PARALLEL",
                "many",
                "GIT_CODEX_SESSION_MAX_PARALLEL",
            ),
            (
                "GIT_CODEX_SESSION_MAX_PARALEL",
                "3",
                "names no configuration key",
            ),
            ("CODEX_NETWORK", "maybe", "CODEX_NETWORK"),
        ] {
            let mut cmd = t.codex(&["session", "list"]);
            cmd.env(name, value);
            let (code, _, err) = run(cmd);
            assert_eq!(code, 2, "{name}={value}: {err}");
            assert!(err.contains(needle), "{err}");
        }
    });
}

#[test]
fn import_converts_the_seed_template_and_reports_what_it_could_not_map() {
    each_git(|t| {
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/codex-config.template.json"
        );
        let (code, out, err) = run(t.codex(&["config", "import", template]));
        assert_eq!(code, 0, "{err}");
        let parsed: toml::Table = toml::from_str(&out).expect("valid TOML");
        assert_eq!(parsed["session"]["max_parallel"].as_integer(), Some(4));
        assert_eq!(
            parsed["session"]["worktree_base"].as_str(),
            Some(".codex-worktrees")
        );
        assert_eq!(parsed["session"]["ttl"].as_str(), Some("1h"));
        assert_eq!(parsed["session"]["cleanup_on_exit"].as_bool(), Some(true));
        assert_eq!(parsed["sandbox"]["mode"].as_str(), Some("strict"));
        assert_eq!(parsed["sandbox"]["env_var"].as_str(), Some("CODEX_NETWORK"));
        assert_eq!(
            parsed["sandbox"]["allowed_domains"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parsed["review"]["hook"].as_str(),
            Some("./scripts/review-diff.sh")
        );
        assert_eq!(
            parsed["review"]["protected"].as_array().unwrap()[0].as_str(),
            Some("main")
        );
        assert_eq!(
            parsed["platform"]["macos"]["recommended_client"].as_str(),
            Some("openai-codex-app")
        );
        for unmapped in [
            "platformOverrides.linux.licenseType",
            "platformOverrides.windows.uiStack",
            "isolationStrategy",
        ] {
            assert!(err.contains(unmapped), "{unmapped} not reported in {err}");
        }

        let (code, _, err) = run(t.codex(&["config", "import", "--write", template]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            run(t.codex(&["config", "get", "review.hook"])).1,
            "./scripts/review-diff.sh\n"
        );

        write_file(&t.root().join("broken.json"), "{ \"a\": ");
        let (code, _, err) = run(t.codex(&[
            "config",
            "import",
            t.root().join("broken.json").to_str().unwrap(),
        ]));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("invalid JSON") && err.contains("line 1"),
            "{err}"
        );
    });
}

#[test]
fn path_names_both_files_and_init_is_idempotent() {
    each_git(|t| {
        let (code, out, _) = run(t.codex(&["config", "path"]));
        assert_eq!(code, 0);
        assert!(
            out.contains(&format!("user\t{}", user_config(t).display())),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "repo\t{}",
                t.state_dir().join("config.toml").display()
            )),
            "{out}"
        );

        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0);
        assert!(err.contains("Initialized"), "{err}");
        for dir in ["sessions", "reviews", "logs", "tmp"] {
            assert!(t.state_dir().join(dir).is_dir(), "{dir}");
        }
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0);
        assert!(err.contains("already initialized"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "a second init");
        let exclude = std::fs::read_to_string(t.repo.join(".git/info/exclude")).unwrap();
        assert_eq!(
            exclude.matches("/.codex-worktrees/").count(),
            1,
            "{exclude}"
        );
        assert_eq!(
            exclude.matches("/.codex-session.json").count(),
            1,
            "{exclude}"
        );
    });
}

#[test]
fn the_first_command_that_needs_state_initialises_and_says_so() {
    each_git(|t| {
        let (code, _, err) = run(t.codex(&["session", "add", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Initialized git-codex in"), "{err}");
        assert!(t.state_dir().join("config.toml").is_file());
    });
}
