//! Settling a confined run (SPEC §7a): what the agent wrote in its own stores and its own
//! copy of the admin dir joins the repository, each part checked, and the session's branch
//! moves forward to the agent's HEAD. See [`super::confine`] for the run itself.

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;

use crate::context::Ctx;
use crate::git::worktrees::admin_dir_of;

/// After a confined run (or a run whose git-codex was killed): moves the session's new
/// objects into the shared store, moves its branch to where the agent's HEAD went when that
/// only adds commits, and attaches HEAD to the branch again. Takes the state lock. Returns a
/// warning for the person when the agent left its branch. Does nothing for a session that
/// had no confined run, or whose agent still runs.
pub fn settle(ctx: &Ctx, id: &crate::state::SessionId) -> anyhow::Result<Option<String>> {
    let objects = ctx.state.objects_dir(id.as_str());
    if !objects.is_dir() {
        return Ok(None);
    }
    let _lock = ctx.state.lock()?;
    let record = ctx.state.record(id)?;
    if record.agent.as_ref().is_some_and(|a| a.is_alive()) {
        return Ok(None);
    }
    settle_locked(ctx, &record.id, &record.branch, &record.worktree)
}

/// [`settle`] for a caller that holds the state lock and knows no agent runs (a removal).
pub fn settle_locked(
    ctx: &Ctx,
    id: &str,
    branch: &str,
    worktree: &Utf8Path,
) -> anyhow::Result<Option<String>> {
    let objects = ctx.state.objects_dir(id);
    if !objects.is_dir() {
        return Ok(None);
    }
    let imported = super::import::objects(ctx, &objects)?;
    // Every commit the agent made is the session's, the ones it reset away included.
    crate::git::ledger::record(&ctx.reader.repo, id, None, &imported.commits)?;
    let mut warnings = Vec::new();
    if imported.rejected > 0 {
        warnings.push(format!("git-codex: {} object(s) that session '{id}' wrote did not match their names and were dropped", imported.rejected));
    }
    if imported.broken > 0 {
        warnings.push(format!("git-codex: {} commit(s) that session '{id}' wrote need objects the repository does not have and were dropped", imported.broken));
    }
    let lfs = ctx.state.lfs_dir(id);
    if lfs.is_dir() {
        let dropped = super::lfs::import(ctx, &lfs)?;
        if dropped > 0 {
            warnings.push(format!("git-codex: {dropped} LFS object(s) that session '{id}' wrote did not match their names (or were no plain files) and were dropped"));
        }
    }
    // Runs before this one's git-codex wrote the admin dir itself (and had no view).
    let view = Some(ctx.state.admin_view_dir(id)).filter(|v| v.is_dir());
    if let Some(admin) = admin_dir_of(worktree, &ctx.paths.common_dir) {
        warnings.extend(settle_admin(
            ctx,
            id,
            branch,
            worktree,
            &admin,
            view.as_deref(),
        )?);
    }
    // The objects dir last: while it is there, the run is not settled.
    if let Some(view) = &view {
        remove_agents_dir(view)?;
    }
    if lfs.is_dir() {
        remove_agents_dir(&lfs)?;
    }
    remove_agents_dir(&objects)?;
    Ok((!warnings.is_empty()).then(|| warnings.join("\n")))
}

/// Mirrors the agent's `view` of the worktree's `admin` dir back, then puts HEAD on the
/// branch again (see [`reattach`]); returns the warnings for the person.
fn settle_admin(
    ctx: &Ctx,
    id: &str,
    branch: &str,
    worktree: &Utf8Path,
    admin: &Utf8Path,
    view: Option<&Utf8Path>,
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    warnings.extend(clear_planted(admin, branch)?);
    // Whether the mirror replaced the index (a copy is a new file).
    let index = || {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::symlink_metadata(admin.join("index"))
            .map(|m| (m.ino(), m.len(), m.mtime()))
            .ok()
    };
    let index_before = index();
    let mut run = super::reattach::Run {
        id,
        branch,
        worktree,
        stopped_midway: false,
        reflog_before: super::reattach::reflog(admin),
        started_on_branch: read_head(&admin.join("HEAD"))?.trim_end()
            == format!("ref: refs/heads/{branch}"),
    };
    if let Some(view) = view {
        let mirrored = super::admin::mirror_back(view, admin)?;
        warnings.extend(drop_missing_from_reflog(ctx, admin)?);
        if !mirrored.left_out.is_empty() {
            warnings.push(format!(
                "git-codex: the agent left {} in its worktree's admin dir in place of git's files: not kept",
                mirrored.left_out.join(", ")
            ));
        }
        run.stopped_midway = mirrored
            .operations
            .iter()
            .any(|name| super::admin::OPERATION_DIRS.contains(&name.trim_end_matches('/')));
        warnings.extend(operations_warning(
            id,
            &mirrored.operations,
            run.stopped_midway,
        ));
    }
    warnings.extend(clear_fifos(worktree));
    warnings.extend(super::modules::settle(ctx, id, worktree, admin)?);
    warnings.extend(reattach(ctx, &run, view, admin)?);
    if index() != index_before {
        warnings.extend(reset_a_broken_index(ctx, id, worktree)?);
    }
    Ok(warnings)
}

/// What the agent may have left in its worktree's admin dir in place of git's own files: a
/// link (to a fifo, a device, a file of the person's), a fifo or a device, which every later
/// reader, git itself included (`rebase-merge/head-name` when the person's own `git branch -D`
/// checks every worktree), would follow or block on. Such an entry holds no data of its own;
/// it is unlinked (a link's target is untouched), and a HEAD that was one points at the
/// session's branch again. Returns a warning naming what was cleared.
fn clear_planted(admin: &Utf8Path, branch: &str) -> anyhow::Result<Option<String>> {
    let cleared = remove_special_files(admin, true);
    if cleared.is_empty() {
        return Ok(None);
    }
    let head = admin.join("HEAD");
    if std::fs::symlink_metadata(&head).is_err() {
        crate::state::atomic_write(&head, format!("ref: refs/heads/{branch}\n").as_bytes())?;
    }
    let names: Vec<&str> = cleared
        .iter()
        .map(|p| p.strip_prefix(admin).map_or(p.as_str(), |p| p.as_str()))
        .collect();
    Ok(Some(format!(
        "git-codex: the agent left {} in its worktree's admin dir ({admin}) in place of git's files: cleared, HEAD on its branch",
        names.join(", ")
    )))
}

/// The warning for the operation state the agent left that was not kept (see `admin`).
fn operations_warning(id: &str, names: &[String], stopped_midway: bool) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let names = names.join(", ");
    Some(if stopped_midway {
        format!(
            "git-codex: session '{id}' left an operation in progress in its worktree ({names}): not kept, so that no git of yours goes on with it and runs what the agent wrote there (an `exec` line); its commits stay the session's, its files are as it left them"
        )
    } else {
        format!(
            "git-codex: session '{id}' left {names} in its worktree's admin dir (git cannot delete them inside a run): not kept, so no operation of the agent's goes on in your git"
        )
    })
}

/// Fifos and sockets the agent left anywhere in its worktree: git cannot track them, and git
/// (the person's, git-codex's review and prune) blocks for good opening a fifo named
/// `.gitignore` or `.gitattributes`. They hold no data. Returns a warning saying how many.
fn clear_fifos(worktree: &Utf8Path) -> Option<String> {
    let cleared = remove_special_files(worktree, false).len();
    (cleared > 0).then(|| {
        format!(
            "git-codex: removed {cleared} fifo(s) or socket(s) the agent left in its worktree {worktree} (git cannot track them; a fifo blocks git)"
        )
    })
}

/// Unlinks every fifo, socket and device under `root` (and every symlink too, with
/// `links`), never following one: links are not descended. Returns what was removed.
fn remove_special_files(root: &Utf8Path, links: bool) -> Vec<Utf8PathBuf> {
    use std::os::unix::fs::FileTypeExt as _;
    let mut removed = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let (Ok(path), Ok(kind)) =
                (Utf8PathBuf::from_path_buf(entry.path()), entry.file_type())
            else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(path);
            } else if (kind.is_fifo()
                || kind.is_socket()
                || kind.is_char_device()
                || kind.is_block_device()
                || (links && kind.is_symlink()))
                && std::fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed
}

/// The worktree's HEAD file when it is a plain file, never through a link the agent planted;
/// anything else reads as empty (no commit of the agent's to take).
pub(super) fn read_head(path: &Utf8Path) -> anyhow::Result<String> {
    Ok(crate::state::read_regular_file(path)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default())
}

/// HEAD back on the session's branch, the branch moved to the agent's commits (where the HEAD
/// of its `view` of the admin dir went, else that of the admin dir itself) when it may
/// follow them (see [`super::reattach`]).
fn reattach(
    ctx: &Ctx,
    run: &super::reattach::Run<'_>,
    view: Option<&Utf8Path>,
    admin: &Utf8Path,
) -> anyhow::Result<Option<String>> {
    let (id, branch) = (run.id, run.branch);
    let head_path = admin.join("HEAD");
    let text = read_head(&view.unwrap_or(admin).join("HEAD"))?;
    let branch_ref = format!("refs/heads/{branch}");
    let on_branch =
        || crate::state::atomic_write(&head_path, format!("ref: {branch_ref}\n").as_bytes());
    let Ok(head) = ObjectId::from_hex(text.trim_end().as_bytes()) else {
        // Still (or again) symbolic: the agent made no commit of its own. It stays on the
        // session's branch whatever the agent wrote there (`ref: refs/heads/main` would keep
        // the person's branch checked out in the agent's worktree).
        on_branch()?;
        return Ok((text.trim_end() != format!("ref: {branch_ref}")).then(|| {
            format!(
                "git-codex: session '{id}' left its worktree's HEAD as {:?}; it is on {branch} again",
                text.trim_end()
            )
        }));
    };
    if ctx.reader.repo.find_commit(head).is_err() {
        // Naming no commit the repository has, it would break the person's `log --all`, `gc`.
        on_branch()?;
        return Ok(Some(format!(
            "git-codex: session '{id}' left its worktree's HEAD at {head}, which is no commit of the repository's; it is on {branch} again"
        )));
    }
    // Where the branch cannot follow, the worktree stays where the agent left it (with the
    // index it left), as a run that wrote the admin dir itself left it.
    let detach = || match view {
        Some(_) => crate::state::atomic_write(&head_path, format!("{head}\n").as_bytes()),
        None => Ok(()),
    };
    let Some(tip) = ctx.reader.ref_target(&branch_ref)? else {
        detach()?;
        return Ok(None);
    };
    let mut note = None;
    if head != tip {
        match super::reattach::follow(ctx, run, view, head, tip)? {
            Ok(rewrote) => note = rewrote,
            Err(stays) => {
                detach()?;
                return Ok(Some(stays));
            }
        }
    }
    on_branch()?;
    Ok(note)
}

/// Drops from the worktree's HEAD reflog (which the agent wrote) each entry naming an object
/// the repository does not have (a commit of the agent's that was not taken): the person's
/// `fsck` reports every such entry as an error.
fn drop_missing_from_reflog(ctx: &Ctx, admin: &Utf8Path) -> anyhow::Result<Option<String>> {
    let path = admin.join("logs/HEAD");
    let Some(bytes) = crate::state::read_regular_file(&path)? else {
        return Ok(None);
    };
    let repo = &ctx.reader.repo;
    let known =
        |hex: &[u8]| ObjectId::from_hex(hex).is_ok_and(|id| id.is_null() || repo.has_object(id));
    let mut kept = Vec::with_capacity(bytes.len());
    let mut dropped = 0;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let mut ids = line.splitn(3, |b| *b == b' ');
        match (ids.next(), ids.next()) {
            (Some(old), Some(new)) if !known(old) || !known(new) => dropped += 1,
            _ => kept.extend_from_slice(line),
        }
    }
    if dropped == 0 {
        return Ok(None);
    }
    crate::state::atomic_write(&path, &kept)?;
    Ok(Some(format!(
        "git-codex: dropped {dropped} entry(ies) naming objects the repository does not have from the reflog of {admin}/HEAD"
    )))
}

/// The index the agent left, when it names an object the repository does not have (staged
/// with `update-index --cacheinfo` from an alternate of its own, or `--info-only`): every
/// `gc` of the person's would fail on it ("unable to read"). It is read from HEAD again; the
/// worktree's files stay as the agent left them.
fn reset_a_broken_index(
    ctx: &Ctx,
    id: &str,
    worktree: &Utf8Path,
) -> anyhow::Result<Option<String>> {
    let check = [
        "rev-list",
        "--objects",
        "--quiet",
        "--indexed-objects",
        "--single-worktree",
        "--missing=allow-promisor",
    ];
    match ctx.git.run(worktree, &check) {
        Ok(_) => return Ok(None),
        Err(err) if err.downcast_ref::<crate::git::GitFailed>().is_none() => return Err(err),
        Err(_) => {}
    }
    ctx.git.run(worktree, &["read-tree", "HEAD"])?;
    Ok(Some(format!(
        "git-codex: the index session '{id}' left named objects the repository does not have; it was read from HEAD again (the files in {worktree} are as the agent left them)"
    )))
}

/// Removes a dir the agent wrote (its store, its admin dir copy), never following a link in
/// it: first every dir in it is made the person's to change again (the agent may have taken
/// write permission away, to keep its files, or settling from ever ending).
fn remove_agents_dir(dir: &Utf8Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(next) = dirs.pop() {
        if !std::fs::symlink_metadata(&next).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let _ = std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o700));
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| Utf8PathBuf::from_path_buf(e.path()).ok()),
        );
    }
    fs_err::remove_dir_all(dir)?;
    Ok(())
}
