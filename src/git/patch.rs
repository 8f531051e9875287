//! The change itself, as git shows it: `git diff <base> <tip>`, and what a person's git would
//! use to show it at a terminal (its pager, its diff colours).

use camino::Utf8Path;
use gix::ObjectId;

use super::Git;

/// The colour slots of a patch, as `color.diff.<slot>` names them, with git's defaults.
pub const COLOR_SLOTS: &[(&str, &str)] = &[
    ("meta", "\x1b[1m"),
    ("frag", "\x1b[36m"),
    ("func", ""),
    ("old", "\x1b[31m"),
    ("new", "\x1b[32m"),
    ("context", ""),
];

impl Git {
    /// `git diff base tip`, as the person's git would print it, with what could make it differ
    /// from one run to the next or run a program kept out: no external diff or textconv
    /// program (the agent's commit may name one in `.gitattributes`), no colour (added by the
    /// caller, after escaping), the usual `a/` and `b/` prefixes (the patch is read back by
    /// file), paths from the repository's root, no submodule change left out.
    pub fn patch(&self, cwd: &Utf8Path, base: ObjectId, tip: ObjectId) -> anyhow::Result<Vec<u8>> {
        let base = base.to_string();
        let tip = tip.to_string();
        self.run_bytes(
            cwd,
            &[
                // Every name that is not plain ASCII quoted, its bytes as octal escapes: two
                // names never read as one, whatever the person's core.quotePath.
                "-c",
                "core.quotePath=true",
                "diff",
                "--no-ext-diff",
                "--no-textconv",
                "--no-color",
                "--no-relative",
                // Every gitlink as its commit line, whatever .gitmodules or config say.
                "--ignore-submodules=none",
                "--submodule=short",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                &base,
                &tip,
                "--",
            ],
        )
    }

    /// The pager git would use (`GIT_PAGER`, `core.pager`, `PAGER`, else `less`); `None` when
    /// that is `cat` or empty, as git takes them.
    pub fn pager(&self, cwd: &Utf8Path) -> Option<String> {
        let mut cmd = self.command(cwd);
        // `git var` reads these from the environment the command scrubbed.
        for var in ["GIT_PAGER", "PAGER"] {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        let pager = self.run_with(cmd, &["var", "GIT_PAGER"]).ok()?;
        let pager = pager.trim();
        (!pager.is_empty() && pager != "cat").then(|| pager.to_string())
    }

    /// The escape sequence of each colour slot a patch uses, from the person's
    /// `color.diff.<slot>` or git's default; `None` when `color.diff` (or, unset, `color.ui`)
    /// turns colour off.
    pub fn diff_colors(&self, cwd: &Utf8Path) -> Option<Vec<(&'static str, String)>> {
        let listing = self
            .run_bytes(cwd, &["config", "-z", "--get-regexp", r"^color\.(ui|diff)"])
            .unwrap_or_default();
        let entries: Vec<(String, String)> = listing
            .split(|b| *b == 0)
            .filter(|i| !i.is_empty())
            .map(|item| {
                let text = String::from_utf8_lossy(item);
                let (key, value) = text.split_once('\n').unwrap_or((&text, "true"));
                (key.to_ascii_lowercase(), value.trim().to_ascii_lowercase())
            })
            .collect();
        let switch = |key: &str| entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
        if let Some(value) = switch("color.diff").or_else(|| switch("color.ui"))
            && matches!(value.as_str(), "false" | "never" | "no" | "off" | "0")
        {
            return None;
        }
        let mut colors = Vec::new();
        for (slot, default) in COLOR_SLOTS {
            let key = format!("color.diff.{slot}");
            let sequence = if entries.iter().any(|(k, _)| *k == key) {
                self.run(cwd, &["config", "--get-color", &key, "normal"])
                    .unwrap_or_default()
            } else {
                (*default).to_string()
            };
            colors.push((*slot, sequence));
        }
        Some(colors)
    }
}
