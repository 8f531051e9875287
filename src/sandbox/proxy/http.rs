//! The proxy's HTTP side: CONNECT tunnels and plain forwarding of absolute-form `http://`
//! requests, rewritten to origin-form with `Connection: close`.

use std::io::{self, Write};

use super::{
    CONNECT_TIMEOUT, Failure, Incoming, Log, MAX_HEAD, MAX_HEADERS, Policy, connect, log_line,
    show, show_addr,
};

/// Headers that concern this hop only, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// A parsed request head: what the rest of the exchange needs from it.
struct Head {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, Vec<u8>)>,
}

pub(super) fn serve(mut incoming: Incoming, policy: &Policy, log: &Log) {
    let head = match read_head(&mut incoming) {
        Ok(head) => head,
        Err((status, why)) => {
            if !why.is_empty() {
                log_line(log, &format!("bad request: {why}"));
                answer(&mut incoming, status, &why);
            }
            return;
        }
    };
    let request = if head.method == "CONNECT" {
        split_authority(&head.target, None).map(|(host, port)| (host, port, None))
    } else {
        absolute_http(&head.target).map(|(host, port, path)| (host, port, Some(path)))
    };
    let (host, port, path) = match request {
        Ok(request) => request,
        Err(why) => {
            log_line(log, &format!("bad request: {why}"));
            answer(&mut incoming, 400, &why);
            return;
        }
    };
    // Plain forwarding carries one request: its body is exactly what Content-Length says.
    let body = match path.as_ref().map_or(Ok(0), |_| body_length(&head)) {
        Ok(body) => body,
        Err((status, why)) => {
            log_line(log, &format!("bad request: {why}"));
            answer(&mut incoming, status, &why);
            return;
        }
    };
    let (mut upstream, addr) = match connect(policy, &host, port, CONNECT_TIMEOUT) {
        Ok(connected) => connected,
        Err(failure) => {
            failure.log(log, &host, port);
            let status = if matches!(failure, Failure::Refused(_)) {
                403
            } else {
                502
            };
            let message = format!(
                "git-codex sandbox: {} {}: {}",
                if status == 403 {
                    "refused"
                } else {
                    "cannot reach"
                },
                show(&host, port),
                failure.reason()
            );
            answer(&mut incoming, status, &message);
            return;
        }
    };
    log_line(
        log,
        &format!(
            "allowed {} {} ({})",
            head.method,
            show(&host, port),
            show_addr(addr)
        ),
    );
    match path {
        None => {
            if incoming
                .stream
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .is_ok()
            {
                incoming.relay_to(upstream);
            }
        }
        Some(path) => {
            if upstream
                .write_all(&origin_form(&head, &host, port, &path))
                .is_ok()
            {
                incoming.forward_one(upstream, body);
            }
        }
    }
}

/// Reads and parses the request head, bounded in size and time. The error is the status to
/// answer and why (empty when the client left without asking anything).
fn read_head(incoming: &mut Incoming) -> Result<Head, (u16, String)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&incoming.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    method: request.method.unwrap_or_default().to_string(),
                    target: request.path.unwrap_or_default().to_string(),
                    minor: request.version.unwrap_or(1),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect(),
                };
                incoming.buf.drain(..len);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if incoming.buf.len() >= MAX_HEAD => {
                return Err((431, format!("request head over {MAX_HEAD} bytes")));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err((431, format!("more than {MAX_HEADERS} headers")));
            }
            Err(err) => return Err((400, format!("not an HTTP request ({err})"))),
        }
        let want = incoming.buf.len() + 1;
        match incoming.fill(want) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                return Err((400, String::new()));
            }
            Err(err) => return Err((408, format!("reading the request: {err}"))),
        }
    }
}

/// `host:port` (authority-form), the port required unless `default` is given.
fn split_authority(authority: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let bad = || format!("'{authority}' is not host:port");
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || (host.contains(['@', ':', '[', ']']) && !authority.starts_with('[')) {
        return Err(bad());
    }
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(bad)?,
        Some(_) => return Err(bad()),
        None => default.ok_or_else(bad)?,
    };
    Ok((host.to_string(), port))
}

/// `http://authority/path?query` → host, port, and the origin-form `/path?query`.
fn absolute_http(target: &str) -> Result<(String, u16, String), String> {
    let scheme_end = target.find("://").unwrap_or(0);
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(if target.starts_with('/') {
            "a proxy needs the absolute URL (http://host/path)".to_string()
        } else if scheme.eq_ignore_ascii_case("https") {
            "https goes through CONNECT".to_string()
        } else {
            format!("cannot forward '{target}': only http:// URLs and CONNECT")
        });
    }
    let rest = &target[scheme_end + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("credentials in a proxied URL are not forwarded".to_string());
    }
    let (host, port) = split_authority(authority, Some(80))?;
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok((host, port, path))
}

/// The length of a plain request's body: its Content-Length (none: 0). A chunked body is not
/// forwarded over plain http (411): the proxy would have to read chunks to know where the one
/// request ends.
fn body_length(head: &Head) -> Result<u64, (u16, String)> {
    let mut length = None;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err((
                411,
                "a chunked request body is not forwarded over plain http; send Content-Length, or use https".to_string(),
            ));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or((400, "Content-Length is not a number".to_string()))?;
            if length.is_some_and(|l| l != parsed) {
                return Err((400, "two different Content-Length headers".to_string()));
            }
            length = Some(parsed);
        }
    }
    Ok(length.unwrap_or(0))
}

/// The request head as the origin server should see it.
fn origin_form(head: &Head, host: &str, port: u16, path: &str) -> Vec<u8> {
    let mut out = format!("{} {path} HTTP/1.{}\r\n", head.method, head.minor).into_bytes();
    let host_header = if port == 80 {
        show(host, port).trim_end_matches(":80").to_string()
    } else {
        show(host, port)
    };
    out.extend_from_slice(format!("Host: {host_header}\r\n").as_bytes());
    for (name, value) in &head.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// A short plain-text answer, after which the connection closes.
fn answer(incoming: &mut Incoming, status: u16, message: &str) {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        411 => "Length Required",
        431 => "Request Header Fields Too Large",
        _ => "Bad Gateway",
    };
    let body = format!("{message}\n");
    // One write: a client that reads the answer with one read gets all of it.
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = incoming.stream.write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_with_their_ports() {
        assert_eq!(
            split_authority("example.com:443", None),
            Ok(("example.com".into(), 443))
        );
        assert_eq!(
            split_authority("[::1]:8080", None),
            Ok(("::1".into(), 8080))
        );
        assert_eq!(
            split_authority("example.com", Some(80)),
            Ok(("example.com".into(), 80))
        );
        for bad in [
            "example.com",
            "example.com:",
            ":443",
            "a:b:443",
            "[::1]x",
            "h:0",
            "h:70000",
            "h:+1",
            "u@h:1",
        ] {
            assert!(split_authority(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn absolute_urls_become_origin_form() {
        assert_eq!(
            absolute_http("http://Example.com:8080/a/b?c=d#frag"),
            Ok(("Example.com".into(), 8080, "/a/b?c=d".into()))
        );
        assert_eq!(
            absolute_http("HTTP://example.com"),
            Ok(("example.com".into(), 80, "/".into()))
        );
        assert_eq!(
            absolute_http("http://example.com?q"),
            Ok(("example.com".into(), 80, "/?q".into()))
        );
        for bad in [
            "/index.html",
            "https://example.com/",
            "ftp://x/",
            "http://u:p@example.com/",
            "*",
        ] {
            assert!(absolute_http(bad).is_err(), "{bad}");
        }
    }
}
