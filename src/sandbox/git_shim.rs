//! The `git` first on a confined agent's PATH (`git-shim.sh`): the next git on PATH,
//! unchanged, but a `git stash` that fails because `refs/stash` is shared (the agent may not
//! write the repository's refs) says so and what to do instead. git alone says only "Cannot
//! save the current status", and no hook of git's runs before that failure.

use camino::{Utf8Path, Utf8PathBuf};

const SHIM: &str = include_str!("git-shim.sh");

/// Writes the shim into `bin` (git-codex's, never the agent's to write) unless it is there
/// already; returns the PATH for the agent: `bin` first, then `path`. `None` when `bin`
/// cannot stand in a PATH (a `:` in it).
pub fn install(bin: &Utf8Path, path: Option<&str>) -> anyhow::Result<Option<String>> {
    if bin.as_str().contains(':') {
        return Ok(None);
    }
    let shim: Utf8PathBuf = bin.join("git");
    let current = crate::state::read_regular_file(&shim)?;
    if current.as_deref() != Some(SHIM.as_bytes()) || !executable(&shim) {
        // Executable before it takes the name: an agent of another session may run it now.
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::create_dir_all(bin)?;
        let tmp = bin.join(format!(".git.tmp{}", std::process::id()));
        let mut file = crate::state::create_fresh(&tmp)?;
        file.write_all(SHIM.as_bytes())?;
        file.sync_all()?;
        fs_err::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        fs_err::rename(&tmp, &shim)?;
    }
    Ok(Some(match path {
        Some(path) if !path.is_empty() => format!("{bin}:{path}"),
        _ => bin.to_string(),
    }))
}

fn executable(path: &Utf8Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
