//! Real agents (Codex CLI, Claude Code) under `session run`, talking to a local stand-in for
//! their model APIs (tests/common/mock_models.rs): the agent makes one tool call that writes a
//! file, the work is reviewed, approved and merged, and the person's own agent config is left
//! byte for byte. How each agent is pointed at the stand-in: tests/REAL_AGENTS.md.
//!
//! An agent that is not installed is skipped with a note; with CI=true that is a failure
//! (.ci/run installs the pinned versions).

mod common;

use std::path::{Path, PathBuf};

use common::mock_models::{FINAL_TEXT, MockModels};
use common::{TestEnv, each_git, json, run};

/// The file the agent's one tool call writes, in its current directory (the session worktree).
const NOTE: &str = "agent-note.txt";

/// What the person had in their own Codex config before the run; it must stay as it is.
const PERSONS_CODEX_CONFIG: &str =
    "# My own Codex settings. git-codex and its agents must leave this file as it is.\n";

/// The agent's executable, looked up on this process's PATH and the usual install dirs (npm's
/// global bin is /usr/bin with NodeSource's node, /usr/local/bin with Debian's). None, with a
/// printed reason, when absent; with CI=true, absent is a failure.
fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed: .ci/run must install it (npm install -g)"
        );
        eprintln!("skipping: {name} is not installed (npm install -g, see .ci/run)");
    }
    found
}

/// The hermetic PATH with the agent's own dir (and node's, for Codex's JS launcher) in front.
fn path_with(t: &TestEnv, agent: &Path) -> String {
    let hermetic = t
        .vars()
        .into_iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let dir = agent.parent().expect("agent dir").display().to_string();
    format!("{dir}:{hermetic}")
}

/// The person's repository set up for a session `s` whose agent can reach the mock.
fn prepare(t: &TestEnv, mock: &MockModels) {
    // The person's own Codex config, from before git-codex.
    common::write_file(&t.home.join(".codex/config.toml"), PERSONS_CODEX_CONFIG);
    let (code, _, err) = run(t.codex(&["init"]));
    assert_eq!(code, 0, "init: {err}");
    // TODO(default sandbox): the strict default cannot reach the model yet; once the egress
    // proxy lands (SPEC §7), delete these two settings and keep only allowed_domains.
    for (key, value) in [
        ("sandbox.mode", "network-enabled"),
        ("sandbox.filesystem", "open"),
    ] {
        let (code, _, err) = run(t.codex(&["config", "set", key, value]));
        assert_eq!(code, 0, "config set {key} {value}: {err}");
    }
    let domains = format!("[\"{}\"]", mock.host_port());
    let (code, _, err) = run(t.codex(&["config", "set", "sandbox.allowed_domains", &domains]));
    assert_eq!(code, 0, "config set sandbox.allowed_domains: {err}");
    let (code, _, err) = run(t.codex(&["session", "add", "s"]));
    assert_eq!(code, 0, "session add: {err}");
}

/// Runs the agent in session `s` with its env; asserts it exited 0 and left the note.
fn run_agent(t: &TestEnv, mock: &MockModels, agent: &Path, args: &[&str], env: &[(&str, &str)]) {
    let agent_arg = agent.display().to_string();
    let mut full = vec!["session", "run", "s", "--", agent_arg.as_str()];
    full.extend_from_slice(args);
    let mut cmd = t.codex(&full);
    cmd.env("PATH", path_with(t, agent));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (code, out, err) = run(cmd);
    let context = format!(
        "stdout:\n{out}\nstderr:\n{err}\nthe mock saw:\n{}",
        mock.summary()
    );
    assert_eq!(code, 0, "the agent failed\n{context}");
    assert!(
        mock.requests().iter().any(|r| r.answer == "tool-call"),
        "the agent never asked the model\n{context}"
    );
    let note = std::fs::read_to_string(t.worktree("s").join(NOTE))
        .unwrap_or_else(|e| panic!("no {NOTE} in the worktree ({e})\n{context}"));
    assert_eq!(note, "made by the agent\n", "{context}");
    eprintln!("the mock saw:\n{}", mock.summary());
}

/// The rest of the way: review shows the note (and only it), approve, merge, main has it; the
/// person's Codex config is untouched.
fn review_approve_merge(t: &TestEnv) {
    let (code, out, err) = run(t.codex(&["session", "review", "s", "--format", "json"]));
    assert_eq!(code, 0, "review: {err}");
    let review = json(&out);
    let files: Vec<(String, String)> = review["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or("").to_string(),
                f["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        files,
        vec![(NOTE.to_string(), "added".to_string())],
        "the review shows the note and nothing else the agent left in the worktree"
    );
    let (code, _, err) = run(t.codex(&["session", "review", "s", "--approve"]));
    assert_eq!(code, 0, "approve: {err}");
    let (code, _, err) = run(t.codex(&["session", "merge", "s"]));
    assert_eq!(code, 0, "merge: {err}");
    assert_eq!(
        t.git(&["show", &format!("main:{NOTE}")]),
        "made by the agent"
    );
    assert_eq!(
        std::fs::read(t.home.join(".codex/config.toml")).expect("the person's config"),
        PERSONS_CODEX_CONFIG.as_bytes(),
        "the person's ~/.codex/config.toml changed"
    );
}

/// The shell command the model's one tool call runs.
const COMMAND: &str = "printf 'made by the agent\\n' > agent-note.txt";

/// Codex CLI 0.169.0 in a fresh HOME. It ignores OPENAI_BASE_URL; the mock is a custom model
/// provider given with `-c` (no websockets, unlike the built-in `openai` provider), and an
/// unknown model name gets the plain function tools (`exec_command`) instead of code mode.
/// Each git costs about a second of Codex: cheap enough for `each_git`.
#[test]
fn codex_cli_writes_through_the_gate() {
    let Some(codex) = installed("codex") else {
        return;
    };
    each_git(|t| {
        let mock = MockModels::start(COMMAND);
        prepare(t, &mock);
        let base_url = format!("model_providers.mock.base_url={}", mock.openai_base_url());
        run_agent(
            t,
            &mock,
            &codex,
            &[
                "exec",
                "--skip-git-repo-check",
                "-s",
                "workspace-write",
                "-m",
                "mock-model",
                "-c",
                "model_provider=mock",
                "-c",
                "model_providers.mock.name=mock",
                "-c",
                &base_url,
                "-c",
                "model_providers.mock.env_key=OPENAI_API_KEY",
                "-c",
                "model_providers.mock.wire_api=responses",
                "write the note",
            ],
            &[("OPENAI_API_KEY", "sk-mock-openai")],
        );
        let calls = mock.requests_to("/v1/responses");
        assert!(
            calls
                .iter()
                .all(|r| r.header("authorization") == Some("Bearer sk-mock-openai")),
            "the key reaches the model API:\n{}",
            mock.summary()
        );
        let answered = calls.iter().find(|r| r.answer == "final").map(|r| {
            r.json().expect("JSON")["input"]
                .as_array()
                .expect("input")
                .iter()
                .any(|item| item["type"] == "function_call_output")
        });
        assert_eq!(
            answered,
            Some(true),
            "the tool's result came back:\n{}",
            mock.summary()
        );
        review_approve_merge(t);
    });
}

/// Claude Code 2.1.332 in a fresh HOME: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, `-p` with
/// `--allowedTools Bash`; no onboarding runs in print mode. About a second per git: `each_git`.
#[test]
fn claude_code_writes_through_the_gate() {
    let Some(claude) = installed("claude") else {
        return;
    };
    each_git(|t| {
        let mock = MockModels::start(COMMAND);
        prepare(t, &mock);
        let base_url = mock.base_url();
        run_agent(
            t,
            &mock,
            &claude,
            &["-p", "write the note", "--allowedTools", "Bash"],
            &[
                ("ANTHROPIC_BASE_URL", base_url.as_str()),
                ("ANTHROPIC_API_KEY", "sk-ant-mock"),
            ],
        );
        let calls = mock.requests_to("/v1/messages");
        assert!(
            calls
                .iter()
                .all(|r| r.header("x-api-key") == Some("sk-ant-mock")),
            "the key reaches the model API:\n{}",
            mock.summary()
        );
        let result = calls.iter().filter_map(|r| r.json()).find_map(|body| {
            body["messages"].as_array()?.iter().find_map(|m| {
                m["content"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "tool_result")
                    .cloned()
            })
        });
        assert!(
            result.is_some(),
            "the tool's result came back:\n{}",
            mock.summary()
        );
        assert!(
            calls.iter().any(|r| r.answer == "final"),
            "{FINAL_TEXT:?} was sent:\n{}",
            mock.summary()
        );
        review_approve_merge(t);
    });
}
