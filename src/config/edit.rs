//! Writing config files: `config set` edits in place with toml_edit so comments survive,
//! and `init` writes a commented file of every default.

use anyhow::Context as _;
use camino::Utf8Path;
use toml::Value;

use super::schema::KEYS;
use crate::error::UserError;
use crate::state::atomic_write;

/// Sets `key` (already checked) to `value` in the file at `path`, creating it if needed.
pub fn set_key(path: &Utf8Path, key: &str, value: &Value) -> anyhow::Result<()> {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).context("cannot read the config file"),
    };
    // Refuse to edit a file that is already broken: the user must see and fix that first.
    super::parse_file(path, &text)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err| UserError::bad_input(format!("invalid TOML in {path}: {err}")))?;
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else {
        return Err(UserError::bad_input(format!("invalid key '{key}'")).into());
    };
    let mut table = doc.as_table_mut();
    for part in parts {
        let entry = table
            .entry(part)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| UserError::bad_input(format!("{path}: '{part}' is not a table")))?;
    }
    let new_value = to_edit_value(value)?;
    match table.get_mut(leaf).and_then(|item| item.as_value_mut()) {
        Some(existing) => {
            // Keep the comment that trails the old value on its line.
            let decor = existing.decor().clone();
            *existing = new_value;
            *existing.decor_mut() = decor;
        }
        None => {
            table.insert(leaf, toml_edit::Item::Value(new_value));
        }
    }
    atomic_write(path, doc.to_string().as_bytes())
}

fn to_edit_value(value: &Value) -> anyhow::Result<toml_edit::Value> {
    let text = format!("v = {value}");
    let doc: toml_edit::DocumentMut = text.parse().context("internal: cannot encode value")?;
    doc.get("v")
        .and_then(|item| item.as_value())
        .cloned()
        .context("internal: cannot encode value")
}

/// The commented default `config.toml` that `init` writes: every key, commented out.
pub fn default_file_text() -> String {
    let mut out = String::from(
        "# git-codex configuration for this repository (see `git codex config list --show-origin`).\n\
         # Every key is shown with its default, commented out. Uncomment to change one.\n",
    );
    let mut section = "";
    for def in KEYS {
        let (table, name) = def.key.rsplit_once('.').unwrap_or(("", def.key));
        if table != section {
            out.push_str(&format!("\n[{table}]\n"));
            section = table;
        }
        out.push_str(&format!("# {name} = {}    # {}\n", def.default, def.doc));
    }
    out
}
