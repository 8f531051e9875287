//! Generated files stay fresh, man pages reach `git codex --help`, and completions work in
//! the real shells, also as `git codex …` through git's own completion.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestEnv, each_git, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const SCRIPTS: [(&str, &str); 5] = [
    ("bash", "git-codex.bash"),
    ("zsh", "_git-codex"),
    ("fish", "git-codex.fish"),
    ("elvish", "git-codex.elv"),
    ("powershell", "_git-codex.ps1"),
];

/// A tool the test needs: present, or (outside CI) a printed reason to skip.
fn tool(name: &str) -> Option<PathBuf> {
    match which(name) {
        Some(path) => Some(path),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{name} is missing: .ci/run must install it"
            );
            eprintln!("skipping: {name} is not installed");
            None
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[test]
fn committed_man_pages_and_completions_are_fresh() {
    let stale = "stale: run scripts/generate and commit man/ and completions/";
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .args(["man", "--install"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut fresh: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut committed: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("man"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    fresh.sort();
    committed.sort();
    assert_eq!(fresh, committed, "{stale}");
    for name in &fresh {
        let a = std::fs::read(dir.path().join(name)).unwrap();
        let b = std::fs::read(Path::new(ROOT).join("man").join(name)).unwrap();
        assert!(a == b, "man/{name} is {stale}");
    }
    for (shell, file) in SCRIPTS {
        let out = Command::new(common::BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let committed = std::fs::read(Path::new(ROOT).join("completions").join(file)).unwrap();
        assert!(out.stdout == committed, "completions/{file} is {stale}");
    }
}

#[test]
fn git_codex_help_shows_the_installed_man_page() {
    let Some(_) = tool("man") else { return };
    each_git(|t| {
        let prefix = t.root().join("prefix");
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::copy(common::BIN, prefix.join("bin/git-codex")).unwrap();
        let (code, _, err) = run(t.codex(&[
            "man",
            "--install",
            prefix.join("share/man/man1").to_str().unwrap(),
        ]));
        assert_eq!(code, 0, "{err}");
        let path = format!(
            "{}:{}:/usr/bin:/bin",
            prefix.join("bin").display(),
            t.git.parent().unwrap().display()
        );
        let out = Command::new(&t.git)
            .env_clear()
            .envs(t.vars())
            .env("PATH", &path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .current_dir(&t.repo)
            .args(["codex", "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("git-codex") && text.contains("session"),
            "{text}"
        );
        let out = Command::new("man")
            .env("MANPATH", prefix.join("share/man"))
            .env("MANPAGER", "cat")
            .args(["git-codex-session-add"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("worktree"));
    });
}

/// A repository with sessions `alpha` and `beta`, and PATH leading to git-codex and the git.
fn completion_env(t: &TestEnv) -> String {
    t.add("alpha");
    t.add("beta");
    t.vars()
        .into_iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v)
        .unwrap()
}

fn shell(t: &TestEnv, program: &Path, args: &[&str], script: &str) -> String {
    let out = Command::new(program)
        .env_clear()
        .envs(t.vars())
        .current_dir(&t.repo)
        .args(args)
        .arg(script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn bash_completes_through_gits_own_completion() {
    let Some(bash) = tool("bash") else { return };
    let git_completion = Path::new("/usr/share/bash-completion/completions/git");
    if !git_completion.is_file() {
        eprintln!("skipping: git's bash completion is not installed");
        return;
    }
    each_git(|t| {
        completion_env(t);
        let ours = Path::new(ROOT).join("completions/git-codex.bash");
        let complete = |line: &str| {
            let script = format!(
                "source {} && source {} && COMP_LINE='{line}' && COMP_POINT=${{#COMP_LINE}} && read -ra COMP_WORDS <<< \"$COMP_LINE\" && \
                 if [[ $COMP_LINE == *' ' ]]; then COMP_WORDS+=(''); fi && COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) && \
                 __git_wrap__git_main && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                git_completion.display(),
                ours.display()
            );
            shell(t, &bash, &["--norc", "--noprofile", "-c"], &script)
        };
        assert!(
            complete("git codex ses")
                .lines()
                .any(|l| l.trim() == "session"),
            "subcommands"
        );
        let ids = complete("git codex session review ");
        assert!(
            ids.lines().any(|l| l.trim() == "alpha") && ids.lines().any(|l| l.trim() == "beta"),
            "{ids}"
        );
        let direct = format!(
            "source {} && COMP_WORDS=(git-codex session show a) && COMP_CWORD=3 && _clap_complete_git_codex git-codex a && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            ours.display()
        );
        assert!(
            shell(t, &bash, &["--norc", "-c"], &direct)
                .lines()
                .any(|l| l.trim() == "alpha")
        );
    });
}

#[test]
fn zsh_completes_git_codex() {
    let Some(zsh) = tool("zsh") else { return };
    each_git(|t| {
        completion_env(t);
        let ours = Path::new(ROOT).join("completions/_git-codex");
        // zsh's _describe only works inside a completion widget: stand in for it and print
        // what our completer offers, with words as git's _git hands them over.
        let script = format!(
            "compdef() {{ }}; _describe() {{ shift 2; print -rl -- ${{(P)1}}; }}; source {}; \
             words=(codex ses); CURRENT=2; _git-codex; \
             words=(codex session review ''); CURRENT=4; _git-codex",
            ours.display()
        );
        let out = shell(t, &zsh, &["-f", "-c"], &script);
        assert!(out.lines().any(|l| l.starts_with("session")), "{out}");
        assert!(
            out.lines().any(|l| l == "alpha") && out.lines().any(|l| l == "beta"),
            "{out}"
        );
    });
}

#[test]
fn fish_completes_git_codex() {
    let Some(fish) = tool("fish") else { return };
    each_git(|t| {
        completion_env(t);
        let ours = Path::new(ROOT).join("completions/git-codex.fish");
        let script = format!(
            "source {}; complete --do-complete 'git codex ses'; complete --do-complete 'git codex session review '; complete --do-complete 'git-codex session show '",
            ours.display()
        );
        let out = shell(t, &fish, &["--no-config", "-c"], &script);
        assert!(out.lines().any(|l| l.starts_with("session")), "{out}");
        assert!(
            out.lines().filter(|l| l.starts_with("alpha")).count() >= 2,
            "{out}"
        );
    });
}
