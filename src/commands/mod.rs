pub mod config;
pub mod doctor;
pub mod hook;
pub mod hooks;
pub mod init;
pub mod sandbox_exec;
pub mod session;
pub mod verify;
