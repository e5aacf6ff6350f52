# Sourced by scripts/test-package and zstream-dist's tests: what a shell really offers at <Tab>, for a command line,
# one candidate a line. Each runs the shell's own completion machinery on the line, as a user's <Tab> does:
#   complete_bash LINE   bash: loads the command's completion as bash-completion does (from its completions
#                        directory; or the file COMPLETION_FILE when set), then calls the function `complete -F`
#                        names with COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set
#   complete_zsh LINE    an interactive zsh on a pseudo-terminal (zpty) with compinit, sent LINE and a Tab; every
#                        match the completion functions add is printed as they add it (complete.zsh)
#   complete_fish LINE   fish's `complete -C LINE`, which loads vendor completions as an interactive fish does
# LINE ends with a space to complete a new word.
# shellcheck shell=bash

complete_bash() {
    bash --norc --noprofile -c '
        line=$1
        if [ -n "${COMPLETION_FILE:-}" ]; then
            . "$COMPLETION_FILE"
        else
            . /usr/share/bash-completion/bash_completion
        fi
        read -ra COMP_WORDS <<<"$line"
        [[ $line != *" " ]] || COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$line COMP_POINT=${#line}
        cmd=${COMP_WORDS[0]}
        if ! complete -p "$cmd" >/dev/null 2>&1; then
            # bash-completion 2.11 (Debian 12) loads on demand with _completion_loader, 2.12 with _comp_load.
            if declare -F _comp_load >/dev/null; then _comp_load "$cmd"; else _completion_loader "$cmd"; fi
        fi
        fn=$(complete -p "$cmd" 2>/dev/null | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
        [ -n "$fn" ] || { echo "bash: no completion function for $cmd" >&2; exit 1; }
        COMPREPLY=()
        "$fn" "$cmd" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
    ' complete_bash "$1"
}

complete_zsh() {
    zsh -f "$(dirname "${BASH_SOURCE[0]}")/complete.zsh" "$1"
}

complete_fish() {
    # shellcheck disable=SC2016 # fish expands $argv
    fish -c 'complete -C $argv[1]' "$1" | cut -f1
}
