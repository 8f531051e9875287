//! `git codex hooks install | uninstall | status [--server]`.

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::json;

use crate::cli::{HooksCommand, HooksInstallArgs, HooksStatusArgs};
use crate::config::Settings;
use crate::context::{Ctx, current_dir};
use crate::error::UserError;
use crate::git::Git;
use crate::hooks::{self, CLIENT_HOOKS, SERVER_HOOKS, health};
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
    hooks::refresh_cache(&ctx.state, &ctx.state.briefs()?)?;
    let chained: Vec<String> = states
        .iter()
        .filter(|s| s.chained)
        .map(|s| match s.manager {
            Some(manager) => format!("{manager}'s {}", s.name),
            None => format!("your {}", s.name),
        })
        .collect();
    let run_by: Vec<String> = states
        .iter()
        .filter_map(|s| Some(format!("{} runs {}", s.manager?, s.ours_at.as_ref()?)))
        .collect();
    let mut line = format!("Installed git-codex hooks in {dir}");
    if !chained.is_empty() {
        line.push_str(&format!(" (chaining {})", chained.join(", ")));
    }
    if !run_by.is_empty() {
        line.push_str(&format!(" ({})", run_by.join(", ")));
    }
    output::note(&line);
    if let Ok(health) = health::check(&ctx.git, &ctx.paths.main_root, &ctx.paths.common_dir)
        && let Some(lfs) = health::lfs_problem(&health, &ctx.paths.main_root, &ctx.paths.common_dir)
    {
        output::warning(&lfs);
        output::hint(health::LFS_REPAIR);
    }
    // Session worktrees resolve a relative core.hooksPath against their own root: each gets
    // the main worktree's hooks dir.
    let pin = ctx.git.hooks_pin(&ctx.paths.main_root)?;
    for record in ctx.state.records()?.0 {
        if record.worktree.is_dir()
            && let Err(err) = ctx.git.apply_hooks_pin(&pin, &record.worktree)
        {
            output::warning(&format!(
                "could not point session '{}' at {dir}: {err:#}",
                record.id
            ));
        }
    }
    Ok(())
}

fn install(args: &HooksInstallArgs) -> anyhow::Result<()> {
    if !args.server {
        let ctx = Ctx::open(&[])?;
        if ctx.ensure_state()? {
            super::init::protect_default_branch(&ctx)?;
        }
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
    // Shims left in the default dir when a manager moved core.hooksPath would run again
    // the day it moves back.
    let default = place.state.root.parent().map(|common| common.join("hooks"));
    if let Some(default) = default.filter(|d| *d != place.hooks_dir && d.is_dir()) {
        hooks::uninstall(&default, place.names)?;
    }
    let _ = fs_err::remove_file(place.state.root.join("hooks-cache.sh"));
    let _ = fs_err::remove_file(place.state.root.join(hooks::CACHE_SUM_FILE));
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
    let git = Git::from_env();
    let cwd = current_dir()?;
    if args.server {
        return server_status(&place, args.json);
    }
    let common = place
        .state
        .root
        .parent()
        .unwrap_or(&place.state.root)
        .to_owned();
    let health = health::check(&git, &cwd, &common)?;
    let records = place.state.records().map(|(r, _)| r).unwrap_or_default();
    let worktrees: Vec<_> = records.into_iter().map(|r| (r.id, r.worktree)).collect();
    let problem = health::session_off_dir(&health.dir, &worktrees);
    let lfs = health::lfs_problem(&health, &cwd, &common);
    let problems = health.problems();
    let shim_binary =
        health.states.iter().find(|s| s.effective()).and_then(|s| {
            hooks::shim_binary(&health.dir.join(s.ours_at.as_ref().unwrap_or(&s.name)))
        });
    if args.json {
        return output::json(&json!({
            "schema": 1,
            "hooksDir": health.dir,
            "hooks": health.states,
            "manager": health.dir_manager.map(|m| m.name()),
            "effective": problem.is_none() && problems.is_empty(),
            "problem": problem,
            "problems": problems,
            "lfsProblem": lfs,
            "binary": shim_binary,
            "binaryMissing": health.binary_missing,
        }));
    }
    let by = health
        .dir_manager
        .map(|m| format!(" ({}'s)", m.name()))
        .unwrap_or_default();
    output::data(&format!("hooks dir: {}{by}", health.dir));
    for s in &health.states {
        output::data(&format!("{:<22} {}", s.name, describe(s, &health.dir)));
    }
    for line in &problems {
        output::warning(line);
    }
    if !problems.is_empty() {
        output::hint(&health.repair());
    }
    if let Some(problem) = problem {
        output::warning(&problem);
    }
    if let Some(lfs) = lfs {
        output::warning(&lfs);
        output::hint(health::LFS_REPAIR);
    }
    Ok(())
}

/// One hook's line in `hooks status`.
fn describe(state: &hooks::HookState, dir: &Utf8Path) -> String {
    let chained = match (state.chained, state.manager) {
        (true, Some(manager)) => format!(" (chains {manager}'s hook)"),
        (true, None) => " (chains your hook)".to_string(),
        _ => String::new(),
    };
    match (state.state, &state.ours_at, state.manager) {
        ("ours", Some(at), Some(manager)) => format!("installed ({manager} runs it as {at})"),
        ("ours", _, _) => format!("installed{chained}"),
        _ => format!("not in place: {}", health::describe_missing(state, dir)),
    }
}

fn server_status(place: &Place, json_out: bool) -> anyhow::Result<()> {
    let states = hooks::status(&place.hooks_dir, place.names);
    let installed = states.iter().all(|s| s.effective());
    let shim_binary = hooks::shim_binary(&place.hooks_dir.join("pre-receive"));
    let binary_missing =
        shim_binary.as_ref().is_some_and(|b| !b.exists()) && which::which("git-codex").is_err();
    if json_out {
        return output::json(&json!({
            "schema": 1,
            "hooksDir": place.hooks_dir,
            "hooks": states,
            "effective": installed && !binary_missing,
            "problem": null,
            "binary": shim_binary,
            "binaryMissing": binary_missing,
        }));
    }
    output::data(&format!("hooks dir: {}", place.hooks_dir));
    for s in &states {
        output::data(&format!("{:<22} {}", s.name, describe(s, &place.hooks_dir)));
    }
    if binary_missing {
        output::warning("the shims' git-codex binary is gone and none is on PATH: hooks only warn");
    }
    Ok(())
}
