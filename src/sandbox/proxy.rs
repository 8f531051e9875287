//! PLACEHOLDER until the proxy branch lands.
use std::io::Write;
use std::sync::{Arc, Mutex};
use camino::{Utf8Path, Utf8PathBuf};
use super::allow::Policy;
pub struct ProxyHandle(#[allow(dead_code)] std::os::unix::net::UnixListener, Utf8PathBuf, #[allow(dead_code)] Policy);
pub fn start(socket: &Utf8Path, policy: Policy, _log: Arc<Mutex<dyn Write + Send>>) -> std::io::Result<ProxyHandle> {
    let _ = std::fs::remove_file(socket);
    Ok(ProxyHandle(std::os::unix::net::UnixListener::bind(socket)?, socket.to_path_buf(), policy))
}
impl Drop for ProxyHandle { fn drop(&mut self) { let _ = std::fs::remove_file(&self.1); } }
