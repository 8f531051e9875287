//! What must hold after git-codex is killed anywhere (issue 16), reusable by any test:
//! every file of the session worktree is in the worktree, the trash or the newest snapshot,
//! byte for byte with its mode; no commit is unreachable; records, `git worktree list` and the
//! disk agree, or `doctor` names the difference and its repair command makes them agree.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::common::{TestEnv, json, run};

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
        .git_in(wt, &["ls-files", "-o", "-i", "--exclude-standard", "--directory"])
        .lines()
        .map(str::to_string)
        .collect();
    let is_ignored = |p: &str| ignored.iter().any(|i| p == i || (i.ends_with('/') && p.starts_with(i)));
    let mut files = BTreeMap::new();
    for rel in paths {
        let path = wt.join(&rel);
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let symlink = meta.file_type().is_symlink();
        let bytes = if symlink {
            std::fs::read_link(&path).expect("link").into_os_string().into_encoded_bytes()
        } else {
            std::fs::read(&path).expect("read")
        };
        let blob = blob_id(t, &bytes);
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
        commits: reachable(t),
        leftovers: leftovers(t),
    }
}

/// Git's blob id of `bytes` (sha1 of the header and the bytes), without running git per file.
fn blob_id(t: &TestEnv, bytes: &[u8]) -> String {
    let _ = t;
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
        let rel = path.strip_prefix(root).expect("under root").display().to_string();
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
pub fn reachable(t: &TestEnv) -> BTreeSet<String> {
    t.git(&["rev-list", "--all"]).lines().map(str::to_string).collect()
}

/// Where session `id`'s files may be: its worktree, each of its trash entries.
fn places(t: &TestEnv, id: &str) -> Vec<PathBuf> {
    let mut out = vec![t.worktree(id)];
    if let Ok(entries) = std::fs::read_dir(t.state_dir().join("trash")) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&format!("{id}@")) {
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
            && std::fs::read_link(path).is_ok_and(|l| l.into_os_string().into_encoded_bytes() == want.bytes);
    }
    meta.is_file()
        && (meta.permissions().mode() & 0o111 != 0) == want.exec
        && std::fs::read(path).is_ok_and(|b| b == want.bytes)
}

/// The newest snapshot's files: path -> (mode, blob).
fn snapshot(t: &TestEnv, id: &str) -> (String, BTreeMap<String, (String, String)>) {
    let out = t.git_output(&t.repo, &["ls-tree", "-r", "-z", &format!("refs/codex/snapshots/{id}")]);
    let tip = t.git_output(&t.repo, &["rev-parse", "--short", &format!("refs/codex/snapshots/{id}")]);
    let mut map = BTreeMap::new();
    for item in out.stdout.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        let text = String::from_utf8_lossy(item);
        let Some((head, path)) = text.split_once('\t') else { continue };
        let parts: Vec<&str> = head.split(' ').collect();
        if parts.len() == 3 {
            map.insert(path.to_string(), (parts[0].to_string(), parts[2].to_string()));
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
pub fn lost_files(t: &TestEnv, before: &Before, worktree_only: bool, skip_ignored: bool) -> Vec<String> {
    let places = places(t, &before.id);
    let searched = if worktree_only { &places[..1] } else { &places[..] };
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
            && snap.get(rel).is_some_and(|(mode, blob)| mode == want.mode() && *blob == want.blob);
        if !worktree_only && in_snapshot {
            continue;
        }
        lost.push(rel.clone());
    }
    if lost.is_empty() {
        return lost;
    }
    let count = |p: &Path| {
        let mut v = Vec::new();
        walk(p, p, &mut v);
        v.len()
    };
    let seen: Vec<String> = places
        .iter()
        .map(|p| if p.exists() { format!("{} ({} files)", p.display(), count(p)) } else { format!("{} (absent)", p.display()) })
        .collect();
    vec![format!(
        "{} of {} files {} (e.g. {}); seen: {}; newest snapshot {tip} ({} files)",
        lost.len(),
        before.files.len(),
        if worktree_only { "not back in the worktree" } else { "lost (not in worktree, trash or newest snapshot)" },
        lost.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        seen.join(", "),
        snap.len()
    )]
}

/// Commits reachable before that no ref reaches now.
pub fn lost_commits(t: &TestEnv, before: &Before) -> Vec<String> {
    let now = reachable(t);
    let gone: Vec<&String> = before.commits.difference(&now).collect();
    if gone.is_empty() {
        return Vec::new();
    }
    vec![format!("{} commit(s) unreachable: {:?}", gone.len(), gone)]
}

/// Git's lock files, interrupted merges and rebases, and the main worktree's status: what a
/// killed command may leave behind for a person to clean.
pub fn leftovers(t: &TestEnv) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let common = t.repo.join(".git");
    find_leftovers(&common, &common, &mut out);
    let status = t.git_output(&t.repo, &["status", "--porcelain"]);
    for line in String::from_utf8_lossy(&status.stdout).lines() {
        out.insert(format!("main worktree status: {line}"));
    }
    out
}

fn find_leftovers(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = path.strip_prefix(root).expect("under root").display().to_string();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if matches!(name.as_str(), "objects" | "trash" | "logs" | "reviews") && is_dir {
            continue;
        }
        let state = ["MERGE_HEAD", "SQUASH_MSG", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply"];
        if name.ends_with(".lock") || state.contains(&name.as_str()) {
            out.insert(format!(".git/{rel}"));
        }
        if is_dir {
            find_leftovers(root, &path, out);
        }
    }
}

/// Where records, `git worktree list` and the disk disagree, and leftovers that were not
/// there before.
pub fn disagreements(t: &TestEnv, before: &Before) -> Vec<String> {
    let mut out = Vec::new();
    let mut records = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(t.state_dir().join("sessions")) {
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                out.push(format!("stray file in sessions/: {name}"));
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                out.push(format!("record {name} is unreadable (a directory?)"));
                continue;
            };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
                out.push(format!("record {name} is corrupt: {text:?}"));
                continue;
            };
            let wt = record["worktree"].as_str().unwrap_or_default().to_string();
            let branch = record["branch"].as_str().unwrap_or_default();
            let ok = t.git_output(&t.repo, &["rev-parse", "-q", "--verify", &format!("refs/heads/{branch}")]);
            if !ok.status.success() {
                out.push(format!("record {name}: branch {branch:?} is gone"));
            }
            records.insert(wt);
        }
    }
    let mut registered = BTreeSet::new();
    let list = t.git(&["worktree", "list", "--porcelain"]);
    for block in list.split("\n\n").skip(1) {
        let path = block.lines().find_map(|l| l.strip_prefix("worktree ")).unwrap_or_default();
        if block.lines().any(|l| l.starts_with("prunable")) {
            out.push(format!("git lists {path} as prunable"));
        }
        registered.insert(path.to_string());
    }
    let mut disk = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(t.repo.join(".codex-worktrees")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join(".git").exists() {
                out.push(format!("{} is on disk without its .git file", path.display()));
            }
            disk.insert(path.display().to_string());
        }
    }
    for (a, an, b, bn) in [
        (&records, "recorded", &registered, "registered with git"),
        (&registered, "registered with git", &records, "recorded"),
        (&disk, "on disk", &records, "recorded"),
        (&records, "recorded", &disk, "on disk"),
    ] {
        for path in a.difference(b) {
            out.push(format!("{path} is {an} but not {bn}"));
        }
    }
    for item in leftovers(t).difference(&before.leftovers) {
        out.push(format!("left behind: {item}"));
    }
    out
}

/// Checks that are about the machine or the config, not about state a crash can leave.
const NOT_CRASH_STATE: &[&str] = &[
    "git", "config", "protected", "sandbox", "confinement", "signing", "domains", "client", "disk", "approvals",
];

/// The disagreements; when there are any, `doctor` must name them and the command its hint
/// gives must make them go. Returns the problems, with what was seen.
pub fn agree_or_doctor_repairs(t: &TestEnv, before: &Before) -> Vec<String> {
    let diffs = disagreements(t, before);
    if diffs.is_empty() {
        return diffs;
    }
    let (code, out, err) = run(t.codex(&["doctor", "--json"]));
    let Ok(report) = serde_json::from_str::<serde_json::Value>(&out) else {
        return vec![format!("{diffs:?}; doctor --json failed (exit {code}): {err}")];
    };
    let named: Vec<serde_json::Value> = report["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["status"] != "ok" && !NOT_CRASH_STATE.contains(&c["name"].as_str().unwrap_or("")))
        .collect();
    if named.is_empty() {
        return vec![format!("doctor is silent about: {}", diffs.join("; "))];
    }
    let mut problems = Vec::new();
    for check in &named {
        let hint = check["hint"].as_str().unwrap_or_default();
        let Some(args) = repair_command(hint, &before.id) else {
            problems.push(format!("doctor's {} check ({}) gives no command: {hint:?}", check["name"], check["detail"]));
            continue;
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run(t.codex(&argv));
        if code != 0 {
            problems.push(format!("doctor's repair 'git codex {}' failed (exit {code}): {}", args.join(" "), err.trim()));
        }
    }
    let still = disagreements(t, before);
    if !still.is_empty() {
        let said: Vec<String> = named.iter().map(|c| format!("{}: {} / hint: {}", c["name"], c["detail"], c["hint"])).collect();
        problems.push(format!(
            "before repair: {}; doctor said: {}; still after its repair: {}",
            diffs.join("; "),
            said.join(" | "),
            still.join("; ")
        ));
    } else {
        problems.clear();
    }
    problems
}

/// The first `'git codex …'` command of a hint, as argv: `--dry-run` dropped (the hint says
/// what would be done; doing it is the repair), `<id>` the session's.
fn repair_command(hint: &str, id: &str) -> Option<Vec<String>> {
    let start = hint.find("'git codex ")? + "'git codex ".len();
    let end = hint[start..].find('\'')? + start;
    Some(
        hint[start..end]
            .split_whitespace()
            .filter(|w| *w != "--dry-run" && *w != "-n")
            .map(|w| if w == "<id>" { id.to_string() } else { w.to_string() })
            .collect(),
    )
}

/// Whether `doctor --json` parses: used to say so in a report when it does not.
pub fn doctor_ok(t: &TestEnv) -> bool {
    json(&run(t.codex(&["doctor", "--json"])).1)["ok"] == true
}
