//! Filesystem confinement (SPEC §7a, `sandbox.filesystem = "worktree"`): the agent runs in a
//! bubblewrap mount namespace where everything is read-only except its session's worktree,
//! its tmp and log dirs, its worktree's admin dir under `.git/worktrees/`, and object and LFS
//! stores of its own.
//!
//! How its commits still work: during the run the agent sees an admin dir of its own (a copy,
//! see [`super::admin`]) whose HEAD is detached at the branch tip (moving a detached HEAD
//! writes only the admin dir), and the repository's object dir and LFS store are its own
//! stores, which read the shared ones, shown read-only, as their alternates (see
//! [`super::stores`]). Every other repository it uses (a clone, one it makes, a submodule)
//! keeps its objects where git keeps them anywhere else. The shared admin dir stays as it
//! was, naming only shared objects, so the person's history-wide commands work throughout.
//! Afterwards [`settle`] (see [`super::settle`]) checks every new object against its name,
//! copies it into the shared store, mirrors the agent's admin dir back, moves the session's
//! branch forward to where the agent's HEAD went, and attaches HEAD to the branch again. So
//! the agent can never delete or rewrite a shared object, nor move any ref: not `main`, not
//! an approval, not another session's branch. The files that tie the worktree to the
//! repository (`.git`, `commondir`, `gitdir`, `config.worktree`) are mounted read-only on
//! top, so the agent cannot point git-codex's later git commands at a repository (and
//! config) of its own making.

use std::path::PathBuf;
use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};

use crate::context::Ctx;
use crate::git::worktrees::admin_dir_of;
use crate::state::SessionRecord;

pub use super::settle::{settle, settle_locked};
use super::stores::Stores;

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
    /// Its object and LFS stores.
    pub stores: Stores,
    /// The `config` and `hooks` of the submodule git dirs under `admin`, kept read-only.
    pub module_pins: Vec<Utf8PathBuf>,
    /// The agent's PATH, with git-codex's `git` first; `None` leaves the person's.
    pub path: Option<String>,
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
    let stores = super::stores::prepare(ctx, &record.id)?;
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
    let mut head = super::settle::read_head(&admin.join("HEAD"))?;
    if head.trim_end() == format!("ref: refs/heads/{}", record.branch)
        && let Some(tip) = ctx
            .reader
            .ref_target(&format!("refs/heads/{}", record.branch))?
    {
        head = format!("{tip}\n");
    }
    let admin_view = ctx.state.admin_view_dir(&record.id);
    super::admin::make_view(&admin, &admin_view, &head)?;
    let modules = admin.join(super::admin::MODULES);
    super::modules::save_baseline(&modules, &ctx.state.modules_baseline_dir(&record.id))?;
    let module_pins = super::modules::read_only_paths(&modules)?;
    let path =
        super::git_shim::install(&ctx.state.bin_dir(), std::env::var("PATH").ok().as_deref())?;
    Ok(Confinement {
        bwrap: bwrap.to_path_buf(),
        worktree: record.worktree.clone(),
        admin,
        admin_view,
        stores,
        module_pins,
        path,
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
        // Their config and hooks stay the person's: the person's git runs what they name.
        for path in &c.module_pins {
            args.extend(["--ro-bind".to_string(), path.to_string(), path.to_string()]);
        }
    }
    let mut bind = |flag: &str, path: &Utf8Path| {
        args.extend([flag.to_string(), path.to_string(), path.to_string()]);
    };
    for path in &c.writable {
        bind("--bind", path);
    }
    args.extend(super::stores::bwrap_args(&c.stores));
    let mut bind = |flag: &str, path: &Utf8Path| {
        args.extend([flag.to_string(), path.to_string(), path.to_string()]);
    };
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

/// The environment a confined agent's git needs: git-codex's `git` first on its PATH. No
/// variable says where objects go (see [`super::stores`]).
pub fn git_env(c: &Confinement) -> Vec<(String, String)> {
    c.path
        .iter()
        .map(|path| ("PATH".to_string(), path.clone()))
        .collect()
}
