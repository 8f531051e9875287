//! `git codex hooks install | uninstall | status [--server]`.

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::json;

use crate::cli::{HooksCommand, HooksInstallArgs, HooksStatusArgs};
use crate::config::Settings;
use crate::context::{Ctx, current_dir};
use crate::error::UserError;
use crate::git::Git;
use crate::hooks::{self, CLIENT_HOOKS, SERVER_HOOKS};
use crate::output;
use crate::state::StateDir;

pub fn run(command: HooksCommand) -> anyhow::Result<()> {
    match command {
        HooksCommand::Install(args) => install(&args),
        HooksCommand::Uninstall(args) => uninstall(&args),
        HooksCommand::Status(args) => status(&args),
    }
}

/// Where hooks go: the hooks dir and the state dir of the repository here, bare or not.
struct Place {
    hooks_dir: Utf8PathBuf,
    state: StateDir,
    names: &'static [&'static str],
}

fn place(server: bool) -> anyhow::Result<Place> {
    let git = Git::from_env();
    let cwd = current_dir()?;
    let common = git
        .run(
            &cwd,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .map_err(|_| {
            UserError::bad_input(format!("not a git repository: {cwd}"))
                .hint("run this inside the repository whose hooks you mean")
        })?;
    let bare = git.run(&cwd, &["rev-parse", "--is-bare-repository"])? == "true";
    if server != bare {
        let message = if server {
            "the server hook belongs in a bare repository that receives pushes"
        } else {
            "this is a bare repository: install the server hook with 'git codex hooks install --server'"
        };
        return Err(UserError::bad_input(message).into());
    }
    Ok(Place {
        hooks_dir: hooks::hooks_dir(&git, &cwd)?,
        state: StateDir::new(Utf8Path::new(&common)),
        names: if server { SERVER_HOOKS } else { CLIENT_HOOKS },
    })
}

/// This binary, as the shims will call it.
fn this_binary() -> anyhow::Result<Utf8PathBuf> {
    let exe = std::env::current_exe()?;
    let exe = fs_err::canonicalize(exe)?;
    Utf8PathBuf::from_path_buf(exe).map_err(|p| {
        UserError::runtime(format!(
            "the path of git-codex is not UTF-8: {}",
            p.display()
        ))
        .into()
    })
}

/// Installs the client hooks of the repository `ctx` opened; `init` calls this too.
pub fn install_client(ctx: &Ctx) -> anyhow::Result<()> {
    let dir = hooks::hooks_dir(&ctx.git, &ctx.paths.main_root)?;
    let states = hooks::install(&dir, CLIENT_HOOKS, &this_binary()?, &ctx.state.root)?;
    hooks::refresh_cache(&ctx.state, &ctx.state.records()?.0)?;
    let chained: Vec<&str> = states
        .iter()
        .filter(|s| s.chained)
        .map(|s| s.name.as_str())
        .collect();
    let mut line = format!("Installed git-codex hooks in {dir}");
    if !chained.is_empty() {
        line.push_str(&format!(" (chaining your {})", chained.join(", ")));
    }
    output::note(&line);
    if let Some(problem) = hooks::worktree_problem(&ctx.git, &ctx.paths.main_root) {
        output::warning(&problem);
        output::hint(
            "point core.hooksPath at an absolute path, or track the hooks dir, so session worktrees run the hooks",
        );
    }
    Ok(())
}

fn install(args: &HooksInstallArgs) -> anyhow::Result<()> {
    if !args.server {
        let ctx = Ctx::open(&[])?;
        ctx.ensure_state()?;
        return install_client(&ctx);
    }
    let place = place(true)?;
    fs_err::create_dir_all(&place.state.root)?;
    // What the server hook will read: the server's own file only.
    Settings::load_server(&place.state.config_file())?;
    hooks::install(
        &place.hooks_dir,
        place.names,
        &this_binary()?,
        &place.state.root,
    )?;
    output::note(&format!(
        "Installed the git-codex server hook in {}",
        place.hooks_dir
    ));
    Ok(())
}

fn uninstall(args: &HooksInstallArgs) -> anyhow::Result<()> {
    crate::sandbox::context::refuse_in_session("uninstall the hooks")?;
    let place = place(args.server)?;
    let kept = hooks::uninstall(&place.hooks_dir, place.names)?;
    let _ = fs_err::remove_file(place.state.root.join("hooks-cache.sh"));
    output::note(&format!(
        "Removed the git-codex hooks from {}",
        place.hooks_dir
    ));
    for name in kept {
        output::warning(&format!("{name} is not git-codex's; left as it is"));
    }
    Ok(())
}

fn status(args: &HooksStatusArgs) -> anyhow::Result<()> {
    let place = place(args.server)?;
    let states = hooks::status(&place.hooks_dir, place.names);
    let git = Git::from_env();
    let cwd = current_dir()?;
    let problem = if args.server {
        None
    } else {
        hooks::worktree_problem(&git, &cwd)
    };
    let installed: Vec<&str> = states
        .iter()
        .filter(|s| s.state == "ours")
        .map(|s| s.name.as_str())
        .collect();
    let shim_binary = installed
        .first()
        .and_then(|name| hooks::shim_binary(&place.hooks_dir.join(name)));
    let binary_missing =
        shim_binary.as_ref().is_some_and(|b| !b.exists()) && which::which("git-codex").is_err();
    if args.json {
        return output::json(&json!({
            "schema": 1,
            "hooksDir": place.hooks_dir,
            "hooks": states,
            "effective": problem.is_none() && installed.len() == states.len() && !binary_missing,
            "problem": problem,
            "binary": shim_binary,
            "binaryMissing": binary_missing,
        }));
    }
    output::data(&format!("hooks dir: {}", place.hooks_dir));
    for s in &states {
        let chained = if s.chained { " (chains your hook)" } else { "" };
        let word = match s.state {
            "ours" => "installed",
            "foreign" => "not installed: another hook is there",
            _ => "missing",
        };
        output::data(&format!("{:<22} {word}{chained}", s.name));
    }
    if let Some(problem) = problem {
        output::warning(&problem);
    }
    if binary_missing {
        output::warning("the shims' git-codex binary is gone and none is on PATH: hooks only warn");
    }
    Ok(())
}
