//! A stand-in for the model APIs that real agents call, on 127.0.0.1: the OpenAI Responses API
//! (`POST …/responses`, streamed as server-sent events) that Codex CLI speaks and the Anthropic
//! Messages API (`POST …/messages`, streamed or not) that Claude Code speaks. Std only: one thread
//! accepts, one thread per connection, HTTP/1.1 with keep-alive, `Content-Length` or chunked
//! request bodies, and request targets in origin form (`/v1/x`) or absolute form
//! (`http://127.0.0.1:PORT/v1/x`, as an HTTP proxy passes them on).
//!
//! The script is the same for both APIs: a model request that carries no tool result yet is
//! answered with ONE tool call running `command` in the shell (Codex: `exec_command`, or `shell`
//! when that is what it offers; Claude: `Bash`); a request that carries the tool's result is
//! answered with a final text, so the agent ends its turn and exits 0. Side requests (Claude's
//! title or quota calls, which offer no shell tool) get the final text too. Everything else
//! the agents call at startup gets a harmless answer (`HEAD /api/hello` 200, token counting a
//! number, anything unknown 404). Taken for an HTTP proxy, it answers plain forwarded requests
//! itself (absolute-form targets) and refuses CONNECT with 403. Every request is recorded; the
//! server stops when dropped.
//!
//! See tests/REAL_AGENTS.md for how each agent is pointed here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// The text of the final answer, in both APIs.
pub const FINAL_TEXT: &str = "Done: the note is written.";

/// One request as the mock read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path and query, in origin form even when the request came in absolute form.
    pub path: String,
    /// The request target exactly as sent (absolute form through a proxy).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the mock answered: "tool-call", "final", or the status line's code for the rest.
    pub answer: String,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Shared {
    command: String,
    requests: Mutex<Vec<Request>>,
    stopping: AtomicBool,
    /// Clones of the open connections, shut down on drop so their threads end.
    connections: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    ids: AtomicUsize,
}

/// The running mock; stops (and joins its threads) when dropped.
pub struct MockModels {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockModels {
    /// Starts on 127.0.0.1 on a free port; the tool call it hands out runs `command`.
    pub fn start(command: &str) -> MockModels {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock model server");
        let addr = listener.local_addr().expect("mock address");
        let shared = Arc::new(Shared {
            command: command.to_string(),
            requests: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
            ids: AtomicUsize::new(0),
        });
        let for_acceptor = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || accept_loop(listener, for_acceptor));
        MockModels {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`, as `sandbox.allowed_domains` lists it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// `http://127.0.0.1:PORT` (no path: Claude's `ANTHROPIC_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host_port())
    }

    /// `http://127.0.0.1:PORT/v1` (Codex's provider `base_url`).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// Every request so far, in the order they were read.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// The requests whose path (without the query) ends with `suffix`.
    pub fn requests_to(&self, suffix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.split('?').next().unwrap_or("").ends_with(suffix))
            .collect()
    }

    /// A one-line-per-request summary, for assertion messages.
    pub fn summary(&self) -> String {
        self.requests()
            .iter()
            .map(|r| format!("{} {} -> {}", r.method, r.target, r.answer))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for MockModels {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self
            .shared
            .connections
            .lock()
            .expect("connections")
            .drain(..)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let workers: Vec<_> = self
            .shared
            .workers
            .lock()
            .expect("workers")
            .drain(..)
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if let Ok(clone) = stream.try_clone() {
            shared.connections.lock().expect("connections").push(clone);
        }
        let for_worker = Arc::clone(&shared);
        let worker = std::thread::spawn(move || serve_connection(stream, &for_worker));
        shared.workers.lock().expect("workers").push(worker);
    }
}

/// Serves requests on one connection until the peer closes it, asks to close, or the mock stops.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    // A stuck peer cannot hold a test forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !shared.stopping.load(Ordering::SeqCst) {
        let Some(mut request) = read_request(&mut reader, &mut writer) else {
            return;
        };
        // A CONNECT (an agent taking the mock for its HTTPS proxy) is refused, as an egress
        // proxy refuses a host it does not allow; the connection ends there.
        let close = request.method == "CONNECT"
            || request
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let (status, content_type, body, answer) = answer(&request, shared);
        request.answer = answer;
        shared
            .requests
            .lock()
            .expect("requests")
            .push(request.clone());
        let mut head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-cache\r\n",
            body.len()
        );
        head.push_str(if close {
            "connection: close\r\n\r\n"
        } else {
            "connection: keep-alive\r\n\r\n"
        });
        let mut out = head.into_bytes();
        if request.method != "HEAD" {
            out.extend_from_slice(&body);
        }
        if writer
            .write_all(&out)
            .and_then(|()| writer.flush())
            .is_err()
            || close
        {
            return;
        }
    }
}

/// Reads one request; None at the end of the connection or on anything unreadable.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> Option<Request> {
    let mut line = String::new();
    // Tolerate stray blank lines between requests.
    while line.trim().is_empty() {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length: usize = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(Request {
        method,
        path: origin_form(&target),
        target,
        headers,
        body,
        answer: String::new(),
    })
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).ok()? == 0 {
            return None;
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).ok()?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer).ok()? == 0 || trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf).ok()?;
    }
}

/// `http://host:port/v1/x?y` → `/v1/x?y`; origin form stays as it is.
fn origin_form(target: &str) -> String {
    match target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(slash) => rest[slash..].to_string(),
            None => "/".to_string(),
        },
        None => target.to_string(),
    }
}

type Answer = (&'static str, &'static str, Vec<u8>, String);

fn answer(request: &Request, shared: &Shared) -> Answer {
    let path = request.path.split('?').next().unwrap_or("");
    let post = request.method == "POST";
    let id = shared.ids.fetch_add(1, Ordering::SeqCst) + 1;
    if request.method == "CONNECT" {
        return (
            "403 Forbidden",
            "text/plain",
            b"the mock tunnels nowhere\n".to_vec(),
            "403".to_string(),
        );
    }
    if post && path.ends_with("/responses") {
        return match request.json() {
            Some(body) => responses(&body, &shared.command, id),
            None => bad_request("the body is not JSON"),
        };
    }
    if post && path.ends_with("/messages/count_tokens") {
        return ok_json(json!({"input_tokens": 1}));
    }
    if post && path.ends_with("/messages") {
        return match request.json() {
            Some(body) => messages(&body, &shared.command, id),
            None => bad_request("the body is not JSON"),
        };
    }
    if path == "/api/hello" {
        return ok_json(json!({}));
    }
    (
        "404 Not Found",
        "application/json",
        br#"{"error":{"type":"not_found_error","message":"not played by the mock"}}"#.to_vec(),
        "404".to_string(),
    )
}

fn ok_json(value: Value) -> Answer {
    (
        "200 OK",
        "application/json",
        value.to_string().into_bytes(),
        "200".to_string(),
    )
}

fn bad_request(why: &str) -> Answer {
    (
        "400 Bad Request",
        "application/json",
        json!({"error": {"type": "invalid_request_error", "message": why}})
            .to_string()
            .into_bytes(),
        "400".to_string(),
    )
}

fn sse(events: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for event in events {
        let name = event["type"].as_str().unwrap_or("message");
        out.push_str(&format!("event: {name}\ndata: {event}\n\n"));
    }
    out.into_bytes()
}

/// The names of the function tools a Responses request offers, namespaces included.
fn offered_functions(body: &Value) -> Vec<String> {
    fn walk(tools: &Value, out: &mut Vec<String>) {
        for tool in tools.as_array().into_iter().flatten() {
            if let Some(name) = tool["name"].as_str() {
                out.push(name.to_string());
            }
            walk(&tool["tools"], out);
        }
    }
    let mut out = Vec::new();
    walk(&body["tools"], &mut out);
    out
}

/// OpenAI Responses API, streamed: `response.created`, one `response.output_item.done` (the
/// tool call, or the final message once a `function_call_output` came back), then
/// `response.completed` with usage. Codex reads the item from `output_item.done` and ends the
/// turn on `completed`.
fn responses(body: &Value, command: &str, id: usize) -> Answer {
    let answered = body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|item| item["type"] == "function_call_output");
    let response_id = format!("resp_mock_{id}");
    let (item, what) = if answered {
        (
            json!({
                "type": "message",
                "id": format!("msg_mock_{id}"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": FINAL_TEXT, "annotations": []}],
            }),
            "final",
        )
    } else {
        let functions = offered_functions(body);
        // Codex ≥ 0.1xx offers `exec_command` (unified exec); older ones offer `shell`.
        let (name, arguments) = if functions.iter().any(|f| f == "exec_command")
            || !functions.iter().any(|f| f == "shell")
        {
            ("exec_command", json!({"cmd": command}))
        } else {
            ("shell", json!({"command": ["bash", "-lc", command]}))
        };
        (
            json!({
                "type": "function_call",
                "id": format!("fc_mock_{id}"),
                "call_id": format!("call_mock_{id}"),
                "name": name,
                "arguments": arguments.to_string(),
                "status": "completed",
            }),
            "tool-call",
        )
    };
    let usage = json!({
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2,
    });
    let events = [
        json!({"type": "response.created", "sequence_number": 0,
               "response": {"id": response_id, "object": "response", "status": "in_progress"}}),
        json!({"type": "response.output_item.added", "sequence_number": 1,
               "output_index": 0, "item": item}),
        json!({"type": "response.output_item.done", "sequence_number": 2,
               "output_index": 0, "item": item}),
        json!({"type": "response.completed", "sequence_number": 3,
               "response": {"id": response_id, "object": "response", "status": "completed",
                            "output": [item], "usage": usage}}),
    ];
    (
        "200 OK",
        "text/event-stream",
        sse(&events),
        what.to_string(),
    )
}

/// Anthropic Messages API. A request offering the `Bash` tool whose last message carries no
/// `tool_result` gets a `tool_use` of Bash (stop_reason `tool_use`); every other one gets the
/// final text (stop_reason `end_turn`). Streamed as message_start, content_block_start,
/// content_block_delta (`input_json_delta` / `text_delta`), content_block_stop, message_delta,
/// message_stop; or one JSON message when the request says `"stream": false`.
fn messages(body: &Value, command: &str, id: usize) -> Answer {
    let offers_bash = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|tool| tool["name"] == "Bash");
    let answered = body["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .is_some_and(|content| content.iter().any(|c| c["type"] == "tool_result"));
    let tool_call = offers_bash && !answered;
    let model = body["model"].as_str().unwrap_or("claude-mock").to_string();
    let message_id = format!("msg_mock_{id}");
    let tool_id = format!("toolu_mock_{id}");
    let input = json!({"command": command, "description": "Write the note"});
    let (block, stop_reason) = if tool_call {
        (
            json!({"type": "tool_use", "id": tool_id, "name": "Bash", "input": input}),
            "tool_use",
        )
    } else {
        (json!({"type": "text", "text": FINAL_TEXT}), "end_turn")
    };
    let what = if tool_call { "tool-call" } else { "final" }.to_string();
    let usage = json!({"input_tokens": 1, "output_tokens": 1,
                       "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    if body["stream"] != true {
        let message = json!({
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [block], "stop_reason": stop_reason, "stop_sequence": null,
            "usage": usage,
        });
        return (
            "200 OK",
            "application/json",
            message.to_string().into_bytes(),
            what,
        );
    }
    let (start_block, delta) = if tool_call {
        (
            json!({"type": "tool_use", "id": tool_id, "name": "Bash", "input": {}}),
            json!({"type": "input_json_delta", "partial_json": input.to_string()}),
        )
    } else {
        (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": FINAL_TEXT}),
        )
    };
    let events = [
        json!({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage}}),
        json!({"type": "content_block_start", "index": 0, "content_block": start_block}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 1}}),
        json!({"type": "message_stop"}),
    ];
    ("200 OK", "text/event-stream", sse(&events), what)
}
