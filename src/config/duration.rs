//! Durations as users write them: `90m`, `2h 30m`, `2d`, `PT1H`, and `0`/`never` for "no expiry".

use std::fmt;

/// A time to live: a number of seconds, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Never,
    Seconds(u64),
}

impl Ttl {
    /// Parses a duration. `0` and `never` mean no expiry, in every layer (file, environment,
    /// flag). A zero with a unit (`0s`, `0m`, `PT0S`, `500ms`) reads like "at once", which is
    /// not what it would do: it is refused, as a negative duration is.
    pub fn parse(text: &str) -> Result<Ttl, String> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("never") || trimmed == "0" {
            return Ok(Ttl::Never);
        }
        match parse_seconds(trimmed)? {
            0 => Err(format!(
                "expected a duration of at least one second, or \"never\" (also written \"0\") for no limit, found \"{trimmed}\""
            )),
            secs => Ok(Ttl::Seconds(secs)),
        }
    }

    pub fn seconds(self) -> Option<u64> {
        match self {
            Ttl::Never => None,
            Ttl::Seconds(s) => Some(s),
        }
    }
}

/// Parses a positive duration in the friendly (`2h 30m`, `2d`) or ISO 8601 (`PT1H`) form.
/// Days count as 24 hours; months and years are refused as ambiguous.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let expected = || {
        format!(
            "expected a duration such as \"90m\", \"2h 30m\", \"2d\", \"PT1H\" or \"never\", found \"{text}\""
        )
    };
    if text.is_empty() {
        return Err(expected());
    }
    // A bare number would be ambiguous (seconds? minutes?): require a unit.
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(expected());
    }
    let span: jiff::Span = text.parse().map_err(|_| expected())?;
    let relative = jiff::SpanRelativeTo::days_are_24_hours();
    let duration = span.to_duration(relative).map_err(|_| expected())?;
    if duration.is_negative() {
        return Err(format!("expected a positive duration, found \"{text}\""));
    }
    u64::try_from(duration.as_secs()).map_err(|_| expected())
}

/// Formats seconds compactly as `1d 2h`, `1h 30m`, `45s`: the two largest units.
pub fn format_seconds(total: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    if total == 0 {
        return "0s".to_string();
    }
    let mut rest = total;
    let mut parts = Vec::new();
    for (size, name) in UNITS {
        if rest >= size {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ttl::Never => f.write_str("never"),
            Ttl::Seconds(s) => f.write_str(&format_seconds(*s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_the_spec_names() {
        assert_eq!(Ttl::parse("90m"), Ok(Ttl::Seconds(5400)));
        assert_eq!(Ttl::parse("2h 30m"), Ok(Ttl::Seconds(9000)));
        assert_eq!(Ttl::parse("2d"), Ok(Ttl::Seconds(172_800)));
        assert_eq!(Ttl::parse("PT1H"), Ok(Ttl::Seconds(3600)));
        assert_eq!(Ttl::parse("never"), Ok(Ttl::Never));
        assert_eq!(Ttl::parse("0"), Ok(Ttl::Never));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "soon",
            "",
            "10",
            "-5m",
            "1 fortnight",
            "2 months",
            "0s",
            "0m",
            "PT0S",
            "500ms",
            "-0h",
        ] {
            assert!(Ttl::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn formats_two_largest_units() {
        assert_eq!(format_seconds(5400), "1h 30m");
        assert_eq!(format_seconds(90_061), "1d 1h");
        assert_eq!(format_seconds(45), "45s");
    }
}
