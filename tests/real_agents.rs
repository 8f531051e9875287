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
    // The default sandbox (strict, confined): the mock is reachable only because it is listed.
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
    // Each agent takes about a second here; a hung one fails the test instead of holding it.
    cmd.env("PATH", path_with(t, agent))
        .timeout(std::time::Duration::from_secs(180));
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

/// What the default sandbox did for agent `profile`: it was named in the log, the proxy let
/// the mock through (and logged it), the agent's state went to the session's own copy, and
/// nothing of it reached the person's home.
fn assert_sandboxed(t: &TestEnv, mock: &MockModels, profile: &str, persons_files: &[&str]) {
    let show = t.show("s");
    let last = &show["lastRun"];
    assert_eq!(last["networkEnforced"], true, "{show}");
    assert_eq!(last["filesystemConfined"], true, "{show}");
    let log = std::fs::read_to_string(last["log"].as_str().expect("log path")).expect("run log");
    assert!(log.contains(&format!("profile {profile}")), "{log}");
    assert!(
        log.contains(&format!("# proxy: allowed CONNECT {}", mock.host_port())),
        "the proxy's log names the connection to the mock:\n{log}"
    );
    let state = t.repo.join(".git/codex/agents/s").join(profile);
    assert!(
        std::fs::read_dir(&state).map(|d| d.count()).unwrap_or(0) > 0,
        "the agent kept its state in the session's copy, {}",
        state.display()
    );
    let mut home: Vec<String> = Vec::new();
    for dir in [".codex", ".claude"] {
        if let Ok(entries) = std::fs::read_dir(t.home.join(dir)) {
            home.extend(
                entries
                    .map(|e| format!("{dir}/{}", e.expect("entry").file_name().to_string_lossy())),
            );
        }
    }
    if t.home.join(".claude.json").exists() {
        home.push(".claude.json".to_string());
    }
    home.sort();
    assert_eq!(
        home, persons_files,
        "nothing the agent wrote reached the person's home"
    );
}

/// The shell command the model's one tool call runs.
const COMMAND: &str = "printf 'made by the agent\\n' > agent-note.txt";

/// Codex CLI's arguments after `codex`, the model API at `base_url` (`http://HOST:PORT/v1`).
/// Codex 0.169.0 ignores OPENAI_BASE_URL; the mock is a custom model provider given with `-c`
/// (plain HTTPS/SSE, where the built-in `openai` provider tries websockets first), and an
/// unknown model name gets the plain function tools (`exec_command`) instead of code mode.
fn codex_args(base_url: &str) -> Vec<String> {
    let mut args: Vec<String> = [
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
        "model_providers.mock.env_key=OPENAI_API_KEY",
        "-c",
        "model_providers.mock.wire_api=responses",
        "-c",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("model_providers.mock.base_url={base_url}"));
    args.push("write the note".to_string());
    args
}

const CODEX_KEY: &str = "sk-mock-openai";

/// Claude Code's arguments after `claude`: print mode, Bash allowed; no onboarding runs.
const CLAUDE_ARGS: &[&str] = &["-p", "write the note", "--allowedTools", "Bash"];

const CLAUDE_KEY: &str = "sk-ant-mock";

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Codex CLI 0.169.0 in a fresh HOME (see `codex_args`). Each git costs about a second of
/// Codex: cheap enough for `each_git`.
#[test]
fn codex_cli_writes_through_the_gate() {
    let Some(codex) = installed("codex") else {
        return;
    };
    each_git(|t| {
        let mock = MockModels::start(COMMAND);
        prepare(t, &mock);
        let args = codex_args(&mock.openai_base_url());
        run_agent(
            t,
            &mock,
            &codex,
            &strs(&args),
            &[("OPENAI_API_KEY", CODEX_KEY)],
        );
        let calls = mock.requests_to("/v1/responses");
        let bearer = format!("Bearer {CODEX_KEY}");
        assert!(
            calls
                .iter()
                .all(|r| r.header("authorization") == Some(bearer.as_str())),
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
        assert_sandboxed(t, &mock, "codex", &[".codex/config.toml"]);
        review_approve_merge(t);
    });
}

/// Claude Code 2.1.332 in a fresh HOME: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, `-p` with
/// `--allowedTools Bash`. About a second per git: `each_git`.
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
            CLAUDE_ARGS,
            &[
                ("ANTHROPIC_BASE_URL", base_url.as_str()),
                ("ANTHROPIC_API_KEY", CLAUDE_KEY),
            ],
        );
        let calls = mock.requests_to("/v1/messages");
        assert!(
            calls
                .iter()
                .all(|r| r.header("x-api-key") == Some(CLAUDE_KEY)),
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
        assert_sandboxed(t, &mock, "claude", &[".codex/config.toml"]);
        review_approve_merge(t);
    });
}

/// The mock itself, with no agent: keep-alive, a chunked body, an absolute-form target, both
/// APIs' turns, a refused CONNECT, and no listener left once dropped.
#[test]
fn the_mock_speaks_http_1_1_and_both_apis() {
    use std::io::{BufRead, BufReader, Read, Write};

    fn response(reader: &mut BufReader<std::net::TcpStream>) -> (String, String) {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (status.trim().to_string(), String::from_utf8(body).unwrap())
    }

    let mock = MockModels::start(COMMAND);
    let stream = std::net::TcpStream::connect(mock.host_port()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);

    // Responses API, first turn: a chunked body; the answer is one exec_command call.
    let first = serde_json::json!({"model": "m", "stream": true,
        "input": [{"type": "message", "role": "user", "content": "go"}],
        "tools": [{"type": "function", "name": "exec_command"}]})
    .to_string();
    let (a, b) = first.split_at(first.len() / 2);
    write!(
        writer,
        "POST /v1/responses HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .unwrap();
    let (status, body) = response(&mut reader);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("event: response.output_item.done"), "{body}");
    assert!(
        body.contains(r#"\"cmd\":"#) && body.contains("exec_command"),
        "{body}"
    );
    assert!(body.contains("event: response.completed"), "{body}");

    // Same connection, absolute form (as through a proxy), the tool's output back: final text.
    let second = serde_json::json!({"model": "m", "stream": true,
        "input": [{"type": "function_call_output", "call_id": "c", "output": "ok"}]})
    .to_string();
    write!(
        writer,
        "POST http://127.0.0.1:9/v1/responses HTTP/1.1\r\ncontent-length: {}\r\n\r\n{second}",
        second.len()
    )
    .unwrap();
    let (_, body) = response(&mut reader);
    assert!(
        body.contains(FINAL_TEXT) && body.contains("output_text"),
        "{body}"
    );

    // Messages API: Bash offered and no result yet gives a tool_use; non-streamed on request.
    let claude = serde_json::json!({"model": "c", "stream": false,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "go"}]}],
        "tools": [{"name": "Bash"}]})
    .to_string();
    write!(
        writer,
        "POST /v1/messages?beta=true HTTP/1.1\r\ncontent-length: {}\r\n\r\n{claude}",
        claude.len()
    )
    .unwrap();
    let (_, body) = response(&mut reader);
    let message = json(&body);
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["content"][0]["input"]["command"], COMMAND);

    // CONNECT is refused.
    write!(
        writer,
        "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n"
    )
    .unwrap();
    let (status, _) = response(&mut reader);
    assert_eq!(status, "HTTP/1.1 403 Forbidden");

    let seen: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.answer.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("/v1/responses", "tool-call"),
            ("/v1/responses", "final"),
            ("/v1/messages?beta=true", "tool-call"),
            ("example.com:443", "403"),
        ]
        .map(|(p, a)| (p.to_string(), a.to_string()))
    );
    let address = mock.host_port();
    drop(mock);
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "nothing listens once the mock is dropped"
    );
}

/// A rejection's message reaches the real agents' model in their own terms: Codex reads the
/// `AGENTS.md` of its `CODEX_HOME`, Claude Code the `CLAUDE.md` of its `CLAUDE_CONFIG_DIR`,
/// the session's copies git-codex seeds with the person's own and the reviewer's words.
#[test]
fn a_rejections_message_reaches_each_real_agents_model() {
    let agents = [installed("codex"), installed("claude")];
    let Some(git) = common::gits().into_iter().next() else {
        return;
    };
    let words = "REVIEWER-SAYS fix the failing test in login.rs";
    for (agent, profile) in agents.iter().zip(["codex", "claude"]) {
        let Some(agent) = agent else { continue };
        let t = TestEnv::new(&git);
        let mock = MockModels::start(COMMAND);
        prepare(&t, &mock);
        let (code, _, err) = run(t.codex(&["session", "review", "s", "--reject", "-m", words]));
        assert_eq!(code, 0, "reject: {err}");
        let base_url = mock.base_url();
        let codex_args = codex_args(&mock.openai_base_url());
        let (args, env): (Vec<&str>, Vec<(&str, &str)>) = if profile == "codex" {
            (strs(&codex_args), vec![("OPENAI_API_KEY", CODEX_KEY)])
        } else {
            (
                CLAUDE_ARGS.to_vec(),
                vec![
                    ("ANTHROPIC_BASE_URL", base_url.as_str()),
                    ("ANTHROPIC_API_KEY", CLAUDE_KEY),
                ],
            )
        };
        run_agent(&t, &mock, agent, &args, &env);
        assert!(
            mock.requests()
                .iter()
                .any(|r| r.body_text().contains(words)),
            "{profile}: the reviewer's words never reached the model:\n{}",
            mock.summary()
        );
    }
}
