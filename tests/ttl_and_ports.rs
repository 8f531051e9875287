//! Small holes found on the way (issue 13 point 10): what `--ttl 0` means, and ports of
//! sessions whose records are corrupt.

mod common;

use common::{TestEnv, each_git, json, run};

fn record(t: &TestEnv, id: &str) -> serde_json::Value {
    json(&std::fs::read_to_string(t.state_dir().join(format!("sessions/{id}.json"))).unwrap())
}

#[test]
fn ttl_zero_means_never_in_every_layer_and_a_zero_with_a_unit_is_refused() {
    each_git(|t| {
        // `0` is "never", as `never` is, from the flag as from the config file.
        t.codex(&["session", "add", "z", "--ttl", "0"])
            .assert()
            .success();
        assert_eq!(record(t, "z")["ttlSeconds"], serde_json::Value::Null);
        t.age("z", 24 * 365);
        let (_, out, _) = run(t.codex(&["session", "list", "--json"]));
        assert_eq!(json(&out)["sessions"][0]["state"], "active", "{out}");
        t.codex(&["session", "touch", "z", "--ttl", "0"])
            .assert()
            .success();
        assert_eq!(record(t, "z")["ttlSeconds"], serde_json::Value::Null);

        // A zero with a unit reads like "expire at once": refused, as -1h is, and nothing made.
        let before = t.disk();
        for text in ["0s", "0m", "PT0S", "0h 0m", "500ms", "-1h", "-0h"] {
            let flag = format!("--ttl={text}");
            let (code, _, err) = run(t.codex(&["session", "add", "y", &flag]));
            assert_eq!(code, 2, "--ttl {text}: {err}");
            assert!(err.contains("--ttl"), "{err}");
            let (code, _, err) = run(t.codex(&["config", "set", "--", "session.ttl", text]));
            assert_eq!(code, 2, "config set session.ttl {text}: {err}");
            let mut cmd = t.codex(&["session", "add", "y"]);
            cmd.env("GIT_CODEX_SESSION_TTL", text);
            let (code, _, err) = run(cmd);
            assert_eq!(code, 2, "GIT_CODEX_SESSION_TTL={text}: {err}");
            let (code, _, err) = run(t.codex(&["session", "touch", "z", &flag]));
            assert_eq!(code, 2, "touch --ttl {text}: {err}");
        }
        let (_, _, err) = run(t.codex(&["session", "add", "y", "--ttl", "0s"]));
        assert!(
            err.contains("\"never\""),
            "the message says how to say never: {err}"
        );
        common::assert_disk_unchanged(&before, &t.disk(), "refused ttls");
        // The help says what 0 means.
        let (_, out, _) = run(t.codex(&["session", "add", "--help"]));
        assert!(out.contains("never (or 0): no expiry"), "{out}");
    });
}

#[test]
fn a_corrupt_records_port_is_not_handed_out_again() {
    each_git(|t| {
        t.add("a");
        t.add("b");
        let port_a = record(t, "a")["port"].as_u64().unwrap();
        let port_b = record(t, "b")["port"].as_u64().unwrap();
        assert_ne!(port_a, port_b);
        let path = t.state_dir().join("sessions/a.json");
        let text = std::fs::read_to_string(&path).unwrap();

        // Cut short after its port (a crash mid-write, a full disk): a's agent may still
        // listen there.
        let cut = text.find("\"port\"").unwrap() + 20;
        std::fs::write(&path, &text[..cut.min(text.len() - 1)]).unwrap();
        t.add("c");
        let port_c = record(t, "c")["port"].as_u64().unwrap();
        assert!(port_c != port_a && port_c != port_b, "c got port {port_c}");

        // Parses, but is not a record git-codex can read (another schema): same.
        let mut other: serde_json::Value = json(&text);
        other["schema"] = 99.into();
        std::fs::write(&path, other.to_string()).unwrap();
        t.add("d");
        let port_d = record(t, "d")["port"].as_u64().unwrap();
        assert!(
            ![port_a, port_b, port_c].contains(&port_d),
            "d got {port_d}"
        );

        // Names no port at all: no port can be known free, so none is handed out.
        std::fs::write(&path, "garbage").unwrap();
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "add", "e"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("session 'a'") && err.contains("corrupt"),
            "{err}"
        );
        assert!(err.contains("git codex session remove a"), "{err}");
        common::assert_disk_unchanged(&before, &t.disk(), "a refused add");
        assert!(
            !t.git_output(&t.repo, &["rev-parse", "--verify", "-q", "codex/e"])
                .status
                .success()
        );

        // Removing the broken session frees the way, and its port.
        t.codex(&["session", "remove", "a"]).assert().success();
        t.add("e");
        assert_eq!(record(t, "e")["port"].as_u64().unwrap(), port_a);
    });
}
