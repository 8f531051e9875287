//! Issue 16, point 8 and 5: `doctor` names what a crash or a person left that makes every
//! later command fail (a state dir git-codex cannot write, a dir where a session record
//! belongs), with the one command that repairs it, and that command works. A `lock` dir in
//! the state dir (the lock is the state dir itself now) disturbs nothing.

mod common;

use assert_cmd::Command;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{TestEnv, doctor_check, each_git, json, run};

/// Whether commands run as someone whose file modes bind them; root writes a read-only dir
/// anyway, so as root they run in a user namespace of their own (`unshare --user`), where
/// modes bind root too.
fn can_drop_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let ok = unsafe { libc::geteuid() } != 0
        || std::process::Command::new("unshare")
            .args(["--user", "--", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: running as root, and unshare --user cannot drop its power here");
    }
    ok
}

/// `program ARGS` in the repository with the test's environment, without root's power.
fn unprivileged(t: &TestEnv, program: &str, args: &[&str]) -> Command {
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--", program]);
        cmd
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .env_clear()
        .envs(t.vars())
        .current_dir(&t.repo);
    cmd
}

fn check_of(out: &str, name: &str) -> serde_json::Value {
    json(out)["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no {name} check in {out}"))
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_read_only_state_dir_is_named_with_the_chmod_that_repairs_it() {
    each_git(|t| {
        t.add("a");
        let state = t.state_dir();
        chmod(&state, 0o555);
        chmod(&state.join("sessions"), 0o555);
        if !can_drop_root() {
            chmod(&state, 0o755);
            chmod(&state.join("sessions"), 0o755);
            return;
        }
        let (code, _, err) = run(unprivileged(t, common::BIN, &["session", "add", "b"]));
        assert_ne!(
            code, 0,
            "a session was added in a read-only state dir: {err}"
        );
        let (code, out, err) = run(unprivileged(t, common::BIN, &["doctor", "--json"]));
        assert_eq!(code, 1, "{out}{err}");
        let c = check_of(&out, "state-dir");
        assert_eq!(c["status"], "fail", "{c}");
        let detail = c["detail"].as_str().unwrap();
        assert!(detail.contains(&state.display().to_string()), "{c}");
        let hint = c["hint"].as_str().unwrap();
        let words: Vec<&str> = hint.split(' ').collect();
        assert_eq!(words[..2], ["chmod", "u+w"], "{hint}");
        // The repair, as the person would run it.
        let (code, _, err) = run(unprivileged(t, words[0], &words[1..]));
        assert_eq!(code, 0, "{err}");
        let (_, out, _) = run(unprivileged(t, common::BIN, &["doctor", "--json"]));
        assert_eq!(check_of(&out, "state-dir")["status"], "ok", "{out}");
        let (code, out, err) = run(unprivileged(t, common::BIN, &["session", "add", "b"]));
        assert_eq!(code, 0, "{out}{err}");
    });
}

#[test]
fn a_lock_dir_in_the_state_dir_disturbs_nothing() {
    each_git(|t| {
        t.add("a");
        std::fs::create_dir_all(t.state_dir().join("lock/inside")).unwrap();
        t.add("b");
        let (code, out, err) = run(t.codex(&["session", "remove", "a"]));
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = run(t.codex(&["session", "prune"]));
        assert_eq!(code, 0, "{out}{err}");
        for name in ["state-dir", "git-locks", "record-paths", "sessions"] {
            assert_eq!(doctor_check(t, name)["status"], "ok", "{name}");
        }
        assert!(t.state_dir().join("lock/inside").is_dir());
    });
}

#[test]
fn a_dir_at_a_record_path_is_named_and_its_repair_moves_it_to_the_trash_whole() {
    each_git(|t| {
        t.add("a");
        let ghost = t.state_dir().join("sessions/ghost.json");
        std::fs::create_dir_all(ghost.join("inside")).unwrap();
        std::fs::write(ghost.join("inside/keep.txt"), "keep\n").unwrap();
        let c = doctor_check(t, "record-paths");
        assert_eq!(c["status"], "fail", "{c}");
        assert!(
            c["detail"]
                .as_str()
                .unwrap()
                .contains(&ghost.display().to_string()),
            "{c}"
        );
        let hint = c["hint"].as_str().unwrap().to_string();
        let command = hint.split(" (").next().unwrap();
        assert_eq!(command, "git codex doctor --repair", "{hint}");
        let (code, out, err) = run(t.codex(&command.split(' ').skip(2).collect::<Vec<_>>()));
        assert!(err.contains("ghost.json"), "{code} {out}{err}");
        assert!(!ghost.exists());
        assert_eq!(doctor_check(t, "record-paths")["status"], "ok");
        assert_eq!(doctor_check(t, "sessions")["status"], "ok");
        // What it held is in the trash, whole.
        let trash = std::fs::read_dir(t.state_dir().join("trash")).unwrap();
        let kept: Vec<_> = trash
            .flatten()
            .map(|e| e.path().join("ghost.json/inside/keep.txt"))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), "keep\n");
        // Sessions come and go as before.
        t.add("b");
        let (code, out, err) = run(t.codex(&["session", "remove", "b"]));
        assert_eq!(code, 0, "{out}{err}");
    });
}

#[test]
fn doctor_repair_on_a_healthy_repository_changes_nothing() {
    each_git(|t| {
        t.add("a");
        let before = t.disk();
        let (code, out, err) = run(t.codex(&["doctor", "--repair"]));
        assert!(!err.contains("moved"), "{code} {out}{err}");
        common::assert_disk_unchanged(&before, &t.disk(), "doctor --repair");
    });
}

/// Outside attacker: an intent nobody can read (a torn or empty `journal/<id>.json`) had a
/// hint to move it by hand. It is named with `doctor --repair`, which moves it to the trash.
#[test]
fn an_unreadable_intent_is_named_and_its_repair_moves_it_to_the_trash() {
    each_git(|t| {
        let torn = t.state_dir().join("journal/x.json");
        common::write_file(&torn, "{\"op\": \"remo");
        let c = doctor_check(t, "interrupted");
        assert_eq!(c["status"], "fail", "{c}");
        let hint = c["hint"].as_str().unwrap().to_string();
        assert!(
            hint.starts_with("run 'git codex doctor --repair'"),
            "{hint}"
        );
        let (code, out, err) = run(t.codex(&["doctor", "--repair"]));
        assert!(err.contains("x.json"), "{code} {out}{err}");
        assert!(!torn.exists());
        assert_eq!(doctor_check(t, "interrupted")["status"], "ok");
        let trash = std::fs::read_dir(t.state_dir().join("trash")).unwrap();
        let kept: Vec<_> = trash
            .flatten()
            .map(|e| e.path().join("x.json"))
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(
            std::fs::read_to_string(&kept[0]).unwrap(),
            "{\"op\": \"remo"
        );
    });
}
