//! git-codex: parse, dispatch, and map the error to an exit code. Nothing else.

mod cli;
mod commands;
mod complete;
mod config;
mod context;
mod dirfiles;
mod error;
mod gate;
mod git;
mod hooks;
mod lifetime;
mod output;
mod parallel;
mod procfs;
mod review;
mod sandbox;
mod state;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};
use error::{Exit, UserError};

fn main() -> ExitCode {
    complete::answer_if_asked();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                Exit::BadInput as u8
            } else {
                0
            });
        }
    };
    output::init_color(cli.color);
    let result = match cli.command {
        Command::Init => commands::init::run(),
        Command::Session(command) => commands::session::run(command),
        Command::Config(command) => commands::config::run(command),
        Command::Verify(args) => commands::verify::run(args),
        Command::Hooks(command) => commands::hooks::run(command),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
        Command::Hook(args) => commands::hook::run(args),
        Command::SandboxExec(args) => commands::sandbox_exec::run(args),
        Command::SandboxGate(args) => commands::sandbox_gate::run(args),
        Command::SandboxProxy(args) => commands::sandbox_proxy::run(args),
    };
    match result {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(err) => match err.downcast_ref::<error::AgentExit>() {
            Some(agent) => ExitCode::from(u8::try_from(agent.0).unwrap_or(1)),
            None => ExitCode::from(report(&err) as u8),
        },
    }
}

/// Prints the error in git's style and decides the exit code: a [`UserError`] anywhere in the
/// chain decides it; anything else is a runtime error (1).
fn report(err: &anyhow::Error) -> Exit {
    match err.chain().find_map(|e| e.downcast_ref::<UserError>()) {
        Some(user) => {
            let mut message = user.message.clone();
            // Context added above the user error explains where it happened.
            let outer: Vec<String> = err
                .chain()
                .take_while(|e| e.downcast_ref::<UserError>().is_none())
                .map(|e| e.to_string())
                .collect();
            if !outer.is_empty() {
                message = format!("{}: {message}", outer.join(": "));
            }
            output::error(&message);
            for hint in &user.hints {
                output::hint(hint);
            }
            user.exit
        }
        None => {
            output::error(&format!("{err:#}"));
            Exit::Runtime
        }
    }
}
