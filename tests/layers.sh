#!/bin/sh
# layers.sh [ROOT]: the include direction of lib/'s layers. A file in lib/L/ may include (by a quoted
# name) headers of these layers only; anything else, or a header no layer has, fails with one line per
# offending include.
#   common: common          io: common io          text: common io text
#   nn:     common nn       lm: common io text nn lm
root=${1:-$(dirname "$0")/..}
allowed() {
    case $1 in
    common) echo "common" ;;
    io) echo "common io" ;;
    text) echo "common io text" ;;
    nn) echo "common nn" ;;
    lm) echo "common io text nn lm" ;;
    *) echo "" ;;
    esac
}
bad=0
for dir in "$root"/lib/*/; do
    layer=$(basename "$dir")
    ok=$(allowed "$layer")
    if [ -z "$ok" ]; then
        echo "layers: lib/$layer/ is not a known layer (common, io, text, nn, lm)"
        bad=1
        continue
    fi
    for f in "$dir"*.c "$dir"*.cc "$dir"*.h; do
        [ -e "$f" ] || continue
        for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
            found=""
            for l in common io text nn lm; do
                [ -e "$root/lib/$l/$h" ] && found="$found $l"
            done
            set -- $found
            if [ $# -ne 1 ]; then
                if [ $# -eq 0 ]; then why="no layer has it"; else why="more than one layer has it:$found"; fi
                echo "layers: lib/$layer/$(basename "$f") includes \"$h\": $why"
                bad=1
                continue
            fi
            case " $ok " in
            *" $1 "*) ;;
            *)
                echo "layers: lib/$layer/$(basename "$f") includes $1/$h: $layer may include only $ok"
                bad=1
                ;;
            esac
        done
    done
done
exit $bad
