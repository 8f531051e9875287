//! The README cannot rot: its walk-through runs as written, and its config reference names
//! every key with its environment variable.

mod common;

use common::{each_git, run};

const README: &str = include_str!("../README.md");

fn walkthrough() -> &'static str {
    let start = README
        .find("<!-- walkthrough -->")
        .expect("a walk-through marker");
    let block = &README[start..];
    let open = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let close = block[open..].find("\n```").expect("the block ends");
    &block[open..open + close]
}

#[test]
fn the_walkthrough_runs_as_written() {
    each_git(|t| {
        let out = std::process::Command::new("bash")
            .env_clear()
            .envs(t.vars())
            .current_dir(t.root())
            .args(["-e", "-o", "pipefail", "-c", walkthrough()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the walk-through failed:\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("refusing to move refs/heads/main"),
            "the plain merge was refused: {stderr}"
        );
        assert!(stdout.contains("Merge session 'fix-login'"), "{stdout}");
        let demo = t.root().join("demo");
        assert!(
            demo.join("login.txt").is_file(),
            "the agent's work landed on main"
        );
        assert!(!demo.join(".codex-worktrees/wt-add-tests").exists());
    });
}

#[test]
fn the_config_reference_names_every_key() {
    each_git(|t| {
        let (code, out, _) = run(t.codex(&["config", "list"]));
        assert_eq!(code, 0);
        for line in out.lines() {
            let key = line.split('=').next().unwrap();
            let env = format!("GIT_CODEX_{}", key.replace('.', "_").to_uppercase());
            let row = README
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` |")))
                .unwrap_or_else(|| panic!("{key} is not in the README"));
            assert!(row.contains(&env), "{key}: {env} missing in {row}");
        }
    });
}
