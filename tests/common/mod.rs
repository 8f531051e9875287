//! The one test harness: hermetic repositories in temp dirs, driven through the real
//! `git-codex` binary and real git, once for every git present (/usr/bin/git, /usr/local/bin/git).
#![allow(dead_code)]

pub mod mock_models;
pub mod sandbox;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_git-codex");

/// The gits to test against: `GIT_CODEX_GIT` alone when set, else every known git present.
pub fn gits() -> Vec<PathBuf> {
    if let Some(git) = std::env::var_os("GIT_CODEX_GIT").filter(|g| !g.is_empty()) {
        return vec![PathBuf::from(git)];
    }
    let mut found = Vec::new();
    for candidate in ["/usr/bin/git", "/usr/local/bin/git"] {
        if Path::new(candidate).is_file() {
            found.push(PathBuf::from(candidate));
        } else {
            eprintln!("note: {candidate} is absent; skipping that git");
        }
    }
    if found.is_empty() {
        found.push(PathBuf::from("git"));
    }
    found
}

/// Runs `test` once per git, each time in a fresh hermetic repository.
pub fn each_git(test: impl Fn(&TestEnv)) {
    for git in gits() {
        eprintln!("--- with {}", git.display());
        let env = TestEnv::new(&git);
        test(&env);
    }
}

pub struct TestEnv {
    pub tmp: TempDir,
    pub git: PathBuf,
    pub home: PathBuf,
    pub repo: PathBuf,
}

impl TestEnv {
    /// A repository `repo/` with one commit (README.md) on `main`.
    pub fn new(git: &Path) -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("codex-test")
            .tempdir()
            .expect("temp dir");
        // Canonical, so paths printed by git-codex compare equal.
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let home = root.join("home");
        std::fs::create_dir_all(home.join(".config")).expect("home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
        )
        .expect("gitconfig");
        let repo = root.join("repo");
        let env = TestEnv {
            tmp,
            git: git.to_path_buf(),
            home,
            repo,
        };
        env.git_in(&root, &["init", "-q", "-b", "main", "repo"]);
        env.write("README.md", "hello\n");
        env.git(&["add", "README.md"]);
        env.git(&["commit", "-q", "-m", "initial"]);
        env
    }

    pub fn root(&self) -> PathBuf {
        self.repo.parent().expect("repo has a parent").to_path_buf()
    }

    /// `git-codex ARGS` in the repository, to be spawned (a run to kill, to race, to hold):
    /// the hermetic environment, no input, output dropped unless the caller asks for it.
    pub fn codex_process(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear()
            .envs(self.vars())
            .current_dir(&self.repo)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    /// `session run <id>` in the default sandbox of an agent that runs the shell line `first`,
    /// then waits until the test lets it go ([`HeldAgent::release`], or the end of the test,
    /// passed or not). Its stderr goes to the returned log.
    pub fn hold_agent(&self, id: &str, first: &str) -> HeldAgent {
        // In the session's tmp dir: the one place outside its worktree a confined agent sees.
        let go_on = self.state_dir().join(format!("tmp/{id}/go-on"));
        let script = format!("{first}; while [ ! -e \"$TMPDIR/go-on\" ]; do sleep 0.05; done");
        let log = self.root().join(format!("run-{id}.log"));
        let child = self
            .codex_process(&[
                "session",
                "run",
                id,
                "--sandbox",
                "network-enabled",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("session run");
        HeldAgent { child, go_on, log }
    }

    /// The hermetic environment every process gets.
    pub fn vars(&self) -> Vec<(String, String)> {
        let bin_dir = Path::new(BIN).parent().expect("bin dir");
        let git_dir = self.git.parent().unwrap_or(Path::new("/usr/bin"));
        vec![
            ("HOME".into(), self.home.display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                self.home.join(".config").display().to_string(),
            ),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            (
                "GIT_CONFIG_GLOBAL".into(),
                self.home.join(".gitconfig").display().to_string(),
            ),
            ("GIT_AUTHOR_DATE".into(), "2005-04-07T22:13:13Z".into()),
            ("GIT_COMMITTER_DATE".into(), "2005-04-07T22:13:13Z".into()),
            ("LC_ALL".into(), "C".into()),
            ("TZ".into(), "UTC".into()),
            (
                "PATH".into(),
                format!("{}:{}:/usr/bin:/bin", bin_dir.display(), git_dir.display()),
            ),
            ("GIT_CODEX_GIT".into(), self.git.display().to_string()),
        ]
    }

    /// `git-codex ARGS` in the repository.
    pub fn codex(&self, args: &[&str]) -> Command {
        self.codex_in(&self.repo, args)
    }

    pub fn codex_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .envs(self.vars())
            .current_dir(dir)
            .args(args);
        cmd
    }

    /// Runs git in the repository and returns its stdout; panics when git fails.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Git with no hooks at all (`core.hooksPath=/dev/null`): what a bypass looks like.
    pub fn git_without_hooks(&self, args: &[&str]) -> Output {
        let mut full = vec!["-c", "core.hooksPath=/dev/null"];
        full.extend_from_slice(args);
        self.git_output(&self.repo, &full)
    }

    /// A bare clone of the repository next to it, `<root>/<name>`.
    pub fn bare_clone(&self, name: &str) -> PathBuf {
        let repo = self.repo.display().to_string();
        self.git_in(&self.root(), &["clone", "-q", "--bare", &repo, name]);
        self.root().join(name)
    }

    pub fn git_output<S: AsRef<OsStr>>(&self, dir: &Path, args: &[S]) -> Output {
        std::process::Command::new(&self.git)
            .env_clear()
            .envs(self.vars())
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run git")
    }

    pub fn write(&self, relative: &str, text: &str) {
        write_file(&self.repo.join(relative), text);
    }

    pub fn state_dir(&self) -> PathBuf {
        self.repo.join(".git").join("codex")
    }

    pub fn worktree(&self, id: &str) -> PathBuf {
        self.repo.join(".codex-worktrees").join(format!("wt-{id}"))
    }

    /// `session show ID --json`.
    pub fn show(&self, id: &str) -> serde_json::Value {
        json(&run(self.codex(&["session", "show", id, "--json"])).1)
    }

    /// `session add ID` that must succeed; returns the printed worktree path.
    pub fn add(&self, id: &str) -> PathBuf {
        let out = self.codex(&["session", "add", id]).assert().success();
        PathBuf::from(stdout(&out.get_output().stdout).trim())
    }

    /// Commits `file` with `text` in the worktree (or repository) at `dir`.
    pub fn commit_in(&self, dir: &Path, file: &str, text: &str) {
        write_file(&dir.join(file), text);
        self.git_in(dir, &["add", file]);
        self.git_in(dir, &["commit", "-q", "-m", &format!("add {file}")]);
    }

    /// A repository `subrepo` next to the main one (one commit, "add s.txt"), added to it as
    /// submodule `sub` on main.
    pub fn add_submodule(&self) {
        let subrepo = self.root().join("subrepo");
        self.git_in(&self.root(), &["init", "-q", "-b", "main", "subrepo"]);
        self.commit_in(&subrepo, "s.txt", "upstream\n");
        let url = subrepo.display().to_string();
        self.git(&[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &url,
            "sub",
        ]);
        self.git(&["commit", "-q", "-m", "add sub"]);
    }

    /// `git submodule update --init` in `dir` (a local path is refused by default since 2.38.1).
    pub fn init_submodules(&self, dir: &Path) {
        let file_ok = ["-c", "protocol.file.allow=always"];
        self.git_in(
            dir,
            &[&file_ok[..], &["submodule", "update", "-q", "--init"]].concat(),
        );
    }

    /// [`TestEnv::add_submodule`], then session `id` with the submodule checked out in its
    /// worktree; the worktree.
    pub fn add_with_submodule(&self, id: &str) -> PathBuf {
        self.add_submodule();
        let worktree = self.add(id);
        self.init_submodules(&worktree);
        worktree
    }

    /// Moves session `id`'s creation and last activity `hours` into the past, as time would,
    /// and the expiry stamp with it (git-codex keeps it at the earliest expiry).
    pub fn age(&self, id: &str, hours: i64) {
        let path = self.state_dir().join(format!("sessions/{id}.json"));
        let mut record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("record")).expect("json");
        let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours);
        record["lastActivity"] = past.to_string().into();
        record["created"] = past.to_string().into();
        std::fs::write(&path, serde_json::to_string_pretty(&record).expect("json"))
            .expect("write record");
        if let Some(ttl) = record["ttlSeconds"].as_i64() {
            let expiry = past + jiff::SignedDuration::from_secs(ttl);
            let when = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(expiry.as_second().max(0) as u64);
            let stamp =
                std::fs::File::create(self.state_dir().join("expiry-stamp")).expect("stamp");
            stamp.set_modified(when).expect("stamp time");
        }
    }

    pub fn set_config(&self, text: &str) {
        std::fs::create_dir_all(self.state_dir()).expect("state dir");
        std::fs::write(self.state_dir().join("config.toml"), text).expect("config");
    }

    /// Every file and dir under the temp root with file contents, for "nothing changed
    /// on disk" checks.
    pub fn disk(&self) -> Disk {
        let mut out = Vec::new();
        list_tree(&self.root(), &self.root(), &mut out);
        out.sort();
        Disk(out)
    }
}

/// A listing of the disk; `assert_eq!` on two of them names only the paths that differ.
#[derive(PartialEq, Eq)]
pub struct Disk(Vec<(String, Vec<u8>)>);

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (path, bytes) in &self.0 {
            writeln!(
                f,
                "{path} ({} bytes, sum {})",
                bytes.len(),
                bytes.iter().map(|b| *b as u64).sum::<u64>()
            )?;
        }
        Ok(())
    }
}

pub fn assert_disk_unchanged(before: &Disk, after: &Disk, what: &str) {
    if before == after {
        return;
    }
    let b: std::collections::BTreeMap<_, _> = before.0.iter().cloned().collect();
    let a: std::collections::BTreeMap<_, _> = after.0.iter().cloned().collect();
    let mut diffs = Vec::new();
    for (path, bytes) in &b {
        match a.get(path) {
            None => diffs.push(format!("removed {path}")),
            Some(now) if now != bytes => diffs.push(format!("changed {path}")),
            _ => {}
        }
    }
    for path in a.keys().filter(|p| !b.contains_key(*p)) {
        diffs.push(format!("added {path}"));
    }
    panic!("{what} changed the disk:\n{}", diffs.join("\n"));
}

fn list_tree(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            out.push((format!("{rel}/"), Vec::new()));
            list_tree(root, &path, out);
        } else {
            out.push((rel, std::fs::read(&path).unwrap_or_default()));
        }
    }
}

pub fn write_file(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent dir");
    }
    std::fs::write(path, text).expect("write file");
}

pub fn stdout(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        stdout(&out.stdout),
        stdout(&out.stderr),
    )
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

/// A PATH with git-codex's directory only: no bwrap, no unshare (nothing can confine or cut
/// the network).
pub fn codex_only_path() -> String {
    Path::new(BIN)
        .parent()
        .expect("bin dir")
        .display()
        .to_string()
}

/// The check named `name` of `git codex doctor --json`.
pub fn doctor_check(t: &TestEnv, name: &str) -> serde_json::Value {
    let (_, out, err) = run(t.codex(&["doctor", "--json"]));
    json(&out)["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no {name} check in {out}{err}"))
}

/// Waits (bounded, to fail rather than hang) until `done` holds.
pub fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_until_or(|| what.to_string(), done);
}

/// [`wait_until`], saying what was awaited (and how things stood) only when it fails.
pub fn wait_until_or(what: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "waited too long: {}",
            what()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The live processes whose environment holds `var=value` (a test's mark, inherited by all
/// a command starts, so the test finds them after the command is gone).
pub fn marked(var: &str, value: &str) -> Vec<u32> {
    let needle = format!("{var}={value}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// An agent [`TestEnv::hold_agent`] started, waiting to be let go.
pub struct HeldAgent {
    pub child: std::process::Child,
    go_on: PathBuf,
    pub log: PathBuf,
}

impl HeldAgent {
    /// What its run printed on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lets it end, and waits for its run.
    pub fn release(mut self) -> std::process::ExitStatus {
        std::fs::write(&self.go_on, b"").expect("go on");
        self.child.wait().expect("agent")
    }
}

impl Drop for HeldAgent {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.go_on, b"");
    }
}

/// A command run with `input` on its standard input, its output collected.
pub trait StdinFile {
    fn stdin_file(&mut self, input: &str) -> std::process::Output;
}

impl StdinFile for std::process::Command {
    fn stdin_file(&mut self, input: &str) -> std::process::Output {
        use std::io::Write as _;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }
}
