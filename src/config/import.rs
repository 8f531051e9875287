//! `config import`: the seed article's `.codex-config.json` template into our TOML keys.

use serde_json::Value as Json;
use toml::Value;

use super::duration::format_seconds;
use super::schema;

/// What an import produced: the keys it mapped and what it could not map, with why.
#[derive(Debug, Default)]
pub struct Imported {
    pub mapped: Vec<(&'static str, Value)>,
    pub unmapped: Vec<String>,
}

/// Maps the template. Values are checked like any config value; a bad one is reported unmapped.
pub fn from_template(json: &Json) -> Imported {
    let mut out = Imported::default();
    let Some(root) = json.as_object() else {
        out.unmapped
            .push("(top level): expected a JSON object".into());
        return out;
    };
    for (section, body) in root {
        let Some(fields) = body.as_object() else {
            out.unmapped.push(format!("{section}: expected an object"));
            continue;
        };
        for (field, value) in fields {
            let path = format!("{section}.{field}");
            match map_field(section, field, value) {
                Mapping::Key(key, converted) => out.push(&path, key, converted),
                Mapping::Platform(os, inner) => out.map_platform(&path, os, inner),
                Mapping::Ignored(why) => out.unmapped.push(format!("{path}: {why}")),
            }
        }
    }
    out
}

enum Mapping<'a> {
    Key(&'static str, Option<Value>),
    Platform(&'a str, &'a Json),
    Ignored(String),
}

fn map_field<'a>(section: &str, field: &'a str, value: &'a Json) -> Mapping<'a> {
    let text = || value.as_str().map(|s| Value::String(s.to_string()));
    let boolean = || value.as_bool().map(Value::Boolean);
    let strings = || {
        value.as_array().and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(|s| Value::String(s.to_string())))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
        })
    };
    match (section, field) {
        ("sessionOrchestration", "maxParallelAgents") => {
            Mapping::Key("session.max_parallel", value.as_i64().map(Value::Integer))
        }
        ("sessionOrchestration", "isolationStrategy") => match value.as_str() {
            Some("git-worktree") => {
                Mapping::Ignored("always git worktrees here; nothing to set".into())
            }
            _ => Mapping::Ignored(format!(
                "unsupported isolation strategy {value}; git-codex uses git worktrees"
            )),
        },
        ("sessionOrchestration", "worktreeBasePath") => Mapping::Key(
            "session.worktree_base",
            value
                .as_str()
                .map(|s| Value::String(s.strip_prefix("./").unwrap_or(s).to_string())),
        ),
        ("sessionOrchestration", "cleanupOnExit") => {
            Mapping::Key("session.cleanup_on_exit", boolean())
        }
        ("sessionOrchestration", "autoCleanupTimeoutMs") => Mapping::Key(
            "session.ttl",
            value.as_u64().map(|ms| match ms / 1000 {
                0 => Value::String("never".into()),
                secs => Value::String(format_seconds(secs).replace(' ', "")),
            }),
        ),
        ("sandboxPolicy", "defaultMode") => Mapping::Key("sandbox.mode", text()),
        ("sandboxPolicy", "networkAccess") => match value.as_bool() {
            Some(false) => {
                Mapping::Ignored("network access follows sandbox.mode (\"strict\" = off)".into())
            }
            Some(true) => Mapping::Key(
                "sandbox.mode",
                Some(Value::String("network-enabled".into())),
            ),
            None => Mapping::Key("sandbox.mode", None),
        },
        ("sandboxPolicy", "allowedDomains") => Mapping::Key("sandbox.allowed_domains", strings()),
        ("sandboxPolicy", "environmentVariable") => Mapping::Key("sandbox.env_var", text()),
        ("reviewPipeline", "autoStageChanges") => Mapping::Key("review.auto_stage", boolean()),
        ("reviewPipeline", "requireApproval") => Mapping::Key("review.require_approval", boolean()),
        ("reviewPipeline", "diffSummaryFormat") => Mapping::Key("review.summary_format", text()),
        ("reviewPipeline", "hookScript") => Mapping::Key("review.hook", text()),
        ("reviewPipeline", "mergeProtection") => Mapping::Key(
            "review.protected",
            match value {
                Json::String(s) => Some(Value::Array(vec![Value::String(s.clone())])),
                _ => strings(),
            },
        ),
        ("platformOverrides", os) => Mapping::Platform(os, value),
        _ => Mapping::Ignored("no git-codex setting corresponds".into()),
    }
}

impl Imported {
    fn push(&mut self, path: &str, key: &'static str, value: Option<Value>) {
        let Some(def) = schema::find(key) else {
            self.unmapped
                .push(format!("{path}: internal: no key {key}"));
            return;
        };
        match value {
            None => self
                .unmapped
                .push(format!("{path}: wrong JSON type for {key}")),
            Some(value) => match def.check(&value) {
                Ok(()) => {
                    self.mapped.retain(|(k, _)| *k != key);
                    self.mapped.push((key, value));
                }
                Err(why) => self.unmapped.push(format!("{path}: {key}: {why}")),
            },
        }
    }

    fn map_platform(&mut self, path: &str, os: &str, body: &Json) {
        let Some(fields) = body.as_object() else {
            self.unmapped.push(format!("{path}: expected an object"));
            return;
        };
        for (field, value) in fields {
            let inner = format!("{path}.{field}");
            let key = format!("platform.{os}.recommended_client");
            match (field.as_str(), schema::find(&key)) {
                ("recommendedClient", Some(def)) => self.push(
                    &inner,
                    def.key,
                    value.as_str().map(|s| Value::String(s.into())),
                ),
                ("recommendedClient", None) => self
                    .unmapped
                    .push(format!("{inner}: unknown platform '{os}'")),
                _ => self
                    .unmapped
                    .push(format!("{inner}: no git-codex setting corresponds")),
            }
        }
    }

    /// The mapped keys as a TOML document, grouped by section.
    pub fn to_toml(&self) -> String {
        let mut root = toml::Table::new();
        for (key, value) in &self.mapped {
            let parts: Vec<&str> = key.split('.').collect();
            insert_path(&mut root, &parts, value.clone());
        }
        toml::to_string(&root).unwrap_or_default()
    }
}

fn insert_path(table: &mut toml::Table, parts: &[&str], value: Value) {
    match parts {
        [] => {}
        [leaf] => {
            table.insert((*leaf).to_string(), value);
        }
        [head, rest @ ..] => {
            let entry = table
                .entry((*head).to_string())
                .or_insert_with(|| Value::Table(toml::Table::new()));
            if let Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}
