//! Known agents (SPEC §7, "Agent profiles"): what each needs to work inside the sandbox,
//! as data. A profile names the model API hosts the agent talks to (allowed in strict mode
//! unless `sandbox.agent_hosts = false`), the variable that moves its own state dir, and the
//! files of the person's own state dir that seed the session's copy. The copy lives in the
//! state dir (`agents/<id>/<profile>/`), is the only one the agent can write, and is never
//! copied back: nothing the agent writes reaches the person's `~/.codex` or `~/.claude`.

use std::io::Write as _;
use std::os::fd::OwnedFd;

use camino::{Utf8Path, Utf8PathBuf};
use rustix::fs::{AtFlags, Mode, OFlags};

/// One known agent.
#[derive(Debug)]
pub struct Profile {
    /// The name the log and `session show` use.
    pub name: &'static str,
    /// Program names (the command's file name) that are this agent.
    pub programs: &'static [&'static str],
    /// Model API hosts the agent needs, as `sandbox.allowed_domains` entries.
    pub hosts: &'static [&'static str],
    /// The variable that tells the agent where its own state dir is, if it has one.
    pub state_var: Option<&'static str>,
    /// The files of the person's own state that seed the session's copy (credentials and
    /// settings; never history).
    pub seed: &'static [Seed],
    /// The agent's own instructions file in its state dir (Codex's global `AGENTS.md`,
    /// Claude Code's user `CLAUDE.md`): seeded from the person's, with the reviewer's
    /// feedback added, so the agent reads it in its own terms.
    pub instructions: Option<Seed>,
}

/// A file of the person's that seeds the agent's state dir: `from` relative to `$HOME`,
/// `to` a plain file name in the session's copy.
#[derive(Debug)]
pub struct Seed {
    pub from: &'static str,
    pub to: &'static str,
}

/// The table. Hosts are what each agent's own documentation names for its model API and
/// sign-in; a person who needs fewer lists their own and sets `sandbox.agent_hosts = false`.
pub static PROFILES: &[Profile] = &[
    Profile {
        name: "codex",
        programs: &["codex"],
        hosts: &["api.openai.com", "chatgpt.com", "auth.openai.com"],
        state_var: Some("CODEX_HOME"),
        seed: &[
            Seed {
                from: ".codex/config.toml",
                to: "config.toml",
            },
            Seed {
                from: ".codex/auth.json",
                to: "auth.json",
            },
        ],
        instructions: Some(Seed {
            from: ".codex/AGENTS.md",
            to: "AGENTS.md",
        }),
    },
    Profile {
        name: "claude",
        programs: &["claude"],
        hosts: &["api.anthropic.com", "console.anthropic.com"],
        state_var: Some("CLAUDE_CONFIG_DIR"),
        seed: &[
            Seed {
                from: ".claude/settings.json",
                to: "settings.json",
            },
            Seed {
                from: ".claude/.credentials.json",
                to: ".credentials.json",
            },
            Seed {
                from: ".claude.json",
                to: ".claude.json",
            },
        ],
        instructions: Some(Seed {
            from: ".claude/CLAUDE.md",
            to: "CLAUDE.md",
        }),
    },
    Profile {
        name: "gemini",
        programs: &["gemini"],
        hosts: &[
            "generativelanguage.googleapis.com",
            "cloudcode-pa.googleapis.com",
            "oauth2.googleapis.com",
        ],
        state_var: None,
        seed: &[],
        instructions: None,
    },
    Profile {
        name: "aider",
        programs: &["aider"],
        hosts: &["api.openai.com", "api.anthropic.com", "openrouter.ai"],
        state_var: None,
        seed: &[],
        instructions: None,
    },
    Profile {
        name: "opencode",
        programs: &["opencode"],
        hosts: &["api.openai.com", "api.anthropic.com", "models.dev"],
        state_var: None,
        seed: &[],
        instructions: None,
    },
];

/// The profile of the agent `argv` starts, known by the program's file name.
pub fn detect(argv: &[String]) -> Option<&'static Profile> {
    let program = argv.first()?;
    let name = Utf8Path::new(program).file_name()?;
    PROFILES.iter().find(|p| p.programs.contains(&name))
}

/// The session's copy of the agent's state dir: `<state>/agents/<id>/<profile>`.
pub fn state_dir(agents_root: &Utf8Path, profile: &Profile) -> Utf8PathBuf {
    agents_root.join(profile.name)
}

/// Makes the session's copy of the agent's state dir and copies the person's seed files into
/// it, over what an earlier run left there. The dir is the agent's to write, so nothing in it
/// is followed: it is opened without following a link (one in its place is refused), and each
/// file is unlinked and made anew (`O_EXCL | O_NOFOLLOW`). `agents_root` is git-codex's own.
pub fn seed(
    agents_root: &Utf8Path,
    profile: &Profile,
    home: Option<&Utf8Path>,
    feedback: Option<&str>,
) -> anyhow::Result<Utf8PathBuf> {
    fs_err::create_dir_all(agents_root)?;
    let dir = state_dir(agents_root, profile);
    let parent = open_dir(agents_root)?;
    match rustix::fs::mkdirat(&parent, profile.name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(err) => return Err(anyhow::anyhow!("cannot make {dir}: {err}")),
    }
    let fd = rustix::fs::openat(
        &parent,
        profile.name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| {
        anyhow::anyhow!(
            "cannot open {dir} (something not a plain directory is in its place: {err})"
        )
    })?;
    if let Some(instructions) = &profile.instructions {
        let persons = home.and_then(|h| fs_err::read(h.join(instructions.from)).ok());
        let text = instructions_with(persons, feedback);
        match text {
            Some(bytes) => write_fresh(&fd, instructions.to, &bytes),
            // An earlier run's feedback is not for this one.
            None => match rustix::fs::unlinkat(&fd, instructions.to, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::ISDIR) => Ok(()),
                Err(err) => Err(err.into()),
            },
        }
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", dir.join(instructions.to)))?;
    }
    let Some(home) = home else { return Ok(dir) };
    for seed in profile.seed {
        let from = home.join(seed.from);
        // A person's file that is missing, or that cannot be read, seeds nothing.
        let Ok(bytes) = fs_err::read(&from) else {
            continue;
        };
        write_fresh(&fd, seed.to, &bytes)
            .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", dir.join(seed.to)))?;
    }
    Ok(dir)
}

/// The agent's instructions: the person's own, then the reviewer's feedback.
fn instructions_with(persons: Option<Vec<u8>>, feedback: Option<&str>) -> Option<Vec<u8>> {
    let Some(feedback) = feedback else {
        return persons;
    };
    let mut text = persons.unwrap_or_default();
    if !text.is_empty() {
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.push(b'\n');
    }
    text.extend_from_slice(feedback.as_bytes());
    Some(text)
}

fn open_dir(path: &Utf8Path) -> anyhow::Result<OwnedFd> {
    rustix::fs::open(
        path.as_std_path(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| anyhow::anyhow!("cannot open {path}: {err}"))
}

/// `name` in `dir` made anew with `bytes`, mode 0600: whatever the agent left under that name
/// (a link, a directory) goes first.
fn write_fresh(dir: &OwnedFd, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {
            // A directory in the way: moved aside rather than deleted, it is the agent's.
            let aside = format!("{name}.agent-{}", std::process::id());
            rustix::fs::renameat(dir, name, dir, aside.as_str())?;
        }
        Err(err) => return Err(err.into()),
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_known_by_their_program_name() {
        let argv = |s: &str| vec![s.to_string(), "exec".to_string()];
        assert_eq!(detect(&argv("codex")).map(|p| p.name), Some("codex"));
        assert_eq!(
            detect(&argv("/usr/local/bin/claude")).map(|p| p.name),
            Some("claude")
        );
        assert!(detect(&argv("codex-helper")).is_none());
        assert!(detect(&[]).is_none());
    }

    #[test]
    fn seeding_copies_the_persons_files_and_never_writes_through_a_link() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = Utf8Path::from_path(tmp.path()).expect("utf-8");
        let home = root.join("home");
        fs_err::create_dir_all(home.join(".codex")).expect("home");
        fs_err::write(home.join(".codex/config.toml"), "model = \"x\"\n").expect("config");
        let agents = root.join("state/agents/s");
        let profile = detect(&["codex".to_string()]).expect("codex");
        let dir = seed(&agents, profile, Some(&home), None).expect("seed");
        assert_eq!(
            fs_err::read_to_string(dir.join("config.toml")).expect("copy"),
            "model = \"x\"\n"
        );
        // The agent swaps its copy for a link to the person's file; the next seeding
        // replaces the link and leaves the person's file as it was.
        fs_err::remove_file(dir.join("config.toml")).expect("rm");
        std::os::unix::fs::symlink(home.join(".codex/config.toml"), dir.join("config.toml"))
            .expect("link");
        fs_err::write(home.join(".codex/config.toml"), "model = \"y\"\n").expect("config");
        seed(&agents, profile, Some(&home), None).expect("seed again");
        assert!(
            !fs_err::symlink_metadata(dir.join("config.toml"))
                .expect("meta")
                .is_symlink()
        );
        assert_eq!(
            fs_err::read_to_string(home.join(".codex/config.toml")).expect("person's"),
            "model = \"y\"\n"
        );
        // The whole dir swapped for a link to the person's: refused, nothing written there.
        fs_err::remove_dir_all(&dir).expect("rm dir");
        std::os::unix::fs::symlink(home.join(".codex"), &dir).expect("dir link");
        assert!(seed(&agents, profile, Some(&home), None).is_err());
        assert_eq!(
            fs_err::read_to_string(home.join(".codex/config.toml")).expect("person's"),
            "model = \"y\"\n"
        );
    }
}
