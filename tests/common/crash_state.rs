//! What must agree after git-codex is killed anywhere (issue 16): session records, `git worktree
//! list` and the disk, with no lock, merge or rebase state left behind; else `doctor` names the
//! difference and the command its hint gives makes it go.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{TestEnv, run};
use crate::crash_check::Before;

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
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if matches!(name.as_str(), "objects" | "trash" | "logs" | "reviews") && is_dir {
            continue;
        }
        let state = [
            "MERGE_HEAD",
            "SQUASH_MSG",
            "CHERRY_PICK_HEAD",
            "REVERT_HEAD",
            "rebase-merge",
            "rebase-apply",
        ];
        if name.ends_with(".lock") || state.contains(&name.as_str()) {
            out.insert(format!(".git/{rel}"));
        }
        if is_dir {
            find_leftovers(root, &path, out);
        }
    }
}

/// Where records, `git worktree list` and the disk disagree, and leftovers that were not
/// Where records, `git worktree list` and the disk disagree, and leftovers that were not
/// there before.
pub fn disagreements(t: &TestEnv, before: &Before) -> Vec<String> {
    let mut out = Vec::new();
    let records = records(t, &mut out);
    let registered = registered(t, &mut out);
    let disk = on_disk(t, &mut out);
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

/// The worktrees the records name; unreadable records and missing branches go to `out`.
fn records(t: &TestEnv, out: &mut Vec<String>) -> BTreeSet<String> {
    let mut records = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(t.state_dir().join("sessions")) else {
        return records;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            out.push(format!("stray file in sessions/: {name}"));
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            out.push(format!("record {name} is unreadable (a directory?)"));
            continue;
        };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
            out.push(format!("record {name} is corrupt: {text:?}"));
            continue;
        };
        let branch = record["branch"].as_str().unwrap_or_default();
        let verify = [
            "rev-parse",
            "-q",
            "--verify",
            &format!("refs/heads/{branch}"),
        ];
        if !t.git_output(&t.repo, &verify).status.success() {
            out.push(format!("record {name}: branch {branch:?} is gone"));
        }
        records.insert(record["worktree"].as_str().unwrap_or_default().to_string());
    }
    records
}

/// The worktrees git lists but the main one; prunable ones go to `out`.
fn registered(t: &TestEnv, out: &mut Vec<String>) -> BTreeSet<String> {
    let mut registered = BTreeSet::new();
    let list = t.git(&["worktree", "list", "--porcelain"]);
    for block in list.split("\n\n").skip(1) {
        let path = block
            .lines()
            .find_map(|l| l.strip_prefix("worktree "))
            .unwrap_or_default();
        if block.lines().any(|l| l.starts_with("prunable")) {
            out.push(format!("git lists {path} as prunable"));
        }
        registered.insert(path.to_string());
    }
    registered
}

/// The dirs under the worktree base; one without its `.git` file goes to `out`.
fn on_disk(t: &TestEnv, out: &mut Vec<String>) -> BTreeSet<String> {
    let mut disk = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(t.repo.join(".codex-worktrees")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.join(".git").exists() {
                out.push(format!(
                    "{} is on disk without its .git file",
                    path.display()
                ));
            }
            disk.insert(path.display().to_string());
        }
    }
    disk
}

/// Checks that are about the machine or the config, not about state a crash can leave.
const NOT_CRASH_STATE: &[&str] = &[
    "git",
    "config",
    "protected",
    "sandbox",
    "confinement",
    "signing",
    "domains",
    "client",
    "disk",
    "approvals",
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
        return vec![format!(
            "{diffs:?}; doctor --json failed (exit {code}): {err}"
        )];
    };
    let named: Vec<serde_json::Value> = report["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c["status"] != "ok" && !NOT_CRASH_STATE.contains(&c["name"].as_str().unwrap_or(""))
        })
        .collect();
    if named.is_empty() {
        return vec![format!("doctor is silent about: {}", brief(&diffs))];
    }
    let mut problems = Vec::new();
    for check in &named {
        let hint = check["hint"].as_str().unwrap_or_default();
        let Some(args) = repair_command(hint, &before.id) else {
            problems.push(format!(
                "doctor's {} check ({}) gives no command: {hint:?}",
                check["name"], check["detail"]
            ));
            continue;
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run(t.codex(&argv));
        if code != 0 {
            problems.push(format!(
                "doctor's repair 'git codex {}' failed (exit {code}): {}",
                args.join(" "),
                err.trim()
            ));
        }
    }
    let still = disagreements(t, before);
    if !still.is_empty() {
        let said: Vec<String> = named
            .iter()
            .map(|c| format!("{}: {} / hint: {}", c["name"], c["detail"], c["hint"]))
            .collect();
        problems.push(format!(
            "before repair: {}; doctor said: {}; still after its repair: {}",
            brief(&diffs),
            said.join(" | "),
            brief(&still)
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
            .map(|w| {
                if w == "<id>" {
                    id.to_string()
                } else {
                    w.to_string()
                }
            })
            .collect(),
    )
}

/// The first five items of `list` and how many more: a report line stays readable.
pub fn brief(list: &[String]) -> String {
    let mut out = list.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    if list.len() > 5 {
        out.push_str(&format!("; … {} more", list.len() - 5));
    }
    out
}
