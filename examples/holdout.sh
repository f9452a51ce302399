#!/bin/sh
# holdout.sh CSV OUTDIR: split a chat CSV (conversation id in the first column, header on line 1) into
# OUTDIR/train.csv and OUTDIR/test.csv, every 10th conversation (in order of first appearance) held out.
# Both files keep the header. Used by the chat and bpe-vs-words examples when no TEST file is given.
# A quoted field may hold line breaks: a record runs on while its quotes are unbalanced.
set -eu
mkdir -p "$2"
awk -v out="$2" '
    function quotes(s) { return gsub(/"/, "\"", s) }
    NR == 1 { print > (out "/train.csv"); print > (out "/test.csv"); next }
    { rec = open ? rec "\n" $0 : $0; q += quotes($0); open = q % 2 == 1; if (open) next
      q = 0; id1 = rec; sub(/,.*/, "", id1)
      if (!(id1 in id)) id[id1] = n++
      print rec > (out (id[id1] % 10 == 9 ? "/test.csv" : "/train.csv")) }
    END { if (open) print rec > (out "/train.csv") }' "$1"
