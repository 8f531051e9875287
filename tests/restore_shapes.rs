//! `session restore` from a snapshot alone (the trash emptied) brings back exactly the
//! snapshot's tree when the agent changed what a path is: a directory that became a file or a
//! link, a link or a file that became a directory, links retargeted, whole trees deleted. Byte
//! for byte, and never by writing through a link.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{TestEnv, each_git, run, write_file};

/// What a path under a worktree is: kind, bytes (a link's target), mode.
type Entry = (String, &'static str, Vec<u8>, u32);

/// Every entry under `dir` (directories too, so that a leftover empty one shows), except `.git`
/// and the metadata git-codex rewrites for each incarnation of a session.
fn shapes(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n == ".git" || n == ".codex-session.json")
        {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.push((rel, "link", target.into_os_string().into_encoded_bytes(), 0));
        } else if meta.is_dir() {
            out.push((rel, "dir", Vec::new(), 0));
            walk(root, &path, out);
        } else {
            out.push((rel, "file", std::fs::read(&path).unwrap(), mode));
        }
    }
}

fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

/// Removes the session, empties the trash (as `session.trash_retention` would), restores it.
fn remove_and_restore_from_the_snapshot(t: &TestEnv, id: &str) {
    let (code, _, err) = run(t.codex(&["session", "remove", id]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("refs/codex/snapshots/{id}")), "{err}");
    std::fs::remove_dir_all(t.state_dir().join("trash")).unwrap();
    let (code, _, err) = run(t.codex(&["session", "restore", id]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("with its uncommitted work"), "{err}");
}

#[test]
fn a_snapshot_restores_every_change_of_shape_exactly() {
    each_git(|t| {
        let outside = t.root().join("outside");
        write_file(&outside.join("a.txt"), "the person's file\n");
        t.write("utils/helpers.py", "def helper(): pass\n");
        t.write("utils/more/deep.py", "deep\n");
        t.write("lib/a.txt", "lib\n");
        t.write("conf", "a file\n");
        t.write("gone/deep/x.txt", "to be deleted\n");
        t.write("keep", "kept\n");
        t.write("tool", "#!/bin/sh\n");
        t.write("plain", "plain\n");
        link(&outside, &t.repo.join("alias"));
        link(Path::new("keep"), &t.repo.join("was_link"));
        link(Path::new("keep"), &t.repo.join("retarget"));
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "shapes"]);
        let outside_before = shapes(&outside);

        let wt = t.add("s1");
        let at = |p: &str| wt.join(p);
        // dir -> file
        std::fs::remove_dir_all(at("utils")).unwrap();
        write_file(&at("utils"), "def helper(): ...\n");
        // dir -> link to a directory of the person's that has a file of the same name
        std::fs::remove_dir_all(at("lib")).unwrap();
        link(&outside, &at("lib"));
        // link -> dir: its file must land in the worktree, not through the old link
        std::fs::remove_file(at("alias")).unwrap();
        write_file(&at("alias/a.txt"), "the agent's file\n");
        // file -> dir
        std::fs::remove_file(at("conf")).unwrap();
        write_file(&at("conf/main.toml"), "x = 1\n");
        // a whole tree deleted
        std::fs::remove_dir_all(at("gone")).unwrap();
        // file -> link, link -> file, link retargeted
        std::fs::remove_file(at("plain")).unwrap();
        link(Path::new("keep"), &at("plain"));
        std::fs::remove_file(at("was_link")).unwrap();
        write_file(&at("was_link"), "now a file\n");
        std::fs::remove_file(at("retarget")).unwrap();
        link(Path::new("README.md"), &at("retarget"));
        // plain edits, a mode, a new deep file
        write_file(&at("keep"), "kept\nprecious edit\n");
        std::fs::set_permissions(at("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        write_file(&at("new/deeper/file.txt"), "brand new\n");
        let before = shapes(&wt);
        let status_before = t.git_in(&wt, &["status", "--porcelain"]);

        remove_and_restore_from_the_snapshot(t, "s1");
        assert_eq!(shapes(&wt), before, "the snapshot's tree, shape for shape");
        assert_eq!(t.git_in(&wt, &["status", "--porcelain"]), status_before);
        assert_eq!(
            shapes(&outside),
            outside_before,
            "nothing written through a link"
        );
    });
}
