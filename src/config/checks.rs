//! The rules for values that name paths, branches and variables: one rule for `config set`,
//! `config validate`, every load, and the command that uses the value, so that a value
//! accepted once is never refused later.

/// The worktree base spellings that are or contain any repository's main worktree, or lie in
/// its `.git`, whatever the repository: `.`, `./`, `..`, `a/../..`, `/`, `.git/x`. The rest
/// (absolute paths, `~`, symlinks) is checked against the repository when one is at hand.
pub(super) fn check_base_lexically(base: &str) -> Result<(), String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let refused = if base.starts_with('/') {
        parts.is_empty()
    } else if base == "~" || base.starts_with("~/") {
        false
    } else {
        parts.iter().all(|p| *p == "..") || parts.first() == Some(&".git")
    };
    if refused {
        Err(format!(
            "expected a directory of its own for session worktrees, found \"{base}\": it is or contains the repository (or lies in its .git), and removing sessions there could delete it"
        ))
    } else {
        Ok(())
    }
}

/// A prefix that makes `refs/heads/<prefix><id>` a branch git accepts for every session id
/// (git's check-ref-format rules; an id starts with a letter or digit and never ends in `.`
/// or `.lock`), and that names a branch rather than a ref: `refs/heads/` would make
/// `refs/heads/refs/heads/<id>`, and `heads/<id>` reads as `refs/heads/<id>` to git.
pub(super) fn check_branch_prefix(prefix: &str) -> Result<(), String> {
    let parts: Vec<&str> = prefix.split('/').collect();
    let (whole, last) = parts.split_at(parts.len().saturating_sub(1));
    let bad_char = |c: char| c.is_ascii_control() || " ~^:?*[\\".contains(c);
    let bad = prefix.is_empty()
        || prefix.starts_with('-')
        || prefix.contains("..")
        || prefix.contains("@{")
        || prefix.chars().any(bad_char)
        // Each component before the id: not empty (`/x`, `a//b`), no leading `.`, no `.lock`.
        || whole
            .iter()
            .any(|p| p.is_empty() || p.starts_with('.') || p.ends_with(".lock"))
        || last.iter().any(|p| p.starts_with('.'))
        || whole
            .first()
            .is_some_and(|first| ["refs", "heads", "tags", "remotes"].contains(first));
    if bad {
        Err(format!(
            "expected a branch name prefix such as \"codex/\" (no \"refs/\", \"heads/\", leading '-' or '.', \"..\", \"//\", \".lock/\", spaces or ~^:?*[\\), found \"{prefix}\""
        ))
    } else {
        Ok(())
    }
}

/// A `session.copy_files` glob: relative, inside the main worktree, and a glob.
pub fn check_copy_pattern(pattern: &str) -> Result<(), String> {
    if pattern.starts_with('/') || pattern.split('/').any(|part| part == "..") {
        return Err(format!(
            "pattern '{pattern}' must be relative and stay inside the main worktree"
        ));
    }
    glob::Pattern::new(pattern)
        .map(|_| ())
        .map_err(|err| format!("bad glob '{pattern}': {err}"))
}

/// Variables git-codex sets for the agent itself, or that the agent's tools cannot do
/// without: `sandbox.env_var` naming one would overwrite it with "disabled".
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "SHELL",
    "TMPDIR",
    "TMP",
    "TEMP",
    "CODEX_SESSION_ID",
    "CODEX_ALLOWED_DOMAINS",
    "CODEX_LOG_DIR",
    "CODEX_PORT",
    "CODEX_WORKTREE",
];

/// `sandbox.env_var`: a variable name, and none the agent's world depends on.
pub(super) fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let well_formed = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(format!(
            "expected an environment variable name (letters, digits, '_'), found \"{name}\""
        ));
    }
    let upper = name.to_ascii_uppercase();
    if RESERVED_ENV.contains(&upper.as_str())
        || ["GIT_", "LD_"].iter().any(|p| upper.starts_with(p))
        || upper.ends_with("_PROXY")
    {
        return Err(format!(
            "\"{name}\" is a variable the agent needs or git-codex sets itself; expected a name of its own such as \"CODEX_NETWORK\""
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_prefixes_are_those_git_takes_for_a_branch() {
        for good in [
            "codex/",
            "agents/codex-",
            "team.x/",
            "ai_",
            "a.",
            "x.lock",
            "@",
        ] {
            assert_eq!(check_branch_prefix(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "refs/heads/",
            "refs/",
            "heads/",
            "tags/x-",
            "-x/",
            "a..b/",
            "a/.hidden/",
            ".x",
            "a/.",
            "x.lock/",
            "a//b/",
            "/a",
            "a b/",
            "a@{b/",
            "a~",
            "a\\b",
        ] {
            assert!(check_branch_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn copy_patterns_stay_inside() {
        assert_eq!(check_copy_pattern(".env"), Ok(()));
        assert_eq!(check_copy_pattern("config/*.local"), Ok(()));
        for bad in ["../x", "a/../../x", "/etc/passwd", "[unclosed"] {
            assert!(check_copy_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_of_the_agents_world_are_refused() {
        assert_eq!(check_env_name("CODEX_NETWORK"), Ok(()));
        assert_eq!(check_env_name("MY_NET"), Ok(()));
        for bad in [
            "PATH",
            "home",
            "GIT_DIR",
            "LD_PRELOAD",
            "HTTPS_PROXY",
            "CODEX_PORT",
            "1X",
            "",
        ] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }
}
