# The hook git-codex chained (whoever's was here first), run as git ran this one: a sh or bash
# script is sourced by its own interpreter under this hook's path as $0, so a hook that finds
# its work from its own name (husky's, a dispatcher linked under several names) still does;
# anything else runs from its own path.
codex_chained="${0%/*}/@NAME@.codex-chained"
codex_via() {
  codex_shell= codex_flag=
  case "$1" in '#!'*) ;; *) return 0 ;; esac
  set -f
  set -- ${1#??}
  set +f
  if [ "${1##*/}" = env ]; then shift; fi
  case "${1##*/}" in sh | dash | bash | ash) ;; *) return 0 ;; esac
  case "$#:${2-}" in
    1:) ;;
    2:-*) codex_flag=$2 ;;
    *) return 0 ;;
  esac
  codex_shell=$1
}
codex_run_chained() {
  codex_first=
  { IFS= read -r codex_first || :; } < "$codex_chained"
  codex_via "$codex_first"
  if [ -n "$codex_shell" ]; then
    "$codex_shell" ${codex_flag:+"$codex_flag"} -c 'codex_f=$1; shift; . "$codex_f"' "$0" "$codex_chained" "$@"
  else
    "$codex_chained" "$@"
  fi
}
