//! The egress policy (SPEC §7): which destinations the proxy lets the agent reach. Entries are
//! parsed by src/config/allow.rs (re-exported here); this module decides on a request.
//!
//! A request names a host and a port. A name must be listed (or the policy allows all, the
//! `network-enabled` mode); an IP address must be listed itself. Then every address the name
//! resolved to is checked: a loopback, private, link-local, metadata, unspecified, multicast or
//! broadcast address, in any spelling, passes only when that exact address:port is listed, even
//! when the policy allows all. Only the addresses that pass are ever connected to.

use std::net::{IpAddr, SocketAddr};

pub use crate::config::allow::{Allowlist, Pattern, is_public, special_range};
use crate::config::allow::{looks_numeric, normalize_name, parse_ipv4_loose};

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allowlist: Allowlist,
    /// Every public destination (`network-enabled`); non-public ones still need listing.
    pub allow_all: bool,
    /// This machine's own addresses ([`host_addresses`]): the proxy runs here, so a
    /// connection to one of them stays on the machine, to whatever listens on all interfaces.
    /// They count as special, whatever range they are in.
    pub host_addrs: Vec<IpAddr>,
}

/// The addresses of this machine's interfaces (getifaddrs), canonical.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read and then free; each
    // sockaddr is read as the family it says it is.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return found;
        }
        let mut cursor = list;
        while !cursor.is_null() {
            let addr = (*cursor).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        found.push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        found.push(IpAddr::from(v6.sin6_addr.s6_addr).to_canonical());
                    }
                    _ => {}
                }
            }
            cursor = (*cursor).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.sort();
    found.dedup();
    found
}

/// What a request asks for, its host read as a resolver would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A host name, normalized (lower case, no trailing dot).
    Name(String),
    /// An IP address, however it was spelled (`127.1`, `[::ffff:7f00:1]`), in canonical form.
    Ip(IpAddr),
}

impl Target {
    /// Reads a request's host: a name, a dotted-quad or loose IPv4 spelling, or an IPv6
    /// address with or without brackets.
    pub fn parse(host: &str) -> Result<Target, String> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Target::Ip(ip.to_canonical()));
        }
        let name = normalize_name(bare);
        if let Some(v4) = parse_ipv4_loose(&name) {
            return Ok(Target::Ip(IpAddr::V4(v4)));
        }
        let valid = !name.is_empty()
            && name.len() <= 253
            && !looks_numeric(&name)
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid {
            Ok(Target::Name(name))
        } else {
            Err("not a host name or IP address".to_string())
        }
    }
}

impl Policy {
    /// The first check, before resolving: is this name or address allowed at all?
    pub fn check_target(&self, target: &Target, port: u16) -> Result<(), String> {
        match target {
            Target::Name(name) if self.allow_all || self.allowlist.allows_name(name, port) => {
                Ok(())
            }
            Target::Name(_) => Err("not in sandbox.allowed_domains".to_string()),
            Target::Ip(ip) => {
                let public = self.outward(*ip);
                if self.allowlist.allows_ip(*ip, port, public) || (public && self.allow_all) {
                    Ok(())
                } else if public {
                    Err(format!("{ip} is not in sandbox.allowed_domains"))
                } else {
                    Err(self.unlisted_special(SocketAddr::new(*ip, port)))
                }
            }
        }
    }

    /// The second check, on one resolved address.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), String> {
        let ip = addr.ip().to_canonical();
        if self.outward(ip) || self.allowlist.allows_ip(ip, addr.port(), false) {
            Ok(())
        } else {
            Err(self.unlisted_special(addr))
        }
    }

    /// A public address that is not this machine's own.
    fn outward(&self, ip: IpAddr) -> bool {
        is_public(ip) && !self.host_addrs.contains(&ip.to_canonical())
    }

    fn unlisted_special(&self, addr: SocketAddr) -> String {
        let ip = addr.ip().to_canonical();
        let range = if self.host_addrs.contains(&ip) && is_public(ip) {
            "this machine's own address"
        } else {
            special_range(ip).unwrap_or("a special address")
        };
        format!(
            "{ip} is {range}, allowed only when {} is listed",
            SocketAddr::new(ip, addr.port())
        )
    }

    /// Decides on a request for `host`:`port` that resolved to `resolved`: the addresses that
    /// may be connected to, in order, or why none may.
    pub fn decide(
        &self,
        host: &str,
        port: u16,
        resolved: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, String> {
        let target = Target::parse(host)?;
        self.check_target(&target, port)?;
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = resolved
            .iter()
            .filter(|addr| match self.check_addr(**addr) {
                Ok(()) => true,
                Err(why) => {
                    first_refusal.get_or_insert(why);
                    false
                }
            })
            .copied()
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(why)) => Err(why),
            (true, None) => Err("it resolved to no address".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str], allow_all: bool) -> Policy {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        Policy {
            allowlist: Allowlist::parse(&entries).unwrap(),
            allow_all,
            host_addrs: Vec::new(),
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_listed_name_reaches_its_public_addresses() {
        let p = policy(&["api.example.com", "*.example.org:443"], false);
        let public = addrs(&["93.184.216.34:443"]);
        assert_eq!(
            p.decide("api.example.com", 443, &public),
            Ok(public.clone())
        );
        assert_eq!(
            p.decide("API.Example.COM.", 8080, &public),
            Ok(public.clone())
        );
        assert_eq!(p.decide("x.example.org", 443, &public), Ok(public.clone()));
        for (host, port) in [
            ("example.org", 443),
            ("x.example.org", 80),
            ("evilexample.org", 443),
            ("api.example.com.evil.test", 443),
            ("other.test", 443),
        ] {
            let err = p.decide(host, port, &public).unwrap_err();
            assert!(
                err.contains("not in sandbox.allowed_domains"),
                "{host}: {err}"
            );
        }
    }

    #[test]
    fn a_name_resolving_to_a_special_address_needs_that_address_listed() {
        let p = policy(&["localhost", "internal.test"], false);
        let lo = addrs(&["127.0.0.1:8080", "[::1]:8080"]);
        let err = p.decide("localhost", 8080, &lo).unwrap_err();
        assert!(err.contains("127.0.0.1 is a loopback address"), "{err}");
        assert!(err.contains("127.0.0.1:8080 is listed"), "{err}");
        for special in ["10.0.0.5:443", "169.254.169.254:80", "[fd00:ec2::254]:80"] {
            let err = p
                .decide("internal.test", 443, &addrs(&[special]))
                .unwrap_err();
            assert!(err.contains("allowed only when"), "{special}: {err}");
        }
        let p = policy(&["localhost", "127.0.0.1:8080"], false);
        assert_eq!(
            p.decide("localhost", 8080, &lo),
            Ok(addrs(&["127.0.0.1:8080"]))
        );
        assert!(
            p.decide("localhost", 8081, &addrs(&["127.0.0.1:8081"]))
                .is_err()
        );
    }

    #[test]
    fn mixed_answers_keep_only_the_allowed_addresses() {
        let p = policy(&["rebind.test"], false);
        let mixed = addrs(&[
            "127.0.0.1:443",
            "93.184.216.34:443",
            "[::ffff:10.0.0.1]:443",
        ]);
        assert_eq!(
            p.decide("rebind.test", 443, &mixed),
            Ok(addrs(&["93.184.216.34:443"]))
        );
        assert!(p.decide("rebind.test", 443, &[]).is_err());
    }

    #[test]
    fn ip_literals_must_be_listed_in_every_spelling() {
        let p = policy(
            &["127.0.0.1:11434", "203.0.113.7", "[2001:db8::1]:443"],
            false,
        );
        let ok = |host: &str, port: u16| {
            let target = Target::parse(host).unwrap();
            p.check_target(&target, port)
        };
        for host in [
            "127.0.0.1",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "0177.0.0.1",
            "[::ffff:127.0.0.1]",
            "::ffff:7f00:1",
        ] {
            assert_eq!(ok(host, 11434), Ok(()), "{host}");
            let err = ok(host, 11435).unwrap_err();
            assert!(err.contains("127.0.0.1:11435 is listed"), "{host}: {err}");
        }
        assert_eq!(ok("203.0.113.7", 22), Ok(()));
        assert!(ok("203.0.113.8", 443).is_err());
        assert_eq!(ok("[2001:db8::1]", 443), Ok(()));
        assert!(ok("[2001:db8::1]", 80).is_err());
        assert!(ok("[::1]", 11434).is_err());
        assert!(ok("10.0.0.1", 11434).is_err());
    }

    #[test]
    fn this_machines_own_public_address_is_special() {
        let mut p = policy(&["203.0.113.5:8443"], true);
        p.host_addrs = vec!["203.0.113.5".parse().unwrap()];
        let own = addrs(&["203.0.113.5:8765"]);
        let refused = p.decide("me.test", 8765, &own).unwrap_err();
        assert!(refused.contains("this machine's own address"), "{refused}");
        assert!(p.decide("203.0.113.5", 8765, &own).is_err());
        let listed = addrs(&["203.0.113.5:8443"]);
        assert_eq!(p.decide("203.0.113.5", 8443, &listed), Ok(listed));
        assert!(!host_addresses().is_empty(), "loopback at least");
    }

    #[test]
    fn allow_all_still_guards_special_addresses() {
        let p = policy(&["127.0.0.1:11434"], true);
        let public = addrs(&["93.184.216.34:443"]);
        assert_eq!(p.decide("anything.test", 443, &public), Ok(public));
        assert!(p.decide("8.8.8.8", 53, &addrs(&["8.8.8.8:53"])).is_ok());
        for (host, addr) in [
            ("localhost", "127.0.0.1:8080"),
            ("metadata.test", "169.254.169.254:80"),
            ("lan.test", "192.168.1.1:80"),
            ("cgnat.test", "100.64.0.1:80"),
            ("127.0.0.1", "127.0.0.1:8080"),
            ("[::1]", "[::1]:8080"),
            ("[fe80::1]", "[fe80::1]:8080"),
        ] {
            let a = addrs(&[addr]);
            assert!(p.decide(host, a[0].port(), &a).is_err(), "{host}");
        }
        let lo = addrs(&["127.0.0.1:11434"]);
        assert_eq!(p.decide("localhost", 11434, &lo), Ok(lo.clone()));
        assert_eq!(p.decide("127.1", 11434, &lo), Ok(lo));
    }

    #[test]
    fn hosts_that_are_neither_name_nor_address_are_refused() {
        for host in ["", "a b", "evil.test/x", "a..b", "[::1", "1.2.3.999", "x\n"] {
            assert!(Target::parse(host).is_err(), "{host:?}");
        }
        assert_eq!(
            Target::parse("EXAMPLE.com."),
            Ok(Target::Name("example.com".to_string()))
        );
    }
}
