#!/bin/sh
# git, for an agent in a confined git-codex session (SPEC §7a): git-codex puts this first on
# the agent's PATH. It runs the next git on PATH, unchanged; only when a `git stash` that saves,
# pops or drops fails does it add why, and what to do instead: refs/stash is shared by every
# worktree of the repository, and a confined agent may not write the repository's refs.

self_dir=${0%/*}
real=
old_ifs=$IFS
IFS=:
set -f
for dir in $PATH; do
    if [ -z "$dir" ] || [ "$dir" = "$self_dir" ]; then
        continue
    fi
    if [ -f "$dir/git" ] && [ -x "$dir/git" ]; then
        real=$dir/git
        break
    fi
done
set +f
IFS=$old_ifs
if [ -z "$real" ]; then
    echo "git-codex: no git on PATH after $self_dir" >&2
    exit 127
fi

# The subcommand: the first word that is not one of git's own options (or their values).
command=
stash_command=
skip=
for arg in "$@"; do
    if [ -n "$skip" ]; then
        skip=
        continue
    fi
    if [ -z "$command" ]; then
        case $arg in
            -C | -c | --git-dir | --work-tree | --namespace | --config-env | --super-prefix) skip=1 ;;
            -*) ;;
            *) command=$arg ;;
        esac
    else
        stash_command=$arg
        break
    fi
done
if [ "$command" != stash ]; then
    exec "$real" "$@"
fi
case $stash_command in
    "" | -* | push | save | pop | drop | clear | store | branch) ;;
    *) exec "$real" "$@" ;;
esac

"$real" "$@"
code=$?
if [ "$code" -ne 0 ]; then
    cat >&2 <<'HINT'
git-codex: 'git stash' cannot save, pop or drop entries in this confined session: refs/stash is shared by every worktree of the repository, and the agent may not write the repository's refs.
hint: set work aside with a commit on the session's branch instead ('git commit -am wip', then 'git reset --soft HEAD~1' to take it back), or with 'git stash create', which prints a commit that 'git stash apply <commit>' restores
HINT
fi
exit "$code"
