//! Repository formats git-codex cannot read yet (SHA-256 objects, reftable refs): named as
//! such, read from the repository's own config file as git reads it.

use camino::Utf8Path;
use camino::Utf8PathBuf;

use crate::error::UserError;

/// The config file of the repository holding `cwd` when it sets `objectFormat = sha256`
/// (gix is built for SHA-1 here, so it cannot open one): read as text, the `.git` dir or a
/// worktree's `.git` file followed to its common dir.
pub(super) fn sha256_repository(cwd: &Utf8Path) -> Option<Utf8PathBuf> {
    let dot_git = cwd
        .ancestors()
        .map(|d| d.join(".git"))
        .find(|p| p.exists())?;
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let admin = Utf8PathBuf::from(text.trim_end().strip_prefix("gitdir: ")?);
        match std::fs::read_to_string(admin.join("commondir")) {
            Ok(common) => admin.join(common.trim_end()),
            Err(_) => admin,
        }
    };
    let config = git_dir.join("config");
    let text = std::fs::read_to_string(&config).ok()?;
    repository_extension(&text, "objectformat")
        .is_some_and(|format| format.eq_ignore_ascii_case("sha256"))
        .then_some(config)
}

/// gix reads refs from files only: in a reftable repository (`extensions.refStorage`) it
/// sees no branch at all, and the gate would pass what it cannot see. Refused, as SHA-256 is.
/// Read as git reads it, from the common dir's own config file alone: a worktree's config
/// (which its agent may write) or an included file cannot say "files" for git-codex while
/// git goes on with reftable.
pub(super) fn refuse_reftable(repo: &gix::Repository) -> Result<(), UserError> {
    let config = repo.common_dir().join("config");
    let text = std::fs::read(&config).unwrap_or_default();
    match repository_extension(&String::from_utf8_lossy(&text), "refstorage") {
        Some(format) if !format.eq_ignore_ascii_case("files") => Err(UserError::bad_input(format!(
            "this is a {format} repository ({} sets extensions.refStorage = {format}), which git-codex does not support yet",
            config.display()
        ))
        .hint("git-codex reads repositories whose refs are files only for now (its hooks here refuse every branch update until then); convert it with 'git refs migrate --ref-format=files' (git 2.46+), or use a clone made with --ref-format=files")),
        _ => Ok(()),
    }
}

/// The last value of `extensions.<key>` in a config file's text (section and key names
/// case-insensitive, the value unquoted and trimmed).
fn repository_extension(text: &str, key: &str) -> Option<String> {
    let mut in_extensions = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or_default().trim();
            in_extensions = name.eq_ignore_ascii_case("extensions");
            continue;
        }
        if !in_extensions {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, "true"));
        if name.trim().eq_ignore_ascii_case(key) {
            let value = value.split(['#', ';']).next().unwrap_or_default().trim();
            found = Some(value.trim_matches('"').to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_read_from_their_section_only() {
        let text = "[core]\n\trefStorage = reftable\n[Extensions]\n\tRefStorage = \"reftable\" # note\n\tobjectformat=sha256\n";
        assert_eq!(
            repository_extension(text, "refstorage").as_deref(),
            Some("reftable")
        );
        assert_eq!(
            repository_extension(text, "objectformat").as_deref(),
            Some("sha256")
        );
        assert_eq!(
            repository_extension("[core]\nrefstorage = reftable\n", "refstorage"),
            None
        );
    }
}
