#!/bin/sh
# holdout.sh CSV OUTDIR: split a chat CSV (conversation id in the first column, header on line 1) into
# OUTDIR/train.csv and OUTDIR/test.csv, every 10th conversation (in order of first appearance) held out.
# Both files keep the header. Used by the chat and bpe-vs-words examples when no TEST file is given.
set -eu
mkdir -p "$2"
awk -F, -v out="$2" 'NR == 1 { print > (out "/train.csv"); print > (out "/test.csv"); next }
    { if (!($1 in id)) id[$1] = n++; print > (out (id[$1] % 10 == 9 ? "/test.csv" : "/train.csv")) }' "$1"
