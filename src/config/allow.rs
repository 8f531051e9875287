//! The language of `sandbox.allowed_domains` (SPEC §7, egress): what an entry may say. The
//! proxy's decisions (src/sandbox/allow.rs) are made on the parsed [`Allowlist`]; config
//! validation parses with the same code, so a list that validates is the list the proxy obeys.
//!
//! An entry is one of
//! - `host`: that name, any port;
//! - `*.host`: every name below `host` (`a.host`, `a.b.host`), *not* `host` itself: list both
//!   when both are meant;
//! - `host:port`, `*.host:port`: the same, on that port only;
//! - an IP address with a port, `127.0.0.1:11434` or `[::1]:8080`; a public address may also be
//!   listed without a port (`203.0.113.7`, `[2001:db8::7]`), a loopback, private or link-local
//!   one may not: reaching those is allowed one port at a time.
//!
//! Names are compared without case and without a trailing dot. IP addresses are written as four
//! decimal numbers (or in IPv6 notation): `127.1`, `0x7f.0.0.1` or `2130706433` are errors, not
//! names, because resolvers read them as addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an entry matches, before its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this name (lower case, no trailing dot).
    Name(String),
    /// Every name ending in `.` + this suffix.
    Below(String),
    /// This address (an IPv4-mapped IPv6 address is kept as its IPv4 form).
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pattern: Pattern,
    /// `None`: any port.
    pub port: Option<u16>,
}

/// A parsed `sandbox.allowed_domains`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

const FORMS: &str = "write a host name (api.example.com), *.example.com for the names below it, \
either with :PORT, or an IP address with a port (127.0.0.1:11434, [::1]:8080)";

impl Allowlist {
    /// Parses every entry; the error names the first bad one and the forms that are valid.
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        let entries = entries
            .iter()
            .map(|text| parse_entry(text).map_err(|why| format!("'{text}': {why}; {FORMS}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Allowlist { entries })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether the name `host` (already normalized by [`normalize_name`]) is listed for `port`.
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && match &entry.pattern {
                    Pattern::Name(name) => name == host,
                    Pattern::Below(suffix) => host
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                    Pattern::Ip(_) => false,
                }
        })
    }

    /// Whether `ip` is listed: with exactly `port`, or with no port when `any_port` is true.
    pub fn allows_ip(&self, ip: IpAddr, port: u16, any_port: bool) -> bool {
        let ip = ip.to_canonical();
        self.entries.iter().any(|entry| {
            entry.pattern == Pattern::Ip(ip)
                && match entry.port {
                    Some(p) => p == port,
                    None => any_port,
                }
        })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pattern, self.port) {
            (Pattern::Name(name), None) => write!(f, "{name}"),
            (Pattern::Name(name), Some(port)) => write!(f, "{name}:{port}"),
            (Pattern::Below(name), None) => write!(f, "*.{name}"),
            (Pattern::Below(name), Some(port)) => write!(f, "*.{name}:{port}"),
            (Pattern::Ip(IpAddr::V6(ip)), None) => write!(f, "[{ip}]"),
            (Pattern::Ip(ip), None) => write!(f, "{ip}"),
            (Pattern::Ip(ip), Some(port)) => write!(f, "{}", std::net::SocketAddr::new(*ip, port)),
        }
    }
}

fn parse_entry(text: &str) -> Result<Entry, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an entry is empty".into());
    }
    if text.contains("://") || text.contains('/') {
        return Err("an entry is a host, not a URL".into());
    }
    let (host, port) = split_host_port(text)?;
    if let Some(ip) = parse_ip(host) {
        let ip = ip.to_canonical();
        if port.is_none() && !is_public(ip) {
            return Err(format!(
                "{ip} is not a public address, so it is allowed one port at a time: add :PORT"
            ));
        }
        return Ok(Entry {
            pattern: Pattern::Ip(ip),
            port,
        });
    }
    if text.starts_with('[') || host.contains(':') {
        return Err("not an IPv6 address".into());
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    let name = normalize_name(name);
    check_name(&name)?;
    if wildcard && !name.contains('.') {
        return Err(format!("*.{name} would allow a whole top-level domain"));
    }
    let pattern = if wildcard {
        Pattern::Below(name)
    } else {
        Pattern::Name(name)
    };
    Ok(Entry { pattern, port })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("a '[' without its ']'")?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(
                after.strip_prefix(':').ok_or("junk after ']'")?,
            )?),
        };
        return Ok((inside, port));
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text, None));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("'{text}' is not a port (1-65535)")),
    }
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse::<IpAddr>().ok()
}

/// Lower case, without one trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A DNS name of letters, digits, `-` and `_`, whose last label is not a number (resolvers
/// read `127.1` and `2130706433` as addresses).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("not a host name".into());
    }
    if name.contains('*') {
        return Err("'*' is allowed only as a whole first label ('*.example.com')".into());
    }
    for label in name.split('.') {
        let good = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !good {
            return Err(format!("'{label}' is not a valid part of a host name"));
        }
    }
    if looks_numeric(name) {
        return Err("an IP address is written as four decimal numbers".into());
    }
    Ok(())
}

/// Whether resolvers would take `name` for an IPv4 address: its last label is a number
/// (decimal, or hexadecimal with 0x), as the URL standard decides.
pub fn looks_numeric(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let digits = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .map_or(last.bytes().all(|b| b.is_ascii_digit()), |hex| {
            hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
    !last.is_empty() && digits
}

/// Reads `text` as inet_aton(3) does: one to four parts, each decimal, octal (leading 0) or
/// hexadecimal (0x), the last filling the remaining bytes: `127.1`, `0x7f.0.0.1`, `2130706433`.
pub fn parse_ipv4_loose(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(4);
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if (digits.is_empty() && radix != 16) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let value = if digits.is_empty() {
            0
        } else {
            u32::from_str_radix(digits, radix).ok()?
        };
        values.push(value);
    }
    let (last, head) = values.split_last()?;
    if head.iter().any(|v| *v > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    if room < 32 && *last >= 1 << room {
        return None;
    }
    let mut addr = 0u32;
    for (i, v) in head.iter().enumerate() {
        addr |= v << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(addr | last))
}

/// Whether `ip` is an ordinary public address: not loopback, private, link-local, unspecified,
/// multicast, broadcast or reserved, in any IPv6 spelling that embeds one of those.
pub fn is_public(ip: IpAddr) -> bool {
    special_range(ip).is_none()
}

/// The kind of non-public range `ip` is in, as words for a refusal.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "a cloud metadata address",
        (0, _) => "an unspecified address",
        (127, _) => "a loopback address",
        (10, _) | (192, 168) => "a private address",
        (172, 16..=31) => "a private address",
        (100, 64..=127) => "a shared (CGNAT) address",
        (169, 254) => "a link-local address",
        (192, 0) if c == 0 => "an IETF protocol address",
        (224..=239, _) => "a multicast address",
        (255, 255) if c == 255 && d == 255 => "the broadcast address",
        (240..=255, _) => "a reserved address",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96)
    // and 6to4 (2002:AABB:CCDD::/48) reach the IPv4 address they carry.
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let embedded = match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    };
    if let Some(v4) = embedded {
        return special_v4(v4);
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "a private (ULA) address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Result<Allowlist, String> {
        Allowlist::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_form_parses() {
        let l = list(&[
            "API.Example.com.",
            "*.example.org",
            "host.test:8443",
            "*.svc.test:443",
            "127.0.0.1:11434",
            "[::1]:8080",
            "203.0.113.7",
            "[2001:db8::7]",
            "2001:db8::8",
            "[::ffff:127.0.0.1]:9000",
        ])
        .unwrap();
        let shown: Vec<String> = l.entries().iter().map(Entry::to_string).collect();
        assert_eq!(
            shown,
            [
                "api.example.com",
                "*.example.org",
                "host.test:8443",
                "*.svc.test:443",
                "127.0.0.1:11434",
                "[::1]:8080",
                "203.0.113.7",
                "[2001:db8::7]",
                "[2001:db8::8]",
                "127.0.0.1:9000",
            ]
        );
    }

    #[test]
    fn bad_entries_are_named_with_the_valid_forms() {
        for bad in [
            "",
            "https://api.example.com",
            "api.example.com/v1",
            "host:0",
            "host:99999",
            "host:+80",
            "*",
            "*.com",
            "a.*.example.com",
            "ex*ample.com",
            "bad_-.com.-x",
            "127.0.0.1",
            "10.1.2.3",
            "[::1]",
            "fe80::1",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "127.1:80",
            "[::1",
            "[::1]x",
            "[example.com]:80",
            "a..b",
        ] {
            let err = list(&["ok.example.com", bad]).expect_err(bad);
            assert!(err.starts_with(&format!("'{bad}': ")), "{err}");
            assert!(err.contains("127.0.0.1:11434"), "{err}");
        }
    }

    #[test]
    fn names_match_without_case_and_wildcards_only_below() {
        let l = list(&["api.example.com", "*.example.org", "only.test:8443"]).unwrap();
        assert!(l.allows_name("api.example.com", 443));
        assert!(l.allows_name("api.example.com", 1));
        assert!(!l.allows_name("example.com", 443));
        assert!(!l.allows_name("xapi.example.com", 443));
        assert!(l.allows_name("a.example.org", 443));
        assert!(l.allows_name("a.b.example.org", 80));
        assert!(!l.allows_name("example.org", 443));
        assert!(!l.allows_name("evilexample.org", 443));
        assert!(!l.allows_name(".example.org", 443));
        assert!(l.allows_name("only.test", 8443));
        assert!(!l.allows_name("only.test", 443));
        assert_eq!(normalize_name("API.Example.COM."), "api.example.com");
    }

    #[test]
    fn addresses_match_by_port_and_canonical_form() {
        let l = list(&["127.0.0.1:11434", "203.0.113.7", "[2001:db8::9]:443"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(l.allows_ip(ip("127.0.0.1"), 11434, false));
        assert!(l.allows_ip(ip("::ffff:127.0.0.1"), 11434, false));
        assert!(!l.allows_ip(ip("127.0.0.1"), 11435, true));
        assert!(l.allows_ip(ip("203.0.113.7"), 22, true));
        assert!(!l.allows_ip(ip("203.0.113.7"), 22, false));
        assert!(l.allows_ip(ip("2001:db8::9"), 443, false));
        assert!(!l.allows_ip(ip("2001:db8::9"), 80, true));
    }

    #[test]
    fn loose_ipv4_spellings_read_as_resolvers_do() {
        let lo = Some(Ipv4Addr::LOCALHOST);
        for text in [
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "0177.0.0.1",
            "127.0.1",
            "0x7f000001",
        ] {
            assert_eq!(parse_ipv4_loose(text), lo, "{text}");
            assert!(looks_numeric(text), "{text}");
        }
        for text in [
            "+127.0.0.1",
            "256.0.0.1",
            "1.2.3.4.5",
            "example.com",
            "1.2.3.4294967296",
            "08.0.0.1",
            "",
        ] {
            assert_eq!(parse_ipv4_loose(text), None, "{text}");
        }
        assert!(!looks_numeric("example.com"));
        assert!(!looks_numeric("1.2.3.example"));
    }

    #[test]
    fn special_ranges_are_found_in_every_spelling() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "metadata"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "ULA"),
            ("fd00:ec2::254", "metadata"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:101::1", "private"),
        ];
        for (text, word) in cases {
            let ip: IpAddr = text.parse().unwrap();
            let range = special_range(ip).unwrap_or("public");
            assert!(range.contains(word), "{text}: {range}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
