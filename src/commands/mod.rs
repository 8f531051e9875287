pub mod config;
pub mod init;
pub mod session;
pub mod verify;
