//! `git codex init`: state dir, commented default config, excludes, hooks. Idempotent.

use crate::context::Ctx;
use crate::output;

pub fn run() -> anyhow::Result<()> {
    let ctx = Ctx::open(&[])?;
    if ctx.ensure_state()? {
        output::note(&format!("Initialized git-codex in {}", ctx.state.root));
    } else {
        output::note(&format!(
            "git-codex is already initialized in {}",
            ctx.state.root
        ));
    }
    protect_default_branch(&ctx)?;
    super::hooks::install_client(&ctx)?;
    super::man::install_if_missing();
    Ok(())
}

/// While `review.protected` is the built-in `["main"]`, the branch the repository really
/// uses (`master`, `trunk`: `origin/HEAD`, else the main worktree's) is what gets protected,
/// written into the repository's config. A pattern that matches no branch is a warning.
pub fn protect_default_branch(ctx: &Ctx) -> anyhow::Result<()> {
    let defaulted = ctx
        .settings
        .get("review.protected")
        .is_some_and(|(_, origin)| matches!(origin, crate::config::Origin::Default));
    let mut protected: Vec<String> = ctx.config.review.protected.to_strings();
    if defaulted
        && let Some(branch) = ctx.reader.default_branch()
        && !protected.contains(&branch)
        && crate::config::protected::ProtectedPatterns::parse(std::slice::from_ref(&branch)).is_ok()
    {
        let value = toml::Value::Array(vec![toml::Value::String(branch.clone())]);
        crate::config::edit::set_key(&ctx.state.config_file(), "review.protected", &value)?;
        output::note(&format!(
            "git-codex: protecting '{branch}', this repository's default branch (review.protected)"
        ));
        protected = vec![branch];
    }
    let unmatched = super::doctor::unmatched_patterns(ctx, &protected)?;
    if !unmatched.is_empty() {
        output::warning(&format!(
            "review.protected names {} but no branch matches: nothing is protected by it yet",
            unmatched.join(", ")
        ));
    }
    Ok(())
}
