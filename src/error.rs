//! The one error type that carries an exit code. Commands return `anyhow::Result`;
//! `main` looks for a [`UserError`] in the chain to decide the exit code (SPEC §5).

use std::fmt;

/// Exit codes, everywhere (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Runtime = 1,
    BadInput = 2,
    Refused = 3,
    UnknownSession = 4,
}

/// An error the user can act on: what happened, and hints saying what to do.
#[derive(Debug)]
pub struct UserError {
    pub exit: Exit,
    pub message: String,
    pub hints: Vec<String>,
}

impl UserError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(Exit::BadInput, message)
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Exit::Refused, message)
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        Self::new(Exit::Runtime, message)
    }

    pub fn unknown_session(id: &str) -> Self {
        Self::new(Exit::UnknownSession, format!("no session '{id}'"))
            .hint("run 'git codex session list' to see the sessions of this repository")
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// `session run` ends with the agent's exit code; nothing more is printed.
#[derive(Debug)]
pub struct AgentExit(pub i32);

impl fmt::Display for AgentExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the agent exited with {}", self.0)
    }
}

impl std::error::Error for AgentExit {}
