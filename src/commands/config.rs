//! `git codex config get|set|list|path|validate|import`.

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::json;

use crate::cli::{ConfigCommand, ConfigGetArgs, ConfigImportArgs, ConfigListArgs, ConfigSetArgs};
use crate::config::{self, Settings, display_value, edit, import, schema};
use crate::context::{check_worktree_base, current_dir, refuse_base, unsafe_worktree_base};
use crate::error::UserError;
use crate::git::read::{Reader, RepoPaths, discover_common_dir};
use crate::output;
use crate::sandbox::writable;
use crate::state::StateDir;

pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Get(args) => get(args),
        ConfigCommand::Set(args) => set(args),
        ConfigCommand::List(args) => list(args),
        ConfigCommand::Path => path(),
        ConfigCommand::Validate => validate(),
        ConfigCommand::Import(args) => import_template(args),
    }
}

/// The repository's config file (`<git-dir>/codex/config.toml`, in a bare server
/// repository too), or `None` outside a repository.
fn repo_file() -> anyhow::Result<Option<Utf8PathBuf>> {
    let cwd = current_dir()?;
    Ok(discover_common_dir(&cwd)?.map(|common| StateDir::new(&common).config_file()))
}

/// The repository's paths, or `None` outside a repository (or in a bare one, which has no
/// worktrees to put at risk).
fn repo_paths() -> anyhow::Result<Option<RepoPaths>> {
    let cwd = current_dir()?;
    Ok(Reader::discover(&cwd).ok().map(|(_, paths)| paths))
}

/// A value about to be written that needs the repository to judge: a worktree base must not
/// put it at risk (SPEC §8), a writable path must not hand the agent its git dir or the
/// person's git config (the rule each run applies).
fn check_base_value(key: &str, value: &toml::Value, target: &Utf8Path) -> anyhow::Result<()> {
    let Some(paths) = repo_paths()? else {
        return Ok(());
    };
    if let (true, toml::Value::String(base)) = (key == "session.worktree_base", value)
        && let Some(why) = unsafe_worktree_base(base, &paths)
    {
        return Err(refuse_base(base, &format!("for {target}"), &why).into());
    }
    if let (true, toml::Value::Array(items)) = (key == "sandbox.writable_paths", value) {
        let entries: Vec<String> = items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        writable::check(&paths, writable::home().as_deref(), &entries)?;
    }
    Ok(())
}

fn load() -> anyhow::Result<Settings> {
    Settings::load(repo_file()?.as_deref(), &[])
}

fn known_key(key: &str) -> anyhow::Result<&'static schema::KeyDef> {
    schema::find(key).ok_or_else(|| {
        UserError::bad_input(format!("unknown config key '{key}'"))
            .hint("run 'git codex config list' to see every key")
            .into()
    })
}

fn get(args: ConfigGetArgs) -> anyhow::Result<()> {
    let def = known_key(&args.key)?;
    let settings = load()?;
    let Some((value, origin)) = settings.get(def.key) else {
        return Err(UserError::runtime(format!("no value for '{}'", def.key)).into());
    };
    if args.json {
        output::json(&json!({
            "schema": 1,
            "key": def.key,
            "value": toml_to_json(value),
            "origin": origin.to_string(),
        }))
    } else {
        output::data(&display_value(value));
        Ok(())
    }
}

fn set(args: ConfigSetArgs) -> anyhow::Result<()> {
    crate::sandbox::context::refuse_in_session("change the configuration")?;
    let def = known_key(&args.key)?;
    let value = def.parse_text(&args.value).map_err(|why| {
        let err = UserError::bad_input(format!("config key '{}': {why}", def.key));
        if def.key == "session.worktree_base" {
            err.hint("give session.worktree_base a directory of its own, e.g. \".codex-worktrees\" (the default)")
        } else {
            err
        }
    })?;
    let target = if args.user {
        config::user_file().ok_or_else(|| {
            UserError::runtime(
                "cannot locate the user config: neither XDG_CONFIG_HOME nor HOME is set",
            )
        })?
    } else {
        repo_file()?.ok_or_else(|| {
            UserError::bad_input("not a git repository: there is no repository config to set")
                .hint("run inside a repository, or pass --user for the user config file")
        })?
    };
    check_base_value(def.key, &value, &target)?;
    edit::set_key(&target, def.key, &value)?;
    output::note(&format!(
        "Set {} = {} in {target}",
        def.key,
        display_value(&value)
    ));
    Ok(())
}

fn list(args: ConfigListArgs) -> anyhow::Result<()> {
    let settings = load()?;
    if args.json {
        let entries: Vec<_> = settings
            .iter()
            .map(|(key, value, origin)| {
                json!({"key": key, "value": toml_to_json(value), "origin": origin.to_string()})
            })
            .collect();
        return output::json(&json!({"schema": 1, "config": entries}));
    }
    for (key, value, origin) in settings.iter() {
        let line = format!("{key}={}", display_value(value));
        if args.show_origin {
            output::data(&format!("{origin}\t{line}"));
        } else {
            output::data(&line);
        }
    }
    Ok(())
}

fn path() -> anyhow::Result<()> {
    if let Some(user) = config::user_file() {
        output::data(&format!("user\t{user}"));
    }
    if let Some(repo) = repo_file()? {
        output::data(&format!("repo\t{repo}"));
    }
    Ok(())
}

fn validate() -> anyhow::Result<()> {
    let settings = load()?;
    if let Some(paths) = repo_paths()? {
        check_worktree_base(&settings, &paths)?;
        let entries = settings.config().writable_paths;
        writable::check(&paths, writable::home().as_deref(), &entries)?;
    }
    let files: Vec<String> = [config::user_file(), repo_file()?]
        .into_iter()
        .flatten()
        .filter(|p| p.exists())
        .map(|p| p.to_string())
        .collect();
    if files.is_empty() {
        output::note("config is valid (defaults only; no config file exists)");
    } else {
        output::note(&format!("config is valid: {}", files.join(", ")));
    }
    Ok(())
}

fn import_template(args: ConfigImportArgs) -> anyhow::Result<()> {
    let text = fs_err::read_to_string(&args.file).map_err(|err| {
        UserError::bad_input(format!("cannot read {}: {}", args.file, err.kind()))
            .hint("give the path of the .codex-config.json template")
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
        UserError::bad_input(format!(
            "{}: invalid JSON at line {}, column {}: {err}",
            args.file,
            err.line(),
            err.column()
        ))
    })?;
    let imported = import::from_template(&json);
    if args.write {
        let target = repo_file()?.ok_or_else(|| {
            UserError::bad_input("not a git repository: there is no repository config to write")
                .hint("run inside a repository, or leave out --write to print the TOML")
        })?;
        for (key, value) in &imported.mapped {
            check_base_value(key, value, &target)?;
        }
        for (key, value) in &imported.mapped {
            edit::set_key(&target, key, value)?;
        }
        output::note(&format!("Wrote {} keys to {target}", imported.mapped.len()));
    } else {
        print!("{}", imported.to_toml());
    }
    for why in &imported.unmapped {
        output::warning(&format!("not imported: {why}"));
    }
    Ok(())
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
