//! Messages to stderr in git's style (`error:`, `warning:`, `hint:`), colour as the user
//! asked (`--color`, `NO_COLOR`). Data goes to stdout, never through here. Whatever is
//! printed here passes [`escape::text`] last: no control character reaches the terminal raw,
//! even from a message that forgot to quote a name.

pub mod escape;
pub mod pager;

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
    anstream::eprintln!("{} {}", "error:".red().bold(), escape::text(message));
}

pub fn warning(message: &str) {
    anstream::eprintln!("{} {}", "warning:".yellow().bold(), escape::text(message));
}

pub fn hint(message: &str) {
    anstream::eprintln!("{} {}", "hint:".cyan(), escape::text(message));
}

/// A plain progress or result note on stderr ("Removed session 'x'").
pub fn note(message: &str) {
    anstream::eprintln!("{}", escape::text(message));
}

/// Data on stdout, coloured only when stdout allows it.
pub fn data(line: &str) {
    anstream::println!("{}", escape::text(line));
}

/// Pretty JSON with the stable top-level `"schema": 1` on stdout.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = escape::json_pretty(value)?;
    anstream::println!("{text}");
    Ok(())
}
