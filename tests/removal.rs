//! Removal as an attack surface (SPEC §8): a hostile worktree base is refused in every layer,
//! nothing is deleted that git-codex cannot prove it made, a removed worktree comes back whole
//! from the trash, and a running agent's session is not removed under it.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{TestEnv, assert_disk_unchanged, each_git, json, run, write_file};

/// A sibling project next to the repository: must survive everything.
fn sibling(t: &TestEnv) -> PathBuf {
    let dir = t.root().join("sibling");
    write_file(&dir.join("src/main.c"), "int main() { return 0; }\n");
    dir
}

/// Every file under `dir` with its bytes and mode (symlinks as their target), skipping
/// `.codex-session.json`, which git-codex rewrites.
fn files(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            // git-codex rewrites these two for each incarnation of a session.
            if rel == ".git" || rel == ".codex-session.json" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_symlink() {
                let to = std::fs::read_link(&path).unwrap();
                out.push((rel, to.display().to_string().into_bytes(), 0));
            } else if meta.is_dir() {
                out.push((
                    format!("{rel}/"),
                    Vec::new(),
                    meta.permissions().mode() & 0o777,
                ));
                walk(root, &path, out);
            } else {
                let mode = meta.permissions().mode() & 0o777;
                out.push((rel, std::fs::read(&path).unwrap(), mode));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn trash_entries(t: &TestEnv) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(t.state_dir().join("trash"))
        .map(|list| list.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn a_worktree_base_that_is_or_holds_the_repository_is_refused_in_every_layer() {
    each_git(|t| {
        let sibling = sibling(t);
        t.add("keep");
        std::os::unix::fs::symlink(&t.repo, t.root().join("link-to-repo")).unwrap();
        std::fs::create_dir_all(t.repo.join("sub")).unwrap();
        let repo = t.repo.display().to_string();
        let hostile = [
            ".".to_string(),
            "./".to_string(),
            "..".to_string(),
            "../".to_string(),
            "sub/..".to_string(),
            "sub/../..".to_string(),
            "nowhere/../..".to_string(),
            "/".to_string(),
            repo.clone(),
            format!("{repo}/"),
            format!("{repo}/.git"),
            ".git".to_string(),
            ".git/codex".to_string(),
            t.root().display().to_string(),
            t.root().join("link-to-repo").display().to_string(),
            "../link-to-repo".to_string(),
            format!("{}/../repo", t.root().join("link-to-repo").display()),
            "~/..".to_string(),
        ];
        for base in &hostile {
            let before = t.disk();
            // `config set`, to the repo file and to the user file: exit 2, nothing written.
            for args in [
                vec!["config", "set", "session.worktree_base", base.as_str()],
                vec![
                    "config",
                    "set",
                    "--user",
                    "session.worktree_base",
                    base.as_str(),
                ],
            ] {
                let (code, _, err) = run(t.codex(&args));
                assert_eq!(code, 2, "{args:?}: {err}");
                assert!(err.contains("worktree_base"), "{err}");
                assert!(err.contains("hint:"), "{err}");
            }
            // The environment: every command that loads config refuses before touching anything.
            for args in [
                vec!["session", "prune"],
                vec!["session", "remove", "keep"],
                vec!["session", "add", "x"],
                vec!["session", "list"],
                vec!["config", "validate"],
            ] {
                let mut cmd = t.codex(&args);
                cmd.env("GIT_CODEX_SESSION_WORKTREE_BASE", base);
                let (code, _, err) = run(cmd);
                assert_eq!(code, 2, "env {base} {args:?}: {err}");
                assert!(err.contains("GIT_CODEX_SESSION_WORKTREE_BASE"), "{err}");
            }
            assert_disk_unchanged(&before, &t.disk(), &format!("base {base}"));
            // A file layer written by hand: the same.
            let quoted = toml::Value::String(base.clone()).to_string();
            let text = format!("[session]\nworktree_base = {quoted}\n");
            for file in [
                t.state_dir().join("config.toml"),
                t.home.join(".config/git-codex/config.toml"),
            ] {
                write_file(&file, &text);
                let before = t.disk();
                for args in [
                    vec!["session", "prune"],
                    vec!["session", "remove", "keep"],
                    vec!["config", "validate"],
                ] {
                    let (code, _, err) = run(t.codex(&args));
                    assert_eq!(code, 2, "file {base} {args:?}: {err}");
                }
                assert_disk_unchanged(&before, &t.disk(), &format!("file base {base}"));
                std::fs::remove_file(&file).unwrap();
            }
        }
        assert!(t.worktree("keep").join("README.md").is_file());
        assert!(sibling.join("src/main.c").is_file());
        // An imported template: the same.
        let template = t.root().join("template.json");
        let json_text = format!(
            "{{\"sessionOrchestration\": {{\"worktreeBasePath\": \"{}\"}}}}",
            t.root().join("link-to-repo").display()
        );
        write_file(&template, &json_text);
        let before = t.disk();
        let (code, _, err) =
            run(t.codex(&["config", "import", "--write", template.to_str().unwrap()]));
        assert_eq!(code, 2, "{err}");
        assert_disk_unchanged(&before, &t.disk(), "import of a hostile base");
        // A base of its own, inside or outside the repository, is fine.
        for good in [".codex-worktrees", "../worktrees", "sub/wt"] {
            let (code, _, err) = run(t.codex(&["config", "set", "session.worktree_base", good]));
            assert_eq!(code, 0, "{good}: {err}");
        }
    });
}

#[test]
fn prune_and_remove_leave_alone_what_git_codex_cannot_prove_it_made() {
    each_git(|t| {
        let sibling = sibling(t);
        t.git_in(&sibling, &["init", "-q"]);
        let real = t.add("real");
        let base = t.repo.join(".codex-worktrees");
        // A dir without .git, one whose .git file points into another repository, one with a
        // .git dir of its own, one whose .git file names a real session's admin dir (that does
        // not name it back), and symlinks to the repository and to the sibling.
        write_file(&base.join("wt-plain/notes.txt"), "plain\n");
        write_file(
            &base.join("wt-elsewhere/.git"),
            &format!("gitdir: {}\n", sibling.join(".git").display()),
        );
        write_file(&base.join("wt-elsewhere/data.txt"), "elsewhere\n");
        t.git_in(
            &t.root(),
            &["init", "-q", base.join("wt-own").to_str().unwrap()],
        );
        write_file(&base.join("wt-own/own.txt"), "own\n");
        let admin = t.git_in(&real, &["rev-parse", "--absolute-git-dir"]);
        write_file(&base.join("wt-forged/.git"), &format!("gitdir: {admin}\n"));
        write_file(&base.join("wt-forged/forged.txt"), "forged\n");
        // A linked worktree a person made under the base by a name git-codex never gives.
        t.git(&["worktree", "add", "-q", base.join("mine").to_str().unwrap()]);
        write_file(&base.join("mine/mine.txt"), "mine\n");
        std::os::unix::fs::symlink(&t.repo, base.join("wt-link-repo")).unwrap();
        std::os::unix::fs::symlink(&sibling, base.join("wt-link-sibling")).unwrap();
        let before = t.disk();

        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        for name in [
            "wt-plain",
            "wt-elsewhere",
            "wt-own",
            "wt-forged",
            "wt-link-repo",
            "wt-link-sibling",
            "mine",
        ] {
            assert!(
                err.contains(&format!("Left alone {}", base.join(name).display())),
                "{name}: {err}"
            );
        }
        assert_disk_unchanged(&before, &t.disk(), "prune");
        let (code, out, err) = run(t.codex(&["session", "prune", "--dry-run", "--json"]));
        assert_eq!(code, 0, "{err}");
        let items = json(&out)["items"].as_array().unwrap().clone();
        assert!(
            items
                .iter()
                .all(|i| i["kind"] == "unowned" && i["acts"] == false),
            "{out}"
        );

        // A session whose worktree was swapped for a symlink to the sibling: refused, kept.
        std::fs::rename(&real, t.root().join("real-moved")).unwrap();
        std::os::unix::fs::symlink(&sibling, &real).unwrap();
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "remove", "real"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("symlink"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "remove through a symlink");
        std::fs::remove_file(&real).unwrap();
        std::fs::rename(t.root().join("real-moved"), &real).unwrap();

        // A record edited to name the repository itself, or the sibling: refused, kept.
        let record_path = t.state_dir().join("sessions/real.json");
        let original = std::fs::read_to_string(&record_path).unwrap();
        let base_itself = t.repo.join(".codex-worktrees");
        for victim in [&t.repo, &sibling, &t.root(), &base_itself] {
            let mut record = json(&original);
            record["worktree"] = victim.display().to_string().into();
            std::fs::write(&record_path, record.to_string()).unwrap();
            let before = t.disk();
            let (code, _, err) = run(t.codex(&["session", "remove", "real", "--force"]));
            assert_eq!(code, 3, "{}: {err}", victim.display());
            assert_disk_unchanged(&before, &t.disk(), "remove of a forged record");
        }
        std::fs::write(&record_path, &original).unwrap();
        t.codex(&["session", "remove", "real"]).assert().success();
        // A base that is another project (it does not hold this repository): allowed, and
        // nothing of that project is touched.
        t.set_config(&format!(
            "[session]\nworktree_base = \"{}\"\n",
            sibling.display()
        ));
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Left alone"), "{err}");
        assert_disk_unchanged(&before, &t.disk(), "prune with a sibling project as base");
        assert!(sibling.join("src/main.c").is_file());
        assert!(t.repo.join("README.md").is_file());
    });
}

#[test]
fn a_removed_worktree_comes_back_whole_ignored_files_and_nested_repositories_included() {
    each_git(|t| {
        t.write(".gitignore", "build/\n*.log\n/vendor/\n");
        t.git(&["add", ".gitignore"]);
        t.git(&["commit", "-q", "-m", "ignore"]);
        let wt = t.add("whole");
        t.commit_in(&wt, "committed.txt", "on the branch\n");
        write_file(&wt.join("build/out.bin"), "build output\n");
        std::fs::set_permissions(
            wt.join("build/out.bin"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        write_file(&wt.join("agent.log"), "a log\n");
        write_file(&wt.join("db/local.sqlite"), "a database\n");
        let nested = wt.join("vendor/lib");
        t.git_in(&wt, &["init", "-q", "vendor/lib"]);
        t.commit_in(&nested, "lib.rs", "nested repository\n");
        write_file(&wt.join("staged.txt"), "staged\n");
        t.git_in(&wt, &["add", "staged.txt"]);
        write_file(&wt.join("README.md"), "changed, not staged\n");
        std::os::unix::fs::symlink("README.md", wt.join("link")).unwrap();
        let before = files(&wt);
        let status_before = t.git_in(&wt, &["status", "--porcelain"]);

        let (code, _, err) = run(t.codex(&["session", "remove", "whole"]));
        assert_eq!(code, 0, "{err}");
        assert!(!wt.exists());
        assert!(err.contains("trash"), "{err}");
        assert!(
            !t.git(&["worktree", "list", "--porcelain"])
                .contains("wt-whole")
        );
        assert!(t.git(&["rev-parse", "refs/codex/snapshots/whole"]).len() == 40);
        assert_eq!(trash_entries(t).len(), 1);

        let (code, _, err) = run(t.codex(&["session", "restore", "whole"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("from the trash"), "{err}");
        assert_eq!(
            files(&wt),
            before,
            "every file back, modes and nested repository included"
        );
        assert_eq!(t.git_in(&wt, &["status", "--porcelain"]), status_before);
        assert_eq!(t.git_in(&nested, &["log", "--format=%s"]), "add lib.rs");
        assert!(trash_entries(t).is_empty(), "the entry went back");
        assert_eq!(t.show("whole")["state"], "review-pending", "live again");
    });
}

#[test]
fn the_trash_is_emptied_after_its_retention_and_doctor_reports_its_size() {
    each_git(|t| {
        let wt = t.add("old");
        write_file(&wt.join("big.bin"), &"x".repeat(300_000));
        t.codex(&["session", "remove", "old"]).assert().success();
        let entries = trash_entries(t);
        assert_eq!(entries.len(), 1);
        let (_, out, _) = run(t.codex(&["doctor", "--json"]));
        let checks = json(&out)["checks"].as_array().unwrap().clone();
        let trash = checks
            .iter()
            .find(|c| c["name"] == "trash")
            .expect("trash check");
        assert!(
            trash["detail"]
                .as_str()
                .unwrap()
                .contains("1 removed worktree(s), 0.3 MiB"),
            "{trash}"
        );

        // Young: kept.
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(entries[0].is_dir());
        // Eight days old: kept with "never", emptied with the default 7d.
        let meta_path = entries[0].join("meta.json");
        let mut meta = json(&std::fs::read_to_string(&meta_path).unwrap());
        let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(8 * 24);
        meta["removed"] = past.to_string().into();
        std::fs::write(&meta_path, meta.to_string()).unwrap();
        t.set_config("[session]\ntrash_retention = \"never\"\n");
        t.codex(&["session", "prune"]).assert().success();
        assert!(entries[0].is_dir());
        t.set_config("");
        let (code, out, err) = run(t.codex(&["session", "prune", "--dry-run"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Would empty trash"), "{out}{err}");
        assert!(entries[0].is_dir());
        let (code, _, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Emptied trash"), "{err}");
        assert!(!entries[0].exists());
        // A symlink planted in the trash is not followed.
        let victim = sibling(t);
        std::os::unix::fs::symlink(&victim, t.state_dir().join("trash/evil@1")).unwrap();
        t.codex(&["session", "prune"]).assert().success();
        assert!(victim.join("src/main.c").is_file());
    });
}

#[test]
fn restore_leaves_a_trash_copy_taken_on_another_commit_and_prefers_the_newest() {
    each_git(|t| {
        t.write(".gitignore", "*.log\n");
        t.git(&["add", ".gitignore"]);
        t.git(&["commit", "-q", "-m", "ignore"]);
        let wt = t.add("s");
        t.commit_in(&wt, "a.txt", "a\n");
        write_file(&wt.join("first.log"), "first incarnation\n");
        t.codex(&["session", "remove", "s"]).assert().success();
        // The branch moves on while the session is removed.
        let tip = t.git(&["rev-parse", "codex/s"]);
        let tree = t.git(&["rev-parse", "main^{tree}"]);
        let moved = t.git(&["commit-tree", &tree, "-p", &tip, "-m", "moved on"]);
        t.git(&["update-ref", "refs/heads/codex/s", &moved]);
        let (code, _, err) = run(t.codex(&["session", "restore", "s"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("on another commit"), "{err}");
        assert!(!wt.join("first.log").exists());
        assert_eq!(t.git_in(&wt, &["status", "--porcelain"]), "");
        assert_eq!(
            trash_entries(t).len(),
            1,
            "the first copy stays in the trash"
        );
        // Removed again: the newest copy is the one that comes back; the old one stays.
        write_file(&wt.join("second.log"), "second incarnation\n");
        t.codex(&["session", "remove", "s"]).assert().success();
        assert_eq!(trash_entries(t).len(), 2);
        t.codex(&["session", "restore", "s"]).assert().success();
        assert!(wt.join("second.log").is_file());
        assert!(!wt.join("first.log").exists());
        assert_eq!(trash_entries(t).len(), 1);
    });
}

/// Whether a process whose command line is exactly `words` runs.
fn running(words: &[&str]) -> bool {
    let wanted: Vec<u8> = words.iter().flat_map(|w| w.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == wanted))
}

#[test]
fn a_running_agent_is_not_removed_under_it_and_force_stops_it_first() {
    let round = std::cell::Cell::new(0);
    each_git(|t| {
        round.set(round.get() + 1);
        let wt = t.add("busy");
        // The agent leaves a child behind: it goes too.
        let nap = format!("{}", 3000 + round.get() + 10 * std::process::id() % 1000);
        let script = format!(
            "echo work > work.txt && git add work.txt && git commit -q -m 'agent work' && sleep {nap} & sleep 1; echo started > started.txt; wait"
        );
        let mut child = std::process::Command::new(common::BIN)
            .env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["session", "run", "busy", "--", "sh", "-c", &script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while t.show("busy")["state"] != "running"
            || !running(&["sleep", &nap])
            || std::fs::read_to_string(wt.join("started.txt")).unwrap_or_default() != "started\n"
        {
            assert!(
                started.elapsed().as_secs() < 10,
                "the run never showed as running"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let before = t.disk();
        let (code, _, err) = run(t.codex(&["session", "remove", "busy"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("runs an agent") && err.contains("--force"),
            "{err}"
        );
        assert_disk_unchanged(&before, &t.disk(), "a refused removal");
        assert!(running(&["sleep", &nap]));

        let (code, _, err) = run(t.codex(&["session", "remove", "busy", "--force"]));
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Stopping the agent"), "{err}");
        assert!(!wt.exists());
        assert!(!running(&["sleep", &nap]), "the agent's child is gone too");
        let status = child.wait().unwrap();
        assert!(!status.success());
        // Its commit is on its branch (settled), kept since it is on no other branch.
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", "codex/busy"]),
            "agent work"
        );
        // Its work is in the trash and comes back.
        t.codex(&["session", "restore", "busy"]).assert().success();
        assert_eq!(
            std::fs::read_to_string(wt.join("started.txt")).unwrap(),
            "started\n"
        );
    });
}

#[test]
fn a_worktree_base_on_another_filesystem_is_copied_whole_or_not_removed_at_all() {
    use std::os::unix::fs::MetadataExt as _;
    let shm = Path::new("/dev/shm");
    let other_fs = |t: &TestEnv| {
        std::fs::metadata(shm).is_ok_and(|m| m.dev() != std::fs::metadata(&t.repo).unwrap().dev())
    };
    let round = std::cell::Cell::new(0);
    each_git(|t| {
        if !other_fs(t) {
            eprintln!("note: /dev/shm is not another filesystem here; skipped");
            return;
        }
        round.set(round.get() + 1);
        let base = shm.join(format!("codex-test-{}-{}", std::process::id(), round.get()));
        t.set_config(&format!(
            "[session]\nworktree_base = \"{}\"\n",
            base.display()
        ));
        t.write(".gitignore", "*.log\n");
        t.git(&["add", ".gitignore"]);
        t.git(&["commit", "-q", "-m", "ignore"]);
        let wt = t.add("far");
        assert!(wt.starts_with(&base));
        write_file(&wt.join("run.log"), "ignored output\n");
        write_file(&wt.join("tool.sh"), "#!/bin/sh\n");
        std::fs::set_permissions(wt.join("tool.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("../elsewhere", wt.join("dangling")).unwrap();
        let before = files(&wt);
        // A fifo cannot be copied: nothing is removed.
        let fifo = wt.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (code, _, err) = run(t.codex(&["session", "remove", "far"]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("nothing was removed"), "{err}");
        assert!(fifo.exists() && wt.join("run.log").is_file());
        assert!(trash_entries(t).is_empty());
        assert_eq!(t.show("far")["id"], "far", "the session is still there");
        std::fs::remove_file(&fifo).unwrap();

        t.codex(&["session", "remove", "far"]).assert().success();
        assert!(!wt.exists());
        assert_eq!(trash_entries(t).len(), 1);
        t.codex(&["session", "restore", "far"]).assert().success();
        assert_eq!(files(&wt), before);
        assert_eq!(
            t.git_in(&wt, &["status", "--porcelain"]),
            "?? dangling\n?? tool.sh"
        );
        std::fs::remove_dir_all(&base).unwrap();
    });
}

#[test]
fn a_worktree_whose_git_file_points_elsewhere_or_that_holds_another_is_not_removed() {
    each_git(|t| {
        // A second repository with a linked worktree of its own: a session's `.git` file is
        // pointed at that worktree's admin dir.
        let other = t.root().join("other");
        t.git_in(&t.root(), &["init", "-q", "-b", "main", "other"]);
        t.commit_in(&other, "o.txt", "other\n");
        t.git_in(&other, &["worktree", "add", "-q", "../other-wt"]);
        let other_refs = t.git_in(&other, &["for-each-ref"]);
        let wt = t.add("s");
        write_file(&wt.join("work.txt"), "uncommitted work\n");
        std::fs::copy(t.root().join("other-wt/.git"), wt.join(".git")).expect("hijack .git");
        let (code, _, err) = run(t.codex(&["session", "remove", "s"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("does not point into this repository"), "{err}");
        assert_eq!(
            t.git_in(&other, &["for-each-ref"]),
            other_refs,
            "nothing written there"
        );
        assert_eq!(
            std::fs::read_to_string(wt.join("work.txt")).expect("work stays"),
            "uncommitted work\n"
        );

        // A worktree base set inside session u's worktree: removing u must not carry v along.
        let u = t.add("u");
        t.codex(&[
            "config",
            "set",
            "session.worktree_base",
            ".codex-worktrees/wt-u/nest",
        ])
        .assert()
        .success();
        let v = t.add("v");
        write_file(&v.join("precious.txt"), "v's work\n");
        t.codex(&["config", "set", "session.worktree_base", ".codex-worktrees"])
            .assert()
            .success();
        let (code, _, err) = run(t.codex(&["session", "remove", "u"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("holds another worktree"), "{err}");
        assert!(u.is_dir());
        assert_eq!(
            std::fs::read_to_string(v.join("precious.txt")).expect("v stays"),
            "v's work\n"
        );
    });
}
