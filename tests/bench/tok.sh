#!/usr/bin/env bash
# tok.sh FILE: lstm-tok throughput on FILE (e.g. ptb.train.txt) for --words and --split space, and BPE
# encoding with an existing SentencePiece model against spm_encode on the same model, in the same run.
# BIN (default build/bin) holds lstm-tok; REPS (default 3) runs per figure, interleaved, best kept.
# Wall time is the figure; CPU time (user+sys) is shown too, since a busy machine inflates wall time.
set -euo pipefail
file=${1:?usage: tok.sh FILE}
bin=${BIN:-build/bin}
reps=${REPS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TIMEFORMAT='%R %U %S'

bytes=$(wc -c < "$file")
words=$(wc -w < "$file")

# one BPE model (8000 pieces, byte fallback) for both BPE encoders
spm_train --input="$file" --model_prefix="$tmp/m" --model_type=bpe --vocab_size=8000 --byte_fallback=true \
    --hard_vocab_limit=false --minloglevel=2 > /dev/null 2>&1

labels=("lstm-tok --words" "lstm-tok --split space" "spm_encode --output_format=id"
        "lstm-tok -m m.model --threads 1" "lstm-tok -m m.model --threads 2")
run_case() {
    case $1 in
    0) "$bin/lstm-tok" -q --words "$file" ;;
    1) "$bin/lstm-tok" -q --split space "$file" ;;
    2) spm_encode --output_format=id --model="$tmp/m.model" < "$file" ;;
    3) "$bin/lstm-tok" -q -m "$tmp/m.model" --threads 1 "$file" ;;
    4) "$bin/lstm-tok" -q -m "$tmp/m.model" --threads 2 "$file" ;;
    esac
}

declare -a wall cpu
for _ in $(seq "$reps"); do
    for c in 0 1 2 3 4; do
        read -r r u s < <({ time run_case "$c" > /dev/null; } 2>&1)
        t=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
        if [ -z "${wall[$c]:-}" ] || awk -v a="$r" -v b="${wall[$c]}" 'BEGIN { exit !(a < b) }'; then wall[$c]=$r; fi
        if [ -z "${cpu[$c]:-}" ] || awk -v a="$t" -v b="${cpu[$c]}" 'BEGIN { exit !(a < b) }'; then cpu[$c]=$t; fi
    done
done

echo "tok.sh: $file ($bytes bytes, $words words), best of $reps"
for c in 0 1 2 3 4; do
    awk -v l="${labels[$c]}" -v t="${wall[$c]}" -v cp="${cpu[$c]}" -v by="$bytes" -v w="$words" \
        'BEGIN { printf "%-34s %7.3f s wall %7.3f s cpu %8.2f MB/s %11.0f words/s\n", l, t, cp, by / t / 1e6, w / t }'
done
awk -v s="${wall[2]}" -v a="${wall[3]}" -v b="${wall[4]}" -v sc="${cpu[2]}" -v ac="${cpu[3]}" 'BEGIN {
    printf "bpe vs spm_encode (wall): %.2fx on 1 thread, %.2fx on 2 threads; cpu time ratio on 1 thread %.2fx\n", s / a, s / b, sc / ac }'
