complete --keep-order --exclusive --command git-codex --arguments "(GIT_CODEX_COMPLETE=fish git-codex -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"

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
