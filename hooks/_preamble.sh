codex_bin='@BIN@'
codex_state='@STATE@'
if [ ! -x "$codex_bin" ]; then
  codex_bin=$(command -v git-codex 2>/dev/null) || codex_bin=
fi
codex_missing() {
  echo "warning: git-codex is not installed or not on PATH: its $1 hook did nothing (the review gate is off)" >&2
  echo "hint: reinstall it ('cargo install --locked --path .'), or run 'git codex hooks uninstall'" >&2
}
# Sets codex_dir to the git dir of the worktree the hook runs in, without running anything.
codex_git_dir() {
  if [ -n "${GIT_DIR-}" ]; then
    codex_dir=$GIT_DIR
  elif [ -f .git ]; then
    IFS= read -r codex_dir < .git
    codex_dir=${codex_dir#gitdir: }
  else
    codex_dir=.git
  fi
}
