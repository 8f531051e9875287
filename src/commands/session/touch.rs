//! `git codex session touch <id> [--ttl D]`: extends a session's life from now.

use jiff::Timestamp;

use super::add::flag;
use super::provision::write_metadata;
use crate::cli::SessionTouchArgs;
use crate::context::Ctx;
use crate::output;
use crate::state::id;

pub fn run(args: SessionTouchArgs) -> anyhow::Result<()> {
    let id = id::parse(&args.id)?;
    let flags = match &args.ttl {
        Some(ttl) => vec![flag("session.ttl", "--ttl", ttl)?],
        None => Vec::new(),
    };
    let ctx = Ctx::open(&flags)?;
    let _lock = super::journal::lock(&ctx)?;
    let mut record = ctx.state.record(&id)?;
    record.last_activity = Timestamp::now();
    if args.ttl.is_some() {
        record.ttl_seconds = ctx.config.ttl.seconds();
    }
    ctx.state.write_record(&record)?;
    if record.worktree.is_dir() {
        write_metadata(&ctx, &record)?;
    }
    let expiry = match record.expires_at(None) {
        Some(at) => format!("expires at {at}"),
        None => "never expires".to_string(),
    };
    output::note(&format!("Touched session '{id}': {expiry}"));
    Ok(())
}
