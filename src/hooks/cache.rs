//! The copy of the protected patterns and session branches that the reference-transaction
//! shim sources (`<state>/hooks-cache.sh`), so that most ref updates never start git-codex.

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::Config;
use crate::state::atomic_write;

use super::sh_quote;

/// Rewrites the cache from the config files alone: an environment override is one command's
/// (the person's own bypass), and the cache serves every later command. The files' text is
/// read first, so a file changed meanwhile only makes the shim ask git-codex again.
pub fn refresh_cache(
    state: &crate::state::StateDir,
    records: &[crate::state::SessionBrief],
) -> anyhow::Result<()> {
    let texts = ConfigTexts::read(&state.config_file());
    let settings = crate::config::Settings::load_files(&state.config_file())?;
    write_cache(&state.root, &settings.config(), &texts, records)
}

/// The config files' text, as the shim reads it back (each line and a newline) to tell
/// whether the cache still holds: an edit that keeps the file's time (`cp -p`, `touch -r`)
/// is an edit all the same.
pub struct ConfigTexts {
    repo: String,
    user: String,
}

impl ConfigTexts {
    fn read(repo_file: &Utf8Path) -> ConfigTexts {
        let as_shim_reads = |path: Option<Utf8PathBuf>| -> String {
            let Some(path) = path else {
                return String::new();
            };
            match fs_err::read_to_string(&path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
                // Text the shell cannot hold as it is (a NUL byte): a value no file's text
                // reads back as (that always ends in a newline), so the shim always asks.
                Ok(text) if !text.contains('\0') => text
                    .split_terminator('\n')
                    .map(|l| format!("{l}\n"))
                    .collect(),
                _ => "unreadable-text".to_string(),
            }
        };
        ConfigTexts {
            repo: as_shim_reads(Some(repo_file.to_owned())),
            user: as_shim_reads(crate::config::user_file()),
        }
    }
}

/// The copy of the protected patterns the reference-transaction shim sources, so that
/// updates of other refs never start git-codex. Rewritten whenever config is loaded by a
/// hook with a newer config file. Its `codex_protected` comes from the same parsed patterns
/// as the gate's (src/config/protected.rs) and may only say "protected" more often. It also
/// names the user config file it was made with: under another one, the shim asks git-codex.
pub fn write_cache(
    state_dir: &Utf8Path,
    config: &Config,
    texts: &ConfigTexts,
    records: &[crate::state::SessionBrief],
) -> anyhow::Result<()> {
    let gate_on = config.review.require_approval && config.gate_reference_transaction;
    let mut text =
        String::from("# written by git-codex from the protected patterns; do not edit\n");
    text.push_str(&format!("codex_cache_version={CACHE_VERSION}\n"));
    text.push_str(&format!("codex_gate={}\n", u8::from(gate_on)));
    let user = crate::config::user_file()
        .map(|p| p.to_string())
        .unwrap_or_default();
    text.push_str(&format!("codex_cache_user='{}'\n", sh_quote(&user)));
    text.push_str(&format!(
        "codex_cache_repo_text='{}'\n",
        sh_quote(&texts.repo)
    ));
    text.push_str(&format!(
        "codex_cache_user_text='{}'\n",
        sh_quote(&texts.user)
    ));
    text.push_str(&session_ref_function(config, records));
    text.push_str(&config.review.protected.shell_function());
    // Last: a cache cut short anywhere lacks it, and the shim asks git-codex.
    text.push_str("codex_cache_whole=1\n");
    let path = state_dir.join("hooks-cache.sh");
    let sum_path = state_dir.join(SUM_FILE);
    let sum = format!("{}\n", cksum(text.as_bytes()));
    // Hooks refresh it on every run: unchanged, it is not written (nor synced) again.
    if fs_err::read(&path).is_ok_and(|old| old == text.as_bytes())
        && fs_err::read(&sum_path).is_ok_and(|old| old == sum.as_bytes())
    {
        return Ok(());
    }
    // The sum last: a shim reading between the two finds them apart and asks git-codex.
    atomic_write(&path, text.as_bytes())?;
    atomic_write(&sum_path, sum.as_bytes())
}

/// What POSIX `cksum` prints for the cache (`CRC SIZE`), kept beside it: before it decides
/// not to ask git-codex, the shim sums the cache it sourced with `cksum` and compares, so a
/// cache with any byte changed or cut is not trusted.
pub const SUM_FILE: &str = "hooks-cache.sum";

/// POSIX `cksum`'s CRC (polynomial 0x04C11DB7, most significant bit first, the length's bytes
/// after the data, complemented) and the byte count, as it prints them for standard input.
fn cksum(data: &[u8]) -> String {
    fn feed(crc: u32, byte: u8) -> u32 {
        let mut crc = crc ^ (u32::from(byte) << 24);
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
        crc
    }
    let mut crc = data.iter().fold(0u32, |crc, b| feed(crc, *b));
    let mut len = data.len();
    while len > 0 {
        crc = feed(crc, (len & 0xff) as u8);
        len >>= 8;
    }
    format!("{} {}", !crc, data.len())
}

/// What the shim expects of the cache; another version makes it ask git-codex (which writes
/// a new one).
const CACHE_VERSION: u32 = 5;

/// `codex_session_ref REF`: whether REF is, or may be, a session's branch (under the branch
/// prefix, or named by a record outside it, say after the prefix changed), whose moves the
/// ledger keeps. Sessions under the prefix add nothing, so adding one leaves the cache as it is.
fn session_ref_function(config: &Config, records: &[crate::state::SessionBrief]) -> String {
    let mut patterns = vec![format!(
        "refs/heads/{}*",
        literal_pattern(&config.branch_prefix)
    )];
    for record in records {
        if !record.branch.starts_with(&config.branch_prefix) {
            patterns.push(format!("refs/heads/{}", literal_pattern(&record.branch)));
        }
    }
    if patterns
        .iter()
        .any(|p| p.chars().any(|c| c.is_control() || c == '\n'))
    {
        return "codex_session_ref() { true; }\n".to_string();
    }
    // `true` and `false`, as in `codex_protected` (see `shell_function`).
    format!(
        "codex_session_ref() {{\n  case \"$1\" in\n    {}) true ;;\n    *) false ;;\n  esac\n}}\n",
        patterns.join("|")
    )
}

/// Text as a sh `case` pattern that matches it literally.
fn literal_pattern(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sum_is_what_posix_cksum_prints() {
        // As `printf ... | cksum` prints them (GNU coreutils).
        assert_eq!(super::cksum(b""), "4294967295 0");
        assert_eq!(super::cksum(b"hello\n"), "3015617425 6");
        assert_eq!(super::cksum(b"a"), "1220704766 1");
    }
}
