//! Long output through the person's pager, as git does: only when stdout is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::process::{Command, Stdio};

/// Prints `text` on stdout, through `pager` (a command line, run by `sh` as git runs
/// `core.pager`) when there is one and stdout is a terminal. `LESS=FRX` and `LV=-c` are set
/// unless the person set them, so a short text leaves less at once, as with git.
pub fn show(text: &str, pager: Option<&str>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let pager = pager.filter(|_| stdout.is_terminal());
    let Some(pager) = pager else {
        let mut out = stdout.lock();
        return ignore_closed(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
    };
    let mut cmd = Command::new("sh");
    cmd.args(["-c", pager]).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        cmd.env("LESS", "FRX");
    }
    if std::env::var_os("LV").is_none() {
        cmd.env("LV", "-c");
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(_) => {
            // A pager that cannot start: the text goes to the terminal itself.
            let mut out = stdout.lock();
            return ignore_closed(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
        }
    };
    if let Some(mut input) = child.stdin.take() {
        // The person may quit the pager before reading all of it.
        let _ = ignore_closed(input.write_all(text.as_bytes()));
    }
    child.wait()?;
    Ok(())
}

/// A reader that went away (`| head`, a pager quit early) is not an error.
fn ignore_closed(result: std::io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
