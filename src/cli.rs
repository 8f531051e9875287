//! Command-line types (clap derive) with their help text. No logic lives here.

use std::net::SocketAddr;

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCompleter;

#[derive(Debug, Parser)]
#[command(
    name = "git-codex",
    bin_name = "git codex",
    version,
    about = "Run several AI coding agents on one repository, each in its own worktree session",
    long_about = "git-codex gives every agent a session: a git worktree on its own branch with its own \
environment. Nothing an agent writes reaches a protected branch until a person approves that exact commit.\n\n\
Exit codes: 0 ok, 1 runtime error, 2 bad input, 3 refused by policy, 4 unknown session."
)]
pub struct Cli {
    /// When to colour output: auto, always or never (NO_COLOR is honoured)
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true, value_name = "WHEN")]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the state dir, a commented default config and the excludes (idempotent)
    #[command(after_long_help = "Example:\n  git codex init")]
    Init,
    /// Manage agent sessions (worktrees on their own branches)
    #[command(subcommand)]
    #[command(
        after_long_help = "Example:\n  git codex session add fix-login\n  git codex session list --pending"
    )]
    Session(SessionCommand),
    /// Read and change git-codex configuration
    #[command(subcommand)]
    #[command(
        after_long_help = "Example:\n  git codex config list --show-origin\n  git codex config set session.ttl 2h"
    )]
    Config(ConfigCommand),
    /// The review gate as a command: exit 3 if a range lands unapproved session commits
    #[command(
        after_long_help = "Example:\n  git codex verify origin/main..HEAD\n  git codex verify --ref main --json"
    )]
    Verify(VerifyArgs),
    /// Install, remove or inspect the git hooks that enforce the gate and prune sessions
    #[command(subcommand)]
    #[command(
        after_long_help = "Example:\n  git codex hooks status\n  git codex hooks install --server   # in a bare repository"
    )]
    Hooks(HooksCommand),
    /// Pre-flight: git, config, hooks, sandbox, domains, client, disk, orphans, approvals
    #[command(
        after_long_help = "Example:\n  git codex doctor\n  git codex doctor --json\n  git codex doctor --repair   # moves stale git locks and record-path dirs to the trash"
    )]
    Doctor(DoctorArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_long_help = "Example:\n  git codex completions bash > ~/.local/share/bash-completion/completions/git-codex\n  git codex completions zsh > ~/.zfunc/_git-codex\n  git codex completions fish > ~/.config/fish/completions/git-codex.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page, or install every page with --install
    #[command(after_long_help = "Example:\n  git codex man --install\n  git codex man | man -l -")]
    Man(ManArgs),
    /// What the hook shims call (not for people)
    #[command(hide = true)]
    Hook(HookArgs),
    /// Inside a new network namespace: bring loopback up, offer the egress proxy there, run the agent (internal)
    #[command(hide = true)]
    SandboxExec(SandboxExecArgs),
    /// Wait until the run is recorded, then become the command (internal)
    #[command(hide = true)]
    SandboxGate(SandboxGateArgs),
    /// Run the egress proxy in the foreground, logging to stderr (internal, for tests)
    #[command(hide = true)]
    SandboxProxy(SandboxProxyArgs),
}

#[derive(Debug, Args)]
pub struct SandboxExecArgs {
    /// The egress proxy's Unix socket (bound into the namespace at the same path)
    #[arg(long, value_name = "PATH", requires = "proxy_port")]
    pub proxy_socket: Option<Utf8PathBuf>,
    /// Offer the proxy inside on 127.0.0.1:PORT (and [::1]:PORT) and announce it in HTTP_PROXY…
    #[arg(long, value_name = "PORT", requires = "proxy_socket")]
    pub proxy_port: Option<u16>,
    /// Listen on this loopback ADDR:PORT inside and carry each connection through the proxy to
    /// the same address on the host (repeatable)
    #[arg(long, value_name = "ADDR:PORT", requires = "proxy_socket")]
    pub forward: Vec<SocketAddr>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SandboxGateArgs {
    /// The pipe on which git-codex says the run is recorded (without it, CMD starts at once:
    /// session.setup)
    #[arg(long, value_name = "FD")]
    pub fd: Option<i32>,
    /// End the run (everything it started) when git-codex ends: a confined run has no proxy
    /// and no settle without it
    #[arg(long)]
    pub die_with_parent: bool,
    /// End when CMD itself ends, leaving what it started in the background running
    #[arg(long)]
    pub leave: bool,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SandboxProxyArgs {
    /// Where to make the proxy's Unix socket
    #[arg(long, value_name = "PATH")]
    pub socket: Utf8PathBuf,
    /// An allowed destination, in sandbox.allowed_domains terms (repeatable)
    #[arg(long, value_name = "ENTRY")]
    pub allow: Vec<String>,
    /// Allow every public destination (network-enabled)
    #[arg(long)]
    pub allow_all: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: ShellName,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ShellName {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl ShellName {
    pub fn name(self) -> &'static str {
        match self {
            ShellName::Bash => "bash",
            ShellName::Zsh => "zsh",
            ShellName::Fish => "fish",
            ShellName::Elvish => "elvish",
            ShellName::Powershell => "powershell",
        }
    }
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page to DIR (default: <bindir>/../share/man/man1, else ~/.local/share/man/man1)
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub install: Option<Option<String>>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
    /// First repair what a crash left and git-codex can prove is safe to move: stale git
    /// locks (no live process holds them) and dirs at record paths, each moved to the trash
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Write the shims into the effective hooks dir, chaining hooks already there
    #[command(after_long_help = "Example:\n  git codex hooks install")]
    Install(HooksInstallArgs),
    /// Remove the shims and put chained hooks back as they were
    #[command(after_long_help = "Example:\n  git codex hooks uninstall")]
    Uninstall(HooksInstallArgs),
    /// Which hooks are git-codex's, chained, missing or not effective
    #[command(after_long_help = "Example:\n  git codex hooks status --json")]
    Status(HooksStatusArgs),
}

#[derive(Debug, Args)]
pub struct HooksInstallArgs {
    /// The server hook (pre-receive), for a bare repository that receives pushes
    #[arg(long)]
    pub server: bool,
}

#[derive(Debug, Args)]
pub struct HooksStatusArgs {
    /// The server hook instead of the client hooks
    #[arg(long)]
    pub server: bool,
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// The hook git ran
    pub name: String,
    /// Its arguments, as git passed them
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The range to check, `<old>..<new>` (or one revision: all of its history)
    pub range: Option<String>,
    /// The ref the range lands on; only protected refs are checked (default: the range is
    /// checked as landing on a protected branch; without a range, every protected branch)
    #[arg(long = "ref", value_name = "REF")]
    pub refname: Option<String>,
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Create a session: branch, worktree, port and record; prints the worktree path
    #[command(
        after_long_help = "Example:\n  cd \"$(git codex session add fix-login --base main --ttl 2h)\""
    )]
    Add(SessionAddArgs),
    /// List sessions with their state, age, expiry, ahead/behind and dirty flag
    #[command(
        after_long_help = "Example:\n  git codex session list\n  git codex session list --pending --json"
    )]
    List(SessionListArgs),
    /// Show one session's record, paths, port and state
    #[command(after_long_help = "Example:\n  git codex session show fix-login --json")]
    Show(SessionShowArgs),
    /// Extend a session's life
    #[command(after_long_help = "Example:\n  git codex session touch fix-login --ttl 4h")]
    Touch(SessionTouchArgs),
    /// Remove a session's worktree, snapshotting uncommitted work first
    #[command(after_long_help = "Example:\n  git codex session remove fix-login")]
    Remove(SessionRemoveArgs),
    /// Remove expired sessions and repair orphans, snapshotting work first
    #[command(after_long_help = "Example:\n  git codex session prune --dry-run")]
    Prune(SessionPruneArgs),
    /// Run an agent in a session: its environment, its network policy, its writes confined to the session, both streams logged
    #[command(
        after_long_help = "With sandbox.filesystem = \"worktree\" (the default) the agent runs under bubblewrap: it can write only its worktree, its tmp and log dirs and sandbox.writable_paths; its commits reach its branch when it ends.\n\nExample:\n  git codex session run fix-login -- codex exec \"fix the login bug\""
    )]
    Run(SessionRunArgs),
    /// Summarise what a session changed, run the review hook, approve or reject its tip
    #[command(
        after_long_help = "Example:\n  git codex session review fix-login\n  git codex session review fix-login --format html -o review.html\n  git codex session review fix-login --approve --tip 1a2b3c4d -m \"LGTM\"\n  git codex session review fix-login --reject -m \"fix the failing test in login.rs\""
    )]
    Review(SessionReviewArgs),
    /// Land an approved session on a protected branch
    #[command(
        after_long_help = "Example:\n  git codex session merge fix-login --strategy squash --remove"
    )]
    Merge(SessionMergeArgs),
    /// Bring back a removed or pruned session from its branch and snapshot
    #[command(after_long_help = "Example:\n  git codex session restore fix-login")]
    Restore(SessionRestoreArgs),
}

#[derive(Debug, Args)]
pub struct SessionAddArgs {
    /// Session id: 1-64 of letters, digits, '.', '_', '-', starting with a letter or digit
    pub id: String,
    /// Revision the session branch starts from (default: HEAD)
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Time to live after last activity, e.g. 90m, "2h 30m", 2d, PT1H; never (or 0): no expiry
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Sandbox mode for the session: strict or network-enabled
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Args)]
pub struct SessionListArgs {
    /// Only the review queue: sessions whose commits await approval (or whose approval is stale)
    #[arg(long)]
    pub pending: bool,
    /// Print JSON (schema 1) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SessionShowArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SessionTouchArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
    /// New time to live, counted from now, e.g. 90m, 2d; never (or 0): no expiry
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

#[derive(Debug, Args)]
pub struct SessionRemoveArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
    /// Remove even when the worktree is locked or its agent is still running (the agent is stopped first)
    #[arg(long)]
    pub force: bool,
    /// Keep the session branch even when it is merged
    #[arg(long)]
    pub keep_branch: bool,
}

#[derive(Debug, Args)]
pub struct SessionPruneArgs {
    /// Say what would be removed and why; change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SessionRunArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
    /// Refuse (exit 3) instead of warning when the network cannot be cut (strict mode) or the agent's writes cannot be confined here
    #[arg(long)]
    pub require_sandbox: bool,
    /// The sandbox mode for this run only (strict or network-enabled); without it, the mode the session was added with by --sandbox, else sandbox.mode
    #[arg(long, value_name = "MODE", value_parser = ["strict", "network-enabled"])]
    pub sandbox: Option<String>,
    /// The agent and its arguments, run as argv (no shell), e.g. `-- codex exec "fix it"`
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SessionReviewArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
    /// Approve the current tip (refused while the agent runs, and when the review hook failed
    /// unless --force)
    #[arg(long, conflicts_with = "reject")]
    pub approve: bool,
    /// Reject the current tip; -m's message reaches the agent's next run
    /// (CODEX_REVIEW_FEEDBACK)
    #[arg(long)]
    pub reject: bool,
    /// Approve or reject only if the session's tip is still this commit (an id or a unique
    /// prefix of one): what the review you read showed
    #[arg(long, value_name = "SHA")]
    pub tip: Option<String>,
    /// The approval's or rejection's message
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Report format: markdown (with each file's patch), json, or html (a page for a browser);
    /// without it, a summary and the patch as git shows it
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ReportFormat>,
    /// Print the summary alone, without the patch
    #[arg(long)]
    pub stat: bool,
    /// Put each file's hunks in the JSON report
    #[arg(long)]
    pub patch: bool,
    /// Write the report to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,
    /// Approve even though the review hook failed
    #[arg(long, requires = "approve")]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MergeStrategy {
    /// A merge commit (no fast-forward)
    Merge,
    /// One new commit with the session's changes
    Squash,
    /// The session's commits replayed on the target
    Rebase,
    /// Fast-forward only
    Ff,
}

#[derive(Debug, Args)]
pub struct SessionMergeArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
    /// The branch to land on (default: the first protected branch)
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// How to land the session
    #[arg(long, value_enum, default_value_t = MergeStrategy::Merge)]
    pub strategy: MergeStrategy,
    /// Remove the session once it has landed
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Args)]
pub struct SessionRestoreArgs {
    /// Session id
    #[arg(add = ArgValueCompleter::new(crate::complete::session_ids))]
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective value of KEY (e.g. session.max_parallel)
    #[command(after_long_help = "Example:\n  git codex config get session.max_parallel")]
    Get(ConfigGetArgs),
    /// Set KEY to VALUE in the repository's config file, keeping its comments
    #[command(
        after_long_help = "Example:\n  git codex config set review.protected \"main, release/*\""
    )]
    Set(ConfigSetArgs),
    /// List every key with its effective value
    #[command(after_long_help = "Example:\n  git codex config list --show-origin")]
    List(ConfigListArgs),
    /// Print the paths of the config files
    #[command(after_long_help = "Example:\n  git codex config path")]
    Path,
    /// Check every config layer and report the first problem
    #[command(after_long_help = "Example:\n  git codex config validate")]
    Validate,
    /// Convert the seed's .codex-config.json template into git-codex TOML
    #[command(after_long_help = "Example:\n  git codex config import .codex-config.json --write")]
    Import(ConfigImportArgs),
}

#[derive(Debug, Args)]
pub struct ConfigGetArgs {
    /// The key, as section.name (e.g. session.ttl)
    pub key: String,
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigSetArgs {
    /// The key, as section.name (e.g. session.ttl)
    pub key: String,
    /// The value; lists as "a, b" or a TOML list ["a", "b"]
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    /// Write the user file ($XDG_CONFIG_HOME/git-codex/config.toml) instead of the repository's
    #[arg(long)]
    pub user: bool,
}

#[derive(Debug, Args)]
pub struct ConfigListArgs {
    /// Say where each value came from (default, file, environment, command line)
    #[arg(long)]
    pub show_origin: bool,
    /// Print JSON (schema 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigImportArgs {
    /// The JSON template (.codex-config.json)
    pub file: String,
    /// Write the converted keys into the repository's config file instead of printing them
    #[arg(long)]
    pub write: bool,
}
