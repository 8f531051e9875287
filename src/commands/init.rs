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
    super::hooks::install_client(&ctx)?;
    super::man::install_if_missing();
    Ok(())
}
