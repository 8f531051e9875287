pub mod config;
pub mod hook;
pub mod hooks;
pub mod init;
pub mod session;
pub mod verify;
