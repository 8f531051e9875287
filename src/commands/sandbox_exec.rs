//! `git codex sandbox-exec -- CMD…` (internal): run by `unshare --net` as the first process of
//! a new network namespace, brings loopback up and then becomes the agent.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use crate::cli::SandboxExecArgs;
use crate::error::UserError;
use crate::sandbox::netns;

pub fn run(args: SandboxExecArgs) -> anyhow::Result<()> {
    netns::loopback_up()
        .map_err(|err| UserError::runtime(format!("cannot bring loopback up: {err}")))?;
    let Some((program, rest)) = args.command.split_first() else {
        return Err(UserError::bad_input("no command to run").into());
    };
    let err = Command::new(program).args(rest).exec();
    Err(UserError::new(
        crate::error::Exit::Runtime,
        format!("cannot start {program}: {err}"),
    )
    .into())
}
