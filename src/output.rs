//! Messages to stderr in git's style (`error:`, `warning:`, `hint:`), colour as the user
//! asked (`--color`, `NO_COLOR`). Data goes to stdout, never through here.

use owo_colors::OwoColorize;

use crate::cli::ColorWhen;

pub fn init_color(when: ColorWhen) {
    let choice = match when {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
}

pub fn error(message: &str) {
    anstream::eprintln!("{} {message}", "error:".red().bold());
}

pub fn warning(message: &str) {
    anstream::eprintln!("{} {message}", "warning:".yellow().bold());
}

pub fn hint(message: &str) {
    anstream::eprintln!("{} {message}", "hint:".cyan());
}

/// A plain progress or result note on stderr ("Removed session 'x'").
pub fn note(message: &str) {
    anstream::eprintln!("{message}");
}

/// Data on stdout, coloured only when stdout allows it.
pub fn data(line: &str) {
    anstream::println!("{line}");
}

/// Pretty JSON with the stable top-level `"schema": 1` on stdout.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    anstream::println!("{text}");
    Ok(())
}
