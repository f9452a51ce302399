#!/bin/sh
# gen-completion.sh: writes the bash completion of one tool to stdout, from what its --help says:
# the options of its option lines (an option followed by a word such as FILE or N takes an argument,
# whose completion is a file name), the options and subcommands of its usage lines; file names
# otherwise. Run by the Makefile on each built tool: `sh gen-completion.sh build/bin/lstm-tok`.
set -eu
tool=$1
name=$(basename "$tool")
fn=_$(printf '%s' "$name" | tr -c 'A-Za-z0-9\n' '_')
help=$("$tool" --help)

# "opt" lines (options) and "arg" lines (options that take an argument) and "sub" lines.
words=$(printf '%s\n' "$help" | awk -v tool="$name" '
    function scan(s,    n, w, i) {
        n = split(s, w, /[ \t,|]+/)
        for (i = 1; i <= n; i++) {
            if (w[i] !~ /^--?[A-Za-z0-9][A-Za-z0-9-]*$/) continue
            print "opt " w[i]
            if (i < n && w[i + 1] ~ /^[A-Za-z0-9]/) print "arg " w[i]
        }
    }
    # usage: "Usage: tool [sub] ..." and the lines under it that start with the tool name
    /^Usage: / { usage = 1; line = substr($0, 8) }
    usage && !/^Usage: / { if ($1 == tool) line = $0; else usage = 0 }
    usage {
        sub(/^[ \t]+/, "", line)
        if (split(line, u, /[ \t]+/) >= 2 && u[2] ~ /^[a-z][a-z-]*$/) print "sub " u[2]
        rest = substr(line, length(u[1]) + 1)
        # "[--opt ARG]" takes ARG, "[--opt] TEXT" does not: each bracket on its own, then the rest
        while (match(rest, /\[[^]]*\]/)) {
            scan(substr(rest, RSTART + 1, RLENGTH - 2))
            rest = substr(rest, 1, RSTART - 1) " ; " substr(rest, RSTART + RLENGTH)
        }
        scan(rest)
        next
    }
    # option lines: "  -x, --long ARG  text" or "      --long ARG  text" (deeper lines continue text)
    match($0, /^ +/) && RLENGTH >= 2 && RLENGTH <= 6 && substr($0, RLENGTH + 1, 1) == "-" {
        s = substr($0, RLENGTH + 1)
        if ((p = index(s, "  ")) > 0) s = substr(s, 1, p - 1)
        # the short option of a pair takes an argument when the long one does
        if (s ~ /^-[A-Za-z0-9], --/ && split(s, w, /[ ,]+/) >= 3 && w[3] ~ /^[A-Za-z0-9]/) print "arg " w[1]
        scan(s)
    }')

list() { printf '%s\n' "$words" | awk -v k="$1" '$1 == k && !seen[$2]++ { printf "%s%s", sep, $2; sep = " " }'; }
opts=$(list opt)
args=$(list arg)
subs=$(list sub)

cat <<EOF
# bash completion for $name: generated from '$name --help' by tools/completions/gen-completion.sh
$fn()
{
    local cur=\${COMP_WORDS[COMP_CWORD]} prev=""
    local opts='$opts'
    local argopts=' $args '
    local subcmds='$subs'
    ((COMP_CWORD > 0)) && prev=\${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()
    if [[ \$argopts == *" \$prev "* ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "\$cur")
    elif [[ \$cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "\$opts" -- "\$cur")
    elif [[ -n \$subcmds && \$COMP_CWORD -eq 1 ]]; then
        mapfile -t COMPREPLY < <(compgen -W "\$subcmds" -- "\$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "\$cur")
    fi
    return 0
}
complete -o filenames -F $fn $name
EOF
