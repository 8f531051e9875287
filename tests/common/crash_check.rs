//! What must hold after git-codex is killed anywhere (issue 16), reusable by any test:
//! every file of the session worktree is in the worktree, the trash or the newest snapshot,
//! byte for byte with its mode; no commit is unreachable. The records, `git worktree list` and
//! the disk are `crash_state.rs`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::common::TestEnv;

/// One file of the worktree as it was.
#[derive(Debug, Clone)]
pub struct File {
    pub bytes: Vec<u8>,
    pub exec: bool,
    pub symlink: bool,
    pub ignored: bool,
    /// Its blob id, to find it in a snapshot's tree.
    pub blob: String,
}

impl File {
    fn mode(&self) -> &'static str {
        match (self.symlink, self.exec) {
            (true, _) => "120000",
            (false, true) => "100755",
            (false, false) => "100644",
        }
    }
}

/// The state before the command: session `id`'s files, every reachable commit, and the
/// leftovers (locks, merge state, main worktree status) already there.
#[derive(Debug, Clone)]
pub struct Before {
    pub id: String,
    pub files: BTreeMap<String, File>,
    pub commits: BTreeSet<String>,
    pub leftovers: BTreeSet<String>,
}

/// Captures session `id`'s worktree `wt` and the repository.
pub fn capture(t: &TestEnv, id: &str, wt: &Path) -> Before {
    let mut paths = Vec::new();
    walk(wt, wt, &mut paths);
    let ignored: BTreeSet<String> = t
        .git_in(
            wt,
            &["ls-files", "-o", "-i", "--exclude-standard", "--directory"],
        )
        .lines()
        .map(str::to_string)
        .collect();
    let is_ignored = |p: &str| {
        ignored
            .iter()
            .any(|i| p == i || (i.ends_with('/') && p.starts_with(i)))
    };
    let mut files = BTreeMap::new();
    for rel in paths {
        let path = wt.join(&rel);
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let symlink = meta.file_type().is_symlink();
        let bytes = if symlink {
            std::fs::read_link(&path)
                .expect("link")
                .into_os_string()
                .into_encoded_bytes()
        } else {
            std::fs::read(&path).expect("read")
        };
        let blob = blob_id(&bytes);
        let file = File {
            exec: !symlink && meta.permissions().mode() & 0o111 != 0,
            symlink,
            ignored: is_ignored(&rel),
            blob,
            bytes,
        };
        files.insert(rel, file);
    }
    Before {
        id: id.to_string(),
        files,
        commits: reachable(t).expect("rev-list --all before the command"),
        leftovers: crate::crash_state::leftovers(t),
    }
}

/// Git's blob id of `bytes` (sha1 of the header and the bytes), without running git per file.
fn blob_id(bytes: &[u8]) -> String {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes)
        .expect("sha1")
        .to_string()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        // The worktree's `.git` file, and the session file git-codex writes anew on restore.
        if rel == ".git" || rel == ".codex-session.json" {
            continue;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(root, &path, out),
            Ok(_) => out.push(rel),
            Err(_) => {}
        }
    }
}

/// Every commit reachable from any ref (branches, refs/codex/*, every worktree's HEAD).
/// When that fails (a worktree whose HEAD names a missing object makes `--all` fail, and git's
/// gc with it), the error, and the commits the refs alone reach.
pub fn reachable(t: &TestEnv) -> Result<BTreeSet<String>, (String, BTreeSet<String>)> {
    let lines = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let all = t.git_output(&t.repo, &["rev-list", "--all"]);
    if all.status.success() {
        return Ok(lines(&all));
    }
    let refs = t.git_output(
        &t.repo,
        &["rev-list", "--branches", "--tags", "--glob=refs/codex/*"],
    );
    let err = String::from_utf8_lossy(&all.stderr).trim().to_string();
    Err((err, lines(&refs)))
}

/// Where session `id`'s files may be: its worktree, each of its trash entries.
fn places(t: &TestEnv, id: &str) -> Vec<PathBuf> {
    let mut out = vec![t.worktree(id)];
    if let Ok(entries) = std::fs::read_dir(t.state_dir().join("trash")) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{id}@"))
            {
                out.push(entry.path().join("worktree"));
            }
        }
    }
    out
}

fn same_file(path: &Path, want: &File) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if want.symlink {
        return meta.file_type().is_symlink()
            && std::fs::read_link(path)
                .is_ok_and(|l| l.into_os_string().into_encoded_bytes() == want.bytes);
    }
    meta.is_file()
        && (meta.permissions().mode() & 0o111 != 0) == want.exec
        && std::fs::read(path).is_ok_and(|b| b == want.bytes)
}

/// The newest snapshot's files: path -> (mode, blob).
fn snapshot(t: &TestEnv, id: &str) -> (String, BTreeMap<String, (String, String)>) {
    let out = t.git_output(
        &t.repo,
        &["ls-tree", "-r", "-z", &format!("refs/codex/snapshots/{id}")],
    );
    let tip = t.git_output(
        &t.repo,
        &[
            "rev-parse",
            "--short",
            &format!("refs/codex/snapshots/{id}"),
        ],
    );
    let mut map = BTreeMap::new();
    for item in out.stdout.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        let text = String::from_utf8_lossy(item);
        let Some((head, path)) = text.split_once('\t') else {
            continue;
        };
        let parts: Vec<&str> = head.split(' ').collect();
        if parts.len() == 3 {
            map.insert(
                path.to_string(),
                (parts[0].to_string(), parts[2].to_string()),
            );
        }
    }
    let name = if tip.status.success() {
        String::from_utf8_lossy(&tip.stdout).trim().to_string()
    } else {
        "none".to_string()
    };
    (name, map)
}

/// Files of `before` found nowhere; with `worktree_only`, those not back in the worktree.
/// Ignored files are only ever in a worktree or the trash; `skip_ignored` leaves them out
/// (a restore from a snapshot after the trash was emptied cannot have them).
pub fn lost_files(
    t: &TestEnv,
    before: &Before,
    worktree_only: bool,
    skip_ignored: bool,
) -> Vec<String> {
    let places = places(t, &before.id);
    let searched = if worktree_only {
        &places[..1]
    } else {
        &places[..]
    };
    let (tip, snap) = snapshot(t, &before.id);
    let mut lost = Vec::new();
    for (rel, want) in &before.files {
        if skip_ignored && want.ignored {
            continue;
        }
        if searched.iter().any(|p| same_file(&p.join(rel), want)) {
            continue;
        }
        let in_snapshot = !want.ignored
            && snap
                .get(rel)
                .is_some_and(|(mode, blob)| mode == want.mode() && *blob == want.blob);
        if !worktree_only && in_snapshot {
            continue;
        }
        lost.push(rel.clone());
    }
    if lost.is_empty() {
        return lost;
    }
    let what = if worktree_only {
        "not back in the worktree"
    } else {
        "lost (not in worktree, trash or newest snapshot)"
    };
    vec![format!(
        "{} of {} files {what} (e.g. {}); seen: {}; newest snapshot {tip} ({} files)",
        lost.len(),
        before.files.len(),
        lost.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        describe(&places),
        snap.len()
    )]
}

/// Each place with how many files it holds, or that it is absent.
fn describe(places: &[PathBuf]) -> String {
    let seen: Vec<String> = places
        .iter()
        .map(|p| {
            let mut files = Vec::new();
            walk(p, p, &mut files);
            if p.exists() {
                format!("{} ({} files)", p.display(), files.len())
            } else {
                format!("{} (absent)", p.display())
            }
        })
        .collect();
    seen.join(", ")
}

/// Commits reachable before that no ref reaches now.
pub fn lost_commits(t: &TestEnv, before: &Before) -> Vec<String> {
    let mut out = Vec::new();
    let now = reachable(t).unwrap_or_else(|(err, refs)| {
        out.push(format!("git rev-list --all fails: {err}"));
        refs
    });
    let gone: Vec<&String> = before.commits.difference(&now).collect();
    if !gone.is_empty() {
        out.push(format!("{} commit(s) unreachable: {:?}", gone.len(), gone));
    }
    out
}

/// Whether some worktree's admin dir is one git's `worktree add` was still making: git marks
/// it `locked` with "initializing" and writes a null HEAD until the worktree is checked out.
pub fn git_was_adding_a_worktree(t: &TestEnv) -> bool {
    let Ok(list) = std::fs::read_dir(t.repo.join(".git/worktrees")) else {
        return false;
    };
    list.flatten().any(|admin| {
        std::fs::read_to_string(admin.path().join("locked"))
            .is_ok_and(|l| l.trim() == "initializing")
    })
}
