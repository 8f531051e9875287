//! Filesystem confinement (SPEC §7a, `sandbox.filesystem = "worktree"`): the agent runs in a
//! bubblewrap mount namespace where everything is read-only except its session's worktree,
//! its tmp and log dirs, its worktree's admin dir under `.git/worktrees/`, and an object
//! directory of its own.
//!
//! How its commits still work: during the run the agent sees an admin dir of its own (a copy,
//! see [`super::admin`]) whose HEAD is detached at the branch tip (moving a detached HEAD
//! writes only the admin dir), git writes new objects to the session's own object directory
//! (`GIT_OBJECT_DIRECTORY`) while reading the shared store as a read-only alternate, and
//! git-lfs its objects to an LFS store of the session's (see [`super::lfs`]). The shared admin
//! dir stays as it was, naming only shared objects, so the person's history-wide commands
//! work throughout. Afterwards [`settle`] checks every new object against its name, copies it
//! into the shared store, mirrors the agent's admin dir back, moves the session's branch
//! forward to where the agent's HEAD went, and attaches HEAD to the branch again. So the agent
//! can never delete or rewrite a shared object, nor move any ref: not `main`, not an approval,
//! not another session's branch. The files that tie the worktree to the repository (`.git`,
//! `commondir`, `gitdir`, `config.worktree`) are mounted read-only on top, so the agent cannot
//! point git-codex's later git commands at a repository (and config) of its own making.

use std::path::PathBuf;
use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};
use gix::ObjectId;
use gix::objs::{Find as _, Write as _};

use crate::context::Ctx;
use crate::git::refs::RefUpdate;
use crate::git::worktrees::admin_dir_of;
use crate::state::SessionRecord;

/// Whether, and how, the agent's writes are confined.
#[derive(Debug, Clone)]
pub struct FsPlan {
    pub bwrap: Option<PathBuf>,
    /// Why the filesystem cannot be confined, when confinement was asked for.
    pub problem: Option<String>,
}

impl FsPlan {
    pub fn confined(&self) -> bool {
        self.bwrap.is_some()
    }
}

/// Everything read-only, a `/dev` of its own (no terminal of the person's in it), and a pid
/// namespace of its own: the agent cannot signal or trace git-codex, which runs it from
/// outside, nor any other process.
const BASE: [&str; 9] = [
    // A user namespace of its own, even for a person who runs git-codex as root: with
    // CAP_SYS_ADMIN over the real one the agent could remount `/` writable, unmount what
    // hides the person's sockets, or push keys into any terminal (TIOCSTI). Its capabilities
    // are its namespace's only, so an agent's own sandbox (Codex's bwrap) still works inside.
    "--unshare-user",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--unshare-pid",
    "--proc",
    "/proc",
];

/// Where the person's sockets and scratch files live (tmux, ssh-agent, the D-Bus session bus,
/// gpg-agent, docker, X11): the agent gets empty private ones instead. What it needs from
/// under them (a repository in `/tmp`, say) is shown again read-only.
pub const PRIVATE_DIRS: [&str; 4] = ["/tmp", "/var/tmp", "/run", "/var/run"];

/// Finds bubblewrap and checks that it can make a mount namespace here.
pub fn plan(wanted: bool) -> FsPlan {
    if !wanted {
        return FsPlan {
            bwrap: None,
            problem: None,
        };
    }
    let Ok(bwrap) = which::which("bwrap") else {
        return FsPlan {
            bwrap: None,
            problem: Some("bubblewrap (bwrap) is not installed".to_string()),
        };
    };
    if super::netns::probe(Command::new(&bwrap).args(BASE).args(["--", "true"])) {
        FsPlan {
            bwrap: Some(bwrap),
            problem: None,
        }
    } else {
        FsPlan {
            bwrap: None,
            problem: Some(
                "bwrap cannot make a mount namespace here (no user namespaces?)".to_string(),
            ),
        }
    }
}

/// What a confined agent may write, and the object store it borrows.
#[derive(Debug, Clone)]
pub struct Confinement {
    pub bwrap: PathBuf,
    pub worktree: Utf8PathBuf,
    pub admin: Utf8PathBuf,
    /// The agent's own copy of `admin`, mounted over it.
    pub admin_view: Utf8PathBuf,
    pub objects: Utf8PathBuf,
    /// The agent's own Git LFS store.
    pub lfs: Utf8PathBuf,
    /// The agent's PATH, with git-codex's `git` first; `None` leaves the person's.
    pub path: Option<String>,
    pub shared_objects: Utf8PathBuf,
    pub writable: Vec<Utf8PathBuf>,
    /// Files the agent must not read: the person's signing key.
    pub hidden: Vec<Utf8PathBuf>,
    /// What the agent may read that lies under a private dir (the repository, `$HOME`, this
    /// binary), shown again read-only.
    pub keep: Vec<Utf8PathBuf>,
    /// The person's listening sockets outside the private dirs, each hidden under `/dev/null`.
    pub sockets: Vec<std::path::PathBuf>,
    /// The egress proxy's socket, the one the agent may reach.
    pub proxy_socket: Option<Utf8PathBuf>,
    /// Dirs of the person's home shown empty: where sockets appear while the agent runs
    /// (an ssh ControlMaster, gpg-agent, screen) and the keys next to them.
    pub private: Vec<Utf8PathBuf>,
}

/// In the person's home: what [`Confinement::private`] hides.
const HOME_PRIVATE: [&str; 3] = [".ssh", ".gnupg", ".screen"];

/// Readies session `record` for a confined run by `bwrap` (under the state lock): its object
/// directory and LFS store, its own admin dir with HEAD detached at the branch tip,
/// `config.worktree` present so it can be pinned, and the `git` on its PATH.
pub fn prepare(
    ctx: &Ctx,
    bwrap: &std::path::Path,
    record: &SessionRecord,
    writable: Vec<Utf8PathBuf>,
    keep: Vec<Utf8PathBuf>,
    proxy_socket: Option<Utf8PathBuf>,
    home: Option<Utf8PathBuf>,
) -> anyhow::Result<Confinement> {
    let admin = admin_dir_of(&record.worktree, &ctx.paths.common_dir).ok_or_else(|| {
        crate::error::UserError::runtime(format!(
            "the worktree of session '{}' is not one of this repository's ({})",
            record.id, record.worktree
        ))
        .hint("run 'git codex doctor'")
    })?;
    let objects = ctx.state.objects_dir(&record.id);
    fs_err::create_dir_all(&objects)?;
    let lfs = ctx.state.lfs_dir(&record.id);
    fs_err::create_dir_all(&lfs)?;
    let pinned = admin.join("config.worktree");
    match std::fs::symlink_metadata(&pinned) {
        Ok(meta) if meta.is_file() => {}
        found => {
            // Not a plain file (a link, say): made anew, never written through.
            match found {
                Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(&pinned)?,
                Ok(_) => fs_err::remove_file(&pinned)?,
                Err(_) => {}
            }
            fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&pinned)?;
        }
    }
    // Older runs wrote the admin dir itself: its HEAD is read only as a plain file.
    let mut head = read_head(&admin.join("HEAD"))?;
    if head.trim_end() == format!("ref: refs/heads/{}", record.branch)
        && let Some(tip) = ctx
            .reader
            .ref_target(&format!("refs/heads/{}", record.branch))?
    {
        head = format!("{tip}\n");
    }
    let admin_view = ctx.state.admin_view_dir(&record.id);
    super::admin::make_view(&admin, &admin_view, &head)?;
    let path =
        super::git_shim::install(&ctx.state.bin_dir(), std::env::var("PATH").ok().as_deref())?;
    Ok(Confinement {
        bwrap: bwrap.to_path_buf(),
        worktree: record.worktree.clone(),
        admin,
        admin_view,
        objects,
        lfs,
        path,
        shared_objects: ctx.paths.common_dir.join("objects"),
        hidden: signing_key_files(ctx),
        sockets: super::sockets::to_hide(
            &writable,
            &keep,
            proxy_socket.as_deref(),
            home.as_deref(),
        ),
        private: home
            .iter()
            .flat_map(|h| HOME_PRIVATE.iter().map(move |d| h.join(d)))
            .filter(|d| d.is_dir())
            .collect(),
        writable,
        keep,
        proxy_socket,
    })
}

/// The key file git signs with (`user.signingkey` as a path, and the private half of a
/// `.pub`): an agent that could read it could sign an approval in the person's name.
fn signing_key_files(ctx: &Ctx) -> Vec<Utf8PathBuf> {
    let Ok(key) = ctx.git.run(
        &ctx.paths.main_root,
        &["config", "--get", "user.signingkey"],
    ) else {
        return Vec::new();
    };
    let key = key.trim();
    if !key.starts_with('/') && !key.starts_with("~/") {
        // `key::…`, or a name for the ssh agent: no file to hide.
        return Vec::new();
    }
    let path = crate::config::expand_path(key, Utf8Path::new("/"));
    let mut files = vec![path.clone()];
    if let Some(private) = path.as_str().strip_suffix(".pub") {
        files.push(Utf8PathBuf::from(private));
    }
    files.retain(|f| f.is_file());
    files
}

/// The bwrap arguments that confine the agent (everything before `--`).
pub fn bwrap_args(c: &Confinement, cut_network: bool) -> Vec<String> {
    let mut args: Vec<String> = BASE.map(String::from).to_vec();
    if cut_network {
        args.push("--unshare-net".to_string());
    }
    for dir in PRIVATE_DIRS {
        // `/var/run` is mostly a link to `/run`, made private with it.
        if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            args.extend(["--tmpfs".to_string(), dir.to_string()]);
        }
    }
    let mut bind = |flag: &str, path: &Utf8Path| {
        args.extend([flag.to_string(), path.to_string(), path.to_string()]);
    };
    for path in c
        .keep
        .iter()
        .filter(|p| under_private_dir(p) && !PRIVATE_DIRS.contains(&p.as_str()))
    {
        if path.exists() {
            bind("--ro-bind", path);
        }
    }
    for dir in &c.private {
        args.extend(["--tmpfs".to_string(), dir.to_string()]);
    }
    let mut bind = |flag: &str, path: &Utf8Path| {
        args.extend([flag.to_string(), path.to_string(), path.to_string()]);
    };
    bind("--bind", &c.worktree);
    args.extend([
        "--bind".to_string(),
        c.admin_view.to_string(),
        c.admin.to_string(),
    ]);
    if super::admin::has_modules(&c.admin) {
        let modules = c.admin.join(super::admin::MODULES);
        args.extend([
            "--bind".to_string(),
            modules.to_string(),
            modules.to_string(),
        ]);
    }
    let mut bind = |flag: &str, path: &Utf8Path| {
        args.extend([flag.to_string(), path.to_string(), path.to_string()]);
    };
    bind("--bind", &c.objects);
    bind("--bind", &c.lfs);
    for path in &c.writable {
        bind("--bind", path);
    }
    // Pinned read-only on top of the writable dirs: what ties the worktree to the repository.
    bind("--ro-bind", &c.worktree.join(".git"));
    for name in ["commondir", "gitdir", "config.worktree"] {
        let path = c.admin.join(name);
        if path.exists() {
            bind("--ro-bind", &path);
        }
    }
    if let Some(socket) = &c.proxy_socket {
        // Its own proxy only: the dir where every session's proxy socket lives shows empty
        // but for this one (another session's, even one started later, would be a way out
        // under that session's policy).
        if let Some(dir) = socket.parent() {
            args.extend(["--tmpfs".to_string(), dir.to_string()]);
        }
        args.extend(["--bind".to_string(), socket.to_string(), socket.to_string()]);
    }
    let hidden = c
        .hidden
        .iter()
        .map(|f| f.as_std_path())
        .chain(c.sockets.iter().map(|s| s.as_path()));
    for file in hidden {
        args.extend([
            "--ro-bind".to_string(),
            "/dev/null".to_string(),
            file.to_string_lossy().into_owned(),
        ]);
    }
    args.push("--die-with-parent".to_string());
    args
}

/// Whether `path` lies in one of the dirs the agent gets a private copy of.
pub fn under_private_dir(path: &Utf8Path) -> bool {
    PRIVATE_DIRS.iter().any(|dir| path.starts_with(dir))
}

/// The environment that sends the agent's new objects (git's and git-lfs's) to its own
/// stores, and puts git-codex's `git` first on its PATH.
pub fn git_env(c: &Confinement) -> Vec<(String, String)> {
    let mut env = vec![
        ("GIT_OBJECT_DIRECTORY".to_string(), c.objects.to_string()),
        (
            "GIT_ALTERNATE_OBJECT_DIRECTORIES".to_string(),
            c.shared_objects.to_string(),
        ),
    ];
    env.extend(super::lfs::env(&c.lfs));
    if let Some(path) = &c.path {
        env.push(("PATH".to_string(), path.clone()));
    }
    env
}

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
    let (rejected, commits) = import_objects(ctx, &objects)?;
    // Every commit the agent made is the session's, the ones it reset away included.
    crate::git::ledger::record(&ctx.reader.repo, id, None, &commits)?;
    let mut warnings = Vec::new();
    if rejected > 0 {
        warnings.push(format!("git-codex: {rejected} object(s) that session '{id}' wrote did not match their names and were dropped"));
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
        warnings.extend(clear_planted(&admin, branch)?);
        if let Some(view) = &view {
            let left = super::admin::mirror_back(view, &admin)?;
            if !left.is_empty() {
                warnings.push(format!(
                    "git-codex: the agent left {} in its worktree's admin dir in place of git's files: not kept",
                    left.join(", ")
                ));
            }
        }
        warnings.extend(clear_fifos(worktree));
        warnings.extend(reattach(ctx, id, branch, view.as_deref(), &admin)?);
    }
    // The objects dir last: while it is there, the run is not settled.
    if let Some(view) = &view {
        fs_err::remove_dir_all(view)?;
    }
    if lfs.is_dir() {
        fs_err::remove_dir_all(&lfs)?;
    }
    fs_err::remove_dir_all(&objects)?;
    Ok((!warnings.is_empty()).then(|| warnings.join("\n")))
}

/// Copies every object of the session's directory into the shared store, after checking it
/// hashes to its name; returns how many did not, and the commits among them.
fn import_objects(ctx: &Ctx, objects: &Utf8Path) -> anyhow::Result<(usize, Vec<ObjectId>)> {
    // Only the session's own objects: an alternates file the agent wrote is not followed.
    let _ = fs_err::remove_dir_all(objects.join("info"));
    let mut rejected = drop_hollow_packs(objects);
    let repo = &ctx.reader.repo;
    let hash = repo.object_hash();
    let store = gix::odb::at(objects.as_std_path(), hash)?;
    let mut buf = Vec::new();
    let mut commits = Vec::new();
    for id in store.iter()? {
        let Ok(id) = id else {
            rejected += 1;
            continue;
        };
        let Ok(Some(data)) = store.try_find(&id, &mut buf) else {
            rejected += 1;
            continue;
        };
        let kind = data.kind;
        if gix::objs::compute_hash(hash, kind, data.data).ok() != Some(id) {
            rejected += 1;
            continue;
        }
        // An object the shared store already has is not the agent's making, even when it
        // wrote a copy (a commit of the person's it would claim as the session's).
        if repo.has_object(id) {
            continue;
        }
        let written = repo.objects.write_buf(kind, data.data)?;
        if written != id {
            rejected += 1;
        } else if kind == gix::object::Kind::Commit {
            commits.push(id);
        }
    }
    Ok((rejected, commits))
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
fn read_head(path: &Utf8Path) -> anyhow::Result<String> {
    Ok(crate::state::read_regular_file(path)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default())
}

/// Pack files in the agent's object dir that are not what they claim to hold: anything but a
/// plain file, or a sparse one (an index claiming millions of entries costs the agent no disk,
/// but reading them costs the person minutes). They are dropped with their pack, so settling
/// costs what the agent really wrote. Returns how many files were dropped.
fn drop_hollow_packs(objects: &Utf8Path) -> usize {
    use std::os::unix::fs::MetadataExt as _;
    let pack_dir = objects.join("pack");
    let Ok(entries) = std::fs::read_dir(&pack_dir) else {
        return 0;
    };
    let mut hollow = Vec::new();
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let allocated = meta.blocks().saturating_mul(512);
        // A little slack for the last block and filesystems that allocate lazily.
        let sparse = allocated.saturating_add(1 << 20) < meta.len();
        if !entry.file_type().is_ok_and(|t| t.is_file()) || sparse {
            hollow.push(entry.path());
        }
    }
    let mut dropped = 0;
    for path in hollow {
        // The pack and its index go together: an index without its pack is not read.
        for sibling in ["idx", "pack", "rev", "bitmap"] {
            if std::fs::remove_file(path.with_extension(sibling)).is_ok() {
                dropped += 1;
            }
        }
        if std::fs::remove_file(&path).is_ok() {
            dropped += 1;
        }
    }
    dropped
}

/// HEAD back on the session's branch, the branch moved forward to the agent's commits (where
/// the HEAD of its `view` of the admin dir went, else that of the admin dir itself).
fn reattach(
    ctx: &Ctx,
    id: &str,
    branch: &str,
    view: Option<&Utf8Path>,
    admin: &Utf8Path,
) -> anyhow::Result<Option<String>> {
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
    if head != tip {
        let forward = ctx.reader.count_exclusive(tip, &[head])? == 0;
        if !forward {
            detach()?;
            return Ok(Some(format!(
                "git-codex: session '{id}' left HEAD at {} in its worktree, which does not build on its branch {branch}; the branch stays at {} (review commits the worktree onto it)",
                &head.to_string()[..12],
                &tip.to_string()[..12]
            )));
        }
        ctx.git.update_refs(
            &ctx.paths.main_root,
            &[RefUpdate::Set {
                name: branch_ref.clone(),
                new: head.to_string(),
                old: Some(tip.to_string()),
            }],
        )?;
    }
    on_branch()?;
    Ok(None)
}
