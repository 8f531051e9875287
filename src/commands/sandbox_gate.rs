//! `git codex sandbox-gate [--fd N] -- CMD…` (internal): what `session run` starts. It waits
//! until the run is recorded, then runs CMD and stays until it and all it started end (see
//! `sandbox::gate`). `session add` runs each session.setup command under it, without the
//! wait, so that a setup command and all it started end with git-codex.

use crate::cli::SandboxGateArgs;
use crate::error::UserError;
use crate::sandbox::gate;

pub fn run(args: SandboxGateArgs) -> anyhow::Result<()> {
    if let Some(fd) = args.fd {
        let recorded = gate::wait(fd).map_err(|err| {
            UserError::runtime(format!("cannot wait for the run to be recorded: {err}"))
        })?;
        if !recorded {
            return Err(UserError::runtime(
                "git-codex ended before it recorded the run: the agent was not started",
            )
            .hint("run 'git codex session run' again")
            .into());
        }
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(UserError::bad_input("no command to run").into());
    };
    match gate::supervise(program, rest, args.die_with_parent, args.leave) {
        Ok(code) => std::process::exit(code),
        Err(err) => Err(
            UserError::runtime(format!("{program} could not start: {err}"))
                .hint("check the command and PATH")
                .into(),
        ),
    }
}
