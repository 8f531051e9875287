//! Session ids (SPEC §3): 1–64 of ASCII letters, digits, `.`, `_`, `-`; starting with a letter or
//! digit; no `..`; not ending in `.` or `.lock`. Checked before anything is touched.

use std::fmt;

use crate::error::UserError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(text: &str) -> Result<SessionId, UserError> {
        match why_invalid(text) {
            None => Ok(SessionId(text.to_string())),
            Some(why) => Err(UserError::bad_input(format!(
                "invalid session id '{}': {why}",
                text.escape_debug()
            ))
            .hint("use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. 'fix-login'")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn why_invalid(text: &str) -> Option<&'static str> {
    let first = text.chars().next()?;
    if text.len() > 64 || text.chars().count() > 64 {
        return Some("longer than 64 characters");
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Some("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if !first.is_ascii_alphanumeric() {
        return Some("must start with a letter or digit");
    }
    if text.contains("..") {
        return Some("must not contain '..'");
    }
    if text.ends_with('.') || text.ends_with(".lock") {
        return Some("must not end in '.' or '.lock'");
    }
    None
}

/// Parses an id; the empty string gets its own message.
pub fn parse(text: &str) -> Result<SessionId, UserError> {
    if text.is_empty() {
        return Err(UserError::bad_input("invalid session id '': it is empty")
            .hint("give the session a name such as 'fix-login'"));
    }
    SessionId::parse(text)
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_ids() {
        for good in ["a", "fix-login", "A1", "v1.2_x", &"x".repeat(64)] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_bad_ids() {
        let long = "x".repeat(65);
        for bad in [
            "", "../x", "-rf", "a b", "x.lock", ".hidden", "a..b", "x.", "é", "a/b", &long,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
