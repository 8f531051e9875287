//! The person's Unix sockets (SPEC §7a): a read-only mount does not stop `connect()`, so a
//! socket the agent can see is a door to whatever listens there (tmux, the D-Bus session bus,
//! docker, gpg-agent, ssh-agent). The private `/tmp` and `/run` hide most of them and the
//! network namespace hides every abstract one; this finds the rest, the pathname sockets
//! bound anywhere else (`~/.gnupg/S.gpg-agent`, a database's socket under `/var/lib`), so
//! each can be hidden under `/dev/null`.

use std::os::unix::fs::FileTypeExt as _;
use std::path::PathBuf;

use camino::Utf8Path;

use super::confine::under_private_dir;

/// At most this many are hidden (each is a mount); more is a host unlike any we know.
const LIMIT: usize = 4096;

/// The bound pathname sockets of this network namespace (`/proc/net/unix`) that exist as
/// sockets the agent would see: outside the private dirs, or in what is `shown` again of
/// them; never in `skip` (the agent's own writable dirs), and not `proxy` (the way out).
pub fn to_hide(
    skip: &[camino::Utf8PathBuf],
    shown: &[camino::Utf8PathBuf],
    proxy: Option<&Utf8Path>,
    home: Option<&Utf8Path>,
) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = paths_in(&table).collect();
    // Bound by a relative path: where the process that holds it stands (if it has not moved).
    candidates.extend(relative_bound(&table));
    // Renamed or moved since binding: the table names where it was, so look where the person
    // keeps such things.
    if let Some(home) = home {
        walk_for_sockets(
            home.as_std_path(),
            0,
            &mut WALK_BUDGET.clone(),
            &mut candidates,
        );
    }
    let mut found: Vec<PathBuf> = candidates
        .into_iter()
        .filter(|path| {
            let Some(utf8) = Utf8Path::from_path(path) else {
                return true;
            };
            (!under_private_dir(utf8) || shown.iter().any(|dir| utf8.starts_with(dir)))
                && !utf8.starts_with("/proc")
                && !utf8.starts_with("/sys")
                && !utf8.starts_with("/dev")
                && !skip.iter().any(|dir| utf8.starts_with(dir))
                && proxy != Some(utf8)
        })
        .filter(|path| std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()))
        .collect();
    found.sort();
    found.dedup();
    found.truncate(LIMIT);
    found
}

/// How much of the home dir is looked through for sockets: its top levels only, and a
/// bounded number of entries, skipping what holds only build output and packages.
const WALK_BUDGET: Budget = Budget {
    entries: 20_000,
    depth: 4,
};

#[derive(Clone, Copy)]
struct Budget {
    entries: usize,
    depth: usize,
}

const SKIPPED: &[&str] = &[
    "node_modules",
    "target",
    ".git",
    ".cache",
    ".npm",
    ".cargo",
    ".rustup",
    ".local/share/Trash",
];

fn walk_for_sockets(
    dir: &std::path::Path,
    depth: usize,
    budget: &mut Budget,
    out: &mut Vec<PathBuf>,
) {
    if depth > budget.depth {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if budget.entries == 0 {
            return;
        }
        budget.entries -= 1;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_socket() {
            out.push(path);
        } else if kind.is_dir()
            && !SKIPPED
                .iter()
                .any(|s| entry.file_name() == std::ffi::OsStr::new(s))
        {
            walk_for_sockets(&path, depth + 1, budget, out);
        }
    }
}

/// Sockets bound by a relative name (`/proc/net/unix` shows `rel.sock`): found through the
/// processes holding them (`/proc/<pid>/fd` → `socket:[inode]`) and their current dirs.
fn relative_bound(table: &str) -> Vec<PathBuf> {
    let relative: Vec<(String, String)> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (inode, path) = (fields.get(6)?, fields.get(7)?);
            (!path.starts_with('/') && !path.starts_with('@'))
                .then(|| (format!("socket:[{inode}]"), (*path).to_string()))
        })
        .collect();
    if relative.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for pid in crate::procfs::pids() {
        for target in crate::procfs::open_files(pid) {
            if let Some((_, name)) = relative
                .iter()
                .find(|(inode, _)| target.as_os_str() == std::ffi::OsStr::new(inode))
                && let Some(cwd) = crate::procfs::cwd(pid)
            {
                out.push(cwd.join(name));
            }
        }
    }
    out
}

/// The paths of `/proc/net/unix`'s lines: the eighth field, when there is one and it is not
/// abstract (`@…`).
fn paths_in(table: &str) -> impl Iterator<Item = PathBuf> + '_ {
    table.lines().skip(1).filter_map(|line| {
        // Seven fields (the inode padded with spaces), then the path as it is.
        let mut rest = line.trim_start();
        for _ in 0..7 {
            let end = rest.find(' ')?;
            rest = rest[end..].trim_start();
        }
        rest.starts_with('/').then(|| PathBuf::from(rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pathname_sockets_and_skips_abstract_ones() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01   123 /home/p/my sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 12346 @/tmp/.X11-unix/X0\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 12347\n";
        let paths: Vec<_> = paths_in(table).collect();
        assert_eq!(paths, vec![PathBuf::from("/home/p/my sock")]);
    }
}
