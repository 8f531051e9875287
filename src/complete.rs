//! Shell completions (dynamic: session ids come from the state dir) and man pages, both
//! generated from the clap definitions. Completions also work as `git codex …` through
//! git's own completion: bash calls `_git_codex`, zsh `_git-codex`, and fish gets a
//! condition on `git codex`.

use std::ffi::OsStr;

use clap::CommandFactory as _;
use clap_complete::CompletionCandidate;
use clap_complete::env::Shells;

use crate::cli::Cli;

/// The environment variable through which the shell scripts ask for completions.
pub const VAR: &str = "GIT_CODEX_COMPLETE";

/// Answers a completion request when the shell asked for one (then the process ends).
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .bin("git-codex")
        .completer("git-codex")
        .complete();
}

/// The ids of the sessions of the repository here that start with `current`. Only valid ids:
/// a record file planted under another name is no session, and its name could carry escape
/// sequences to the terminal.
pub fn session_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let Ok(repo) = gix::discover(cwd) else {
        return Vec::new();
    };
    let Ok(entries) = fs_err::read_dir(repo.common_dir().join("codex").join("sessions")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .filter(|id| crate::state::id::parse(id).is_ok() && id.starts_with(prefix.as_ref()))
        .collect();
    ids.sort();
    ids.into_iter().map(CompletionCandidate::new).collect()
}

const BASH_GIT: &str = r#"
# `git codex …` through git's own completion, which calls _git_codex.
_git_codex() {
    local IFS=$'\013'
    local i=1
    while [[ $i -lt $cword && ${words[i]} != codex ]]; do ((i++)); done
    local args=(git-codex "${words[@]:i+1:cword-i}")
    COMPREPLY=( $( \
        _CLAP_IFS="$IFS" \
        _CLAP_COMPLETE_INDEX="$((cword - i))" \
        _CLAP_COMPLETE_COMP_TYPE="${COMP_TYPE:-9}" \
        _CLAP_COMPLETE_SPACE=true \
        GIT_CODEX_COMPLETE="bash" \
        git-codex -- "${args[@]}" \
    ) )
}
"#;

const ZSH_GIT: &str = r#"
# `git codex …` through zsh's git completion, which calls _git-codex with words[1] = codex.
_git-codex() {
    words[1]=git-codex
    _clap_dynamic_completer_git_codex "$@"
}
"#;

const FISH_GIT: &str = r#"
# `git codex …` through fish's git completion.
function __git_codex_args
    set -l tokens (commandline --current-process --tokenize --cut-at-cursor)
    set -l at (contains --index -- codex $tokens)
    and printf '%s\n' git-codex $tokens[(math $at + 1)..-1]
end
function __git_codex_using
    contains -- codex (commandline --current-process --tokenize --cut-at-cursor)[2..-1]
end
complete --keep-order --exclusive --command git --condition __git_codex_using --arguments "(GIT_CODEX_COMPLETE=fish git-codex -- (__git_codex_args) (commandline --current-token))"
"#;

/// The completion script for `shell`: clap's dynamic registration for `git-codex`, plus the
/// glue for `git codex`.
pub fn script(shell: &str) -> anyhow::Result<String> {
    let shells = Shells::builtins();
    let completer = shells
        .completer(shell)
        .ok_or_else(|| anyhow::anyhow!("unknown shell {shell}"))?;
    let mut buf = Vec::new();
    completer.write_registration(VAR, "git-codex", "git-codex", "git-codex", &mut buf)?;
    let mut text = String::from_utf8(buf)?;
    text.push_str(match shell {
        "bash" => BASH_GIT,
        "zsh" => ZSH_GIT,
        "fish" => FISH_GIT,
        _ => "",
    });
    Ok(text)
}

/// Man pages for `git-codex` and every visible subcommand (`git-codex-session-add.1`, …).
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    let root = Cli::command();
    collect_pages(&root, "git-codex", "git codex", &mut pages)?;
    Ok(pages)
}

fn collect_pages(
    cmd: &clap::Command,
    name: &str,
    bin: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> anyhow::Result<()> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(bin.to_string())
        .display_name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    out.push((format!("{name}.1"), buf));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub_name = format!("{name}-{}", sub.get_name());
        let sub_bin = format!("{bin} {}", sub.get_name());
        collect_pages(sub, &sub_name, &sub_bin, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command a person can call has a one-line help and an example in its long help;
    /// every flag and argument has a help line.
    #[test]
    fn every_command_and_flag_is_documented() {
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{path}: argument {id} has no help"
                );
            }
            for sub in cmd
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            {
                let sub_path = format!("{path} {}", sub.get_name());
                assert!(sub.get_about().is_some(), "{sub_path} has no help line");
                let long = sub
                    .get_after_long_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(long.contains("Example:"), "{sub_path} has no example");
                walk(sub, &sub_path);
            }
        }
        walk(&Cli::command(), "git codex");
    }
}
