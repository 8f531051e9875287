
set edit:completion:arg-completer[git-codex] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) GIT_CODEX_COMPLETE="elvish" git-codex -- $@words) | to-lines
}

