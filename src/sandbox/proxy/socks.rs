//! The proxy's SOCKS5 side (RFC 1928): no authentication, CONNECT only, to a domain name, an
//! IPv4 or an IPv6 address.

use std::io::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{CONNECT_TIMEOUT, Failure, Incoming, Log, Policy, connect, log_line, show, show_addr};

const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
const SUCCEEDED: u8 = 0x00;
const GENERAL_FAILURE: u8 = 0x01;
const NOT_ALLOWED: u8 = 0x02;
const HOST_UNREACHABLE: u8 = 0x04;
const CONNECTION_REFUSED: u8 = 0x05;
const COMMAND_NOT_SUPPORTED: u8 = 0x07;
const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

pub(super) fn serve(mut incoming: Incoming, policy: &Policy, log: &Log) {
    if let Err(why) = negotiate(&mut incoming) {
        log_line(log, &format!("bad request: SOCKS5: {why}"));
        return;
    }
    let (host, port) = match read_request(&mut incoming) {
        Ok(Ok(dest)) => dest,
        Ok(Err((code, why))) => {
            log_line(log, &format!("bad request: SOCKS5: {why}"));
            let _ = reply(&mut incoming, code);
            return;
        }
        Err(err) => {
            log_line(log, &format!("bad request: SOCKS5: {err}"));
            return;
        }
    };
    match connect(policy, &host, port, CONNECT_TIMEOUT) {
        Ok((upstream, addr)) => {
            log_line(
                log,
                &format!("allowed SOCKS5 {} ({})", show(&host, port), show_addr(addr)),
            );
            if reply(&mut incoming, SUCCEEDED).is_ok() {
                incoming.relay_to(upstream);
            }
        }
        Err(failure) => {
            failure.log(log, &host, port);
            let code = match &failure {
                Failure::Refused(_) => NOT_ALLOWED,
                Failure::Unresolved(_) => HOST_UNREACHABLE,
                Failure::Unreachable(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    CONNECTION_REFUSED
                }
                Failure::Unreachable(_) => GENERAL_FAILURE,
            };
            let _ = reply(&mut incoming, code);
        }
    }
}

/// The method selection: no authentication, or nothing.
fn negotiate(incoming: &mut Incoming) -> Result<(), String> {
    let greeting = incoming.take(2).map_err(|err| err.to_string())?;
    let methods = incoming
        .take(usize::from(greeting[1]))
        .map_err(|err| err.to_string())?;
    if !methods.contains(&NO_AUTH) {
        let _ = incoming.stream.write_all(&[0x05, NO_ACCEPTABLE_METHOD]);
        return Err("the client offers no unauthenticated method".to_string());
    }
    incoming
        .stream
        .write_all(&[0x05, NO_AUTH])
        .map_err(|err| err.to_string())
}

type Request = Result<(String, u16), (u8, String)>;

/// The request: the destination, or the reply code and why it cannot be served.
fn read_request(incoming: &mut Incoming) -> io::Result<Request> {
    let fixed = incoming.take(4)?;
    let (version, command, kind) = (fixed[0], fixed[1], fixed[3]);
    if version != 0x05 {
        return Ok(Err((GENERAL_FAILURE, format!("version {version}"))));
    }
    let host = match kind {
        0x01 => {
            let b = incoming.take(4)?;
            Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
        }
        0x03 => {
            let len = incoming.take(1)?[0];
            let name = incoming.take(usize::from(len))?;
            match String::from_utf8(name) {
                Ok(name) => name,
                Err(_) => {
                    return Ok(Err((
                        GENERAL_FAILURE,
                        "a domain name that is not UTF-8".to_string(),
                    )));
                }
            }
        }
        0x04 => {
            let b = incoming.take(16)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b);
            Ipv6Addr::from(octets).to_string()
        }
        other => {
            return Ok(Err((
                ADDRESS_TYPE_NOT_SUPPORTED,
                format!("address type {other}"),
            )));
        }
    };
    let port = incoming.take(2)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    if command != 0x01 {
        return Ok(Err((
            COMMAND_NOT_SUPPORTED,
            format!("command {command} (only CONNECT)"),
        )));
    }
    Ok(Ok((host, port)))
}

/// A reply with an unspecified bound address.
fn reply(incoming: &mut Incoming, code: u8) -> io::Result<()> {
    incoming
        .stream
        .write_all(&[0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
}
