# zsh -f complete.zsh LINE: the matches an interactive zsh's completion adds for LINE followed by a Tab, one a
# line (scripts/lib/complete.sh, complete_zsh). An interactive zsh runs on a pseudo-terminal (zpty) with
# compinit and the system's fpath; a compadd wrapper prints each match the completion functions add, between
# markers, and a widget bound to ^X, typed after the Tab, prints the end marker. The terminal echoes what is
# typed, the widget's definition too, so the markers are built when printed (zstream-${:-end}): the echo never
# holds them, and reading stops at the widget's output, not at the echo of its definition (under load, the echo
# alone had come in when the reading looked).
zmodload zsh/zpty || exit 1
zpty z zsh -f -i
zpty -w z 'PS1=; RPS1=; unsetopt beep; autoload -Uz compinit && compinit -u -D'
zpty -w z 'compadd() { local -a __m; builtin compadd -O __m "$@"; print -rl -- "" zstream-${:-match}:${^__m}; builtin compadd "$@"; }'
zpty -w z 'zstream-done() { print -r -- $'"'\\n'"'zstream-${:-end}; }; zle -N zstream-done; bindkey "^X" zstream-done'
zpty -w -n z "$1"$'\t\x18'
out=
while (( SECONDS < 20 )); do
    if zpty -r -t z chunk; then
        out+=$chunk
        [[ $out == *$'\n'zstream-end* ]] && break
    else
        sleep 0.05
    fi
done
zpty -d z
[[ $out == *$'\n'zstream-end* ]] || { print -u2 "complete.zsh: zsh did not finish completing '$1' in 20 s"; exit 1; }
for l in ${(f)out//$'\r'/}; do
    [[ $l == zstream-match:* ]] && print -r -- ${l#zstream-match:}
done
exit 0
