//! The language of `review.protected` (SPEC §4), in one place: the gate matches branches with
//! [`ProtectedPatterns::matches`], and the reference-transaction shim's shell pre-filter is
//! derived from the same parsed patterns by [`ProtectedPatterns::shell_function`], so the two
//! cannot disagree.
//!
//! A pattern is a branch name (no `refs/heads/`) in which
//! - `*` matches any run of characters, `/` included (`release/*` guards `release/1/fix`);
//! - `**` is a whole component: `**/` matches nothing or any run ending in `/` (`**/main`
//!   guards `main` and `team/main`), a final `/**` anything below;
//! - `?` matches any one character;
//! - `[abc]`, `[a-z0-9._-]` one of the listed characters (ranges of letters or digits),
//!   `[!abc]` any one character not listed.
//!
//! Everything else is literal. What git refuses in branch names (space, `~^:\`, control
//! characters, `..`, `//`, `@{`), `[^…]`, `[:class:]`, `**` glued to other characters and the
//! empty pattern are errors: a pattern is never dropped or guessed at.

use std::fmt;

/// One matching step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters.
    Any,
    /// `?`: any one character.
    One,
    /// A bracket set, its ranges written out.
    Set {
        negated: bool,
        chars: Vec<char>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    /// `**/` written out: the pattern matches when any alternative does.
    alternatives: Vec<Vec<Token>>,
}

/// `review.protected`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedPatterns {
    patterns: Vec<Pattern>,
    /// Every branch is protected: what a configuration that cannot be read falls back to.
    everything: bool,
}

/// Why a pattern is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub why: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid protected pattern \"{}\": {}",
            self.pattern, self.why
        )
    }
}

/// Characters a branch name may hold that the shell pre-filter matches exactly in any locale.
/// A ref name with any other character is always handed to git-codex.
const PLAIN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-";

/// More `**` than this in one pattern is refused (each doubles the alternatives).
const MAX_DOUBLE_STARS: usize = 6;

impl ProtectedPatterns {
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<ProtectedPatterns, PatternError> {
        let patterns = texts
            .iter()
            .map(|t| parse_one(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProtectedPatterns {
            patterns,
            everything: false,
        })
    }

    /// Every branch protected (fail closed).
    pub fn everything() -> ProtectedPatterns {
        ProtectedPatterns {
            patterns: Vec::new(),
            everything: true,
        }
    }

    /// Whether `branch` (a name without `refs/heads/`) is protected.
    pub fn matches(&self, branch: &str) -> bool {
        let name: Vec<char> = branch.chars().collect();
        self.everything
            || self
                .patterns
                .iter()
                .flat_map(|p| &p.alternatives)
                .any(|tokens| matches_tokens(tokens, &name))
    }

    /// The patterns as written.
    /// The patterns as written, owned.
    pub fn to_strings(&self) -> Vec<String> {
        self.texts().map(str::to_string).collect()
    }

    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.text.as_str())
    }

    /// `codex_protected REFNAME` in sh: true for every full ref name whose branch
    /// [`matches`](Self::matches), and for every ref name it cannot judge exactly (any
    /// character outside [`PLAIN`]); it may say "protected" more often, never less.
    pub fn shell_function(&self) -> String {
        // `true` and `false`, not `return N`: a byte changed in the cache can make `return`
        // end the hook with an error, where a `true` or `false` that is no longer one is a
        // command not found (127), which the shim takes as "ask git-codex".
        if self.everything {
            return "codex_protected() { true; }\n".to_string();
        }
        let alternatives: Vec<String> = self
            .patterns
            .iter()
            .flat_map(|p| &p.alternatives)
            .filter_map(|tokens| shell_case(tokens))
            .map(|case| format!("refs/heads/{case}"))
            .collect();
        let mut text = String::from("codex_protected() {\n  case \"$1\" in\n");
        text.push_str(&format!("    *[!{PLAIN}]*) true ;;\n"));
        if !alternatives.is_empty() {
            text.push_str(&format!("    {}) true ;;\n", alternatives.join("|")));
        }
        text.push_str("    *) false ;;\n  esac\n}\n");
        text
    }
}

fn error(pattern: &str, why: impl Into<String>) -> PatternError {
    PatternError {
        pattern: pattern.to_string(),
        why: why.into(),
    }
}

fn parse_one(text: &str) -> Result<Pattern, PatternError> {
    let fail = |why: &str| Err(error(text, why));
    if text.is_empty() {
        return fail("an empty pattern names no branch");
    }
    if text.starts_with("refs/") {
        return fail("give the branch name without 'refs/heads/', e.g. \"main\"");
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() || " ~^:\\".contains(*c))
    {
        return Err(error(text, format!("{c:?} cannot appear in a branch name")));
    }
    for bad in ["..", "//", "@{"] {
        if text.contains(bad) {
            return Err(error(
                text,
                format!("'{bad}' cannot appear in a branch name"),
            ));
        }
    }
    if text.starts_with('/') || text.ends_with('/') {
        return fail("a branch name neither starts nor ends with '/'");
    }
    // Tokens, with `None` standing for a `**/` (or a final `**`) still to be written out.
    let chars: Vec<char> = text.chars().collect();
    let mut parts: Vec<Option<Token>> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let starts = i == 0 || chars[i - 1] == '/';
                let ends = matches!(chars.get(i + 2), None | Some('/'));
                if !starts || !ends {
                    return fail(
                        "'**' must be a whole component, as in \"**/main\" or \"release/**\" ('*' alone already matches across '/')",
                    );
                }
                parts.push(None);
                // The '/' after `**` belongs to it.
                i += if chars.get(i + 2) == Some(&'/') { 3 } else { 2 };
            }
            '*' => {
                parts.push(Some(Token::Any));
                i += 1;
            }
            '?' => {
                parts.push(Some(Token::One));
                i += 1;
            }
            '[' => {
                let (token, next) = parse_set(text, &chars, i)?;
                parts.push(Some(token));
                i = next;
            }
            ']' => return fail("']' without '['"),
            c => {
                parts.push(Some(Token::Literal(c)));
                i += 1;
            }
        }
    }
    let double_stars = parts.iter().filter(|p| p.is_none()).count();
    if double_stars > MAX_DOUBLE_STARS {
        return Err(error(
            text,
            format!("more than {MAX_DOUBLE_STARS} '**' in one pattern"),
        ));
    }
    Ok(Pattern {
        text: text.to_string(),
        alternatives: expand(&parts),
    })
}

/// `[...]` starting at `chars[start]`; returns the set and the index after its `]`.
fn parse_set(text: &str, chars: &[char], start: usize) -> Result<(Token, usize), PatternError> {
    let mut i = start + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    match chars.get(i) {
        Some('^') => return Err(error(text, "write \"[!...]\" for \"any character but\"")),
        Some(':') => {
            return Err(error(
                text,
                "character classes such as [:alpha:] are not supported; list the characters, e.g. [a-z]",
            ));
        }
        _ => {}
    }
    let mut set = Vec::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(error(text, "'[' without ']'"));
        };
        if c == ']' {
            break;
        }
        let in_set = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if !in_set(c) {
            return Err(error(
                text,
                format!("{c:?} in a [...] set: sets hold letters, digits, '.', '_' and '-'"),
            ));
        }
        let range_end = chars.get(i + 2).filter(|_| c != '-');
        match (chars.get(i + 1), range_end) {
            (Some('-'), Some(&end)) if end != ']' => {
                let same_kind = (c.is_ascii_digit() && end.is_ascii_digit())
                    || (c.is_ascii_lowercase() && end.is_ascii_lowercase())
                    || (c.is_ascii_uppercase() && end.is_ascii_uppercase());
                if !same_kind || c > end {
                    return Err(error(
                        text,
                        format!("'{c}-{end}' is not a range such as a-z, A-Z or 0-9"),
                    ));
                }
                set.extend(c..=end);
                i += 3;
            }
            _ => {
                set.push(c);
                i += 1;
            }
        }
    }
    if set.is_empty() {
        return Err(error(text, "an empty [] set matches nothing"));
    }
    set.sort_unstable();
    set.dedup();
    Ok((
        Token::Set {
            negated,
            chars: set,
        },
        i + 1,
    ))
}

/// Each `**` (a `None`) as its two readings: nothing, or `*/` (a final `**`: `*`).
fn expand(parts: &[Option<Token>]) -> Vec<Vec<Token>> {
    let mut out: Vec<Vec<Token>> = vec![Vec::new()];
    for (index, part) in parts.iter().enumerate() {
        match part {
            Some(token) => out.iter_mut().for_each(|a| a.push(token.clone())),
            None if index + 1 == parts.len() => out.iter_mut().for_each(|a| a.push(Token::Any)),
            None => {
                let with: Vec<Vec<Token>> = out
                    .iter()
                    .map(|a| {
                        let mut a = a.clone();
                        a.extend([Token::Any, Token::Literal('/')]);
                        a
                    })
                    .collect();
                out.extend(with);
            }
        }
    }
    out
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::One | Token::Any => true,
        Token::Set { negated, chars } => chars.contains(&c) != *negated,
    }
}

/// Wildcard matching with one backtrack point (the last `*`), which is exact when every
/// other token matches exactly one character.
fn matches_tokens(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, n));
                t += 1;
            }
            Some(token) if matches_one(token, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match star {
                Some((star_t, star_n)) => {
                    t = star_t + 1;
                    n = star_n + 1;
                    star = Some((star_t, star_n + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t.min(tokens.len())..]
        .iter()
        .all(|token| *token == Token::Any)
}

/// One alternative as a sh `case` pattern, for ref names made of [`PLAIN`] characters only
/// (the shim asks git-codex about every other name). `None` when it needs a character
/// outside `PLAIN`, so that it can only match names the shim asks about anyway.
fn shell_case(tokens: &[Token]) -> Option<String> {
    let plain = |c: &char| PLAIN.contains(*c);
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Literal(c) if plain(c) => out.push(*c),
            Token::Literal(_) => return None,
            Token::Any => out.push('*'),
            Token::One => out.push('?'),
            Token::Set { negated, chars } => {
                // Written out (no ranges: their meaning in sh depends on the locale), '-' last.
                let mut listed: Vec<char> = chars.iter().copied().filter(plain).collect();
                if listed.is_empty() {
                    if *negated {
                        out.push('?');
                        continue;
                    }
                    return None;
                }
                listed.sort_by_key(|c| *c == '-');
                out.push('[');
                if *negated {
                    out.push('!');
                }
                out.extend(listed);
                out.push(']');
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protects(patterns: &[&str], branch: &str) -> bool {
        ProtectedPatterns::parse(patterns)
            .expect("valid")
            .matches(branch)
    }

    #[test]
    fn the_language() {
        assert!(protects(&["main"], "main"));
        assert!(!protects(&["main"], "mainline"));
        assert!(protects(&["release/*"], "release/1/fix"));
        assert!(!protects(&["release/*"], "release"));
        assert!(protects(&["**/main"], "main"));
        assert!(protects(&["**/main"], "a/b/main"));
        assert!(!protects(&["**/main"], "amain"));
        assert!(protects(&["a/**/b"], "a/b"));
        assert!(protects(&["a/**/b"], "a/x/y/b"));
        assert!(protects(&["release/**"], "release/x"));
        assert!(protects(&["**"], "anything/at/all"));
        assert!(protects(&["v[0-9].?"], "v1.x"));
        assert!(protects(&["[!a]x"], "/x"));
        assert!(!protects(&["[!a]x"], "ax"));
        assert!(protects(&["r-[a-c-]"], "r--"));
        assert!(protects(&["*-*-*"], "a-b-c"));
        assert!(protects(&["développement"], "développement"));
        assert!(ProtectedPatterns::everything().matches("x"));
    }

    #[test]
    fn errors_name_the_pattern() {
        for bad in [
            "",
            "release**",
            "**x",
            "a***",
            "[",
            "[]",
            "[^a]",
            "[[:alpha:]]",
            "a\\b",
            "a b",
            "refs/heads/main",
            "a..b",
            "/a",
            "a/",
            "a//b",
            "[z-a]",
            "[a-Z]",
            "[/]",
            "x]",
            "a@{1}",
            "*/**/**/**/**/**/**/**",
        ] {
            let err = ProtectedPatterns::parse(&[bad]).expect_err(bad);
            assert_eq!(err.pattern, bad);
        }
    }
}
