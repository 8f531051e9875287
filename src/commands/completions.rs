//! `git codex completions <shell>`: the completion script, on stdout.

use crate::cli::CompletionsArgs;
use crate::complete;

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    print!("{}", complete::script(args.shell.name())?);
    Ok(())
}
