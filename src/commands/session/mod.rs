//! `git codex session …`: one file per subcommand.

pub mod add;
pub mod half_landing;
pub mod journal;
pub mod list;
pub mod merge;
pub mod modules;
pub mod moves;
pub mod provision;
pub mod prune;
pub mod remove;
pub mod restore;
pub mod review;
mod review_hook;
pub mod run;
pub mod show;
pub mod stale_locks;
pub mod status;
pub mod touch;
pub mod trash;
mod verdict;

use crate::cli::SessionCommand;

pub fn run(command: SessionCommand) -> anyhow::Result<()> {
    match command {
        SessionCommand::Add(args) => add::run(args),
        SessionCommand::List(args) => list::run(args),
        SessionCommand::Show(args) => show::run(args),
        SessionCommand::Touch(args) => touch::run(args),
        SessionCommand::Remove(args) => remove::run(args),
        SessionCommand::Prune(args) => prune::run(args),
        SessionCommand::Restore(args) => restore::run(args),
        SessionCommand::Review(args) => review::run(args),
        SessionCommand::Run(args) => run::run(args),
        SessionCommand::Merge(args) => merge::run(args),
    }
}
