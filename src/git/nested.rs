//! Nested repositories in a session worktree: any directory below its root with a `.git` of
//! its own (a dir, or a file naming a git dir). git run inside one reads that repository's
//! config, which the agent wrote, so the review names each one.

use camino::Utf8Path;

/// The nested repositories under `worktree`, as `dir/` paths relative to it, sorted. Links
/// are never followed and a nested repository's own contents are not searched.
pub fn nested_repositories(worktree: &Utf8Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![(worktree.as_std_path().to_path_buf(), String::new())];
    while let Some((dir, relative)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() || entry.file_name() == ".git" {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let child = format!("{relative}{name}/");
            if std::fs::symlink_metadata(path.join(".git")).is_ok() {
                found.push(child);
            } else {
                pending.push((path, child));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dirs_with_a_git_of_their_own_without_following_links() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Utf8Path::from_path(dir.path()).expect("utf-8");
        for made in ["a/b/.git", "c/.git/d/.git", "e"] {
            fs_err::create_dir_all(root.join(made)).expect("dir");
        }
        fs_err::create_dir_all(root.join(".git")).expect("top .git");
        fs_err::write(root.join("e/.git"), "gitdir: elsewhere\n").expect("file");
        std::os::unix::fs::symlink(root.join("a"), root.join("link")).expect("link");
        assert_eq!(nested_repositories(root), ["a/b/", "c/", "e/"]);
    }
}
