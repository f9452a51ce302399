# plot_gates.gp: heat map of mean gate activations per token and layer, from `lstm-inspect gates --tsv`.
# gnuplot -e "tsv='out/gates.tsv'; out='gates'; run='chat (sample.csv)'" plot_gates.gp  ->  gates.png, gates.svg
# run names the run in the title (default: the table's file name without directory and extension).
if (!exists("tsv")) tsv = 'gates.tsv'
if (!exists("out")) out = 'gates'
if (!exists("run")) {
    run = tsv
    while (strstrt(run, "/") > 0) { run = run[strstrt(run, "/") + 1:] }
    dot = 0; rest = run
    while (strstrt(rest, ".") > 0) { dot = dot + strstrt(rest, "."); rest = run[dot + 1:] }
    if (dot > 1) { run = run[1:dot - 1] }
}
set datafile separator "\t"
long = "< awk -F'\t' 'NR > 1 { for (i = 3; i <= NF; i++) print NR - 2 \"\t\" i - 3 \"\t\" $i }' ".tsv
names = system("head -1 ".tsv." | cut -f3- | tr '\t' ' '")
ntok = int(system("tail -n +2 ".tsv." | wc -l"))
# Lengths (in bytes: a bound on characters) of the longest gate name, the first token and the longest token.
namelen = int(system("head -1 ".tsv." | cut -f3- | tr '\t' '\n' | awk '{ if (length > m) m = length } END { print m + 0 }'"))
firstlen = int(system("sed -n 2p ".tsv." | cut -f2 | awk '{ print length }'"))
toklen = int(system("tail -n +2 ".tsv." | cut -f2 | awk '{ if (length > m) m = length } END { print m + 0 }'"))
set ytics () noenhanced
do for [i = 1:words(names)] { set ytics add (word(names, i) i - 1) }
set yrange [-0.5:words(names) - 0.5] reverse
set xrange [-0.5:ntok - 0.5]
set xtics rotate by 45 right noenhanced
# The token labels hang down and to the left at 45 degrees. The margins are set in pixels, as a
# character of the 10-point font is at most about 7.5 pixels wide in the PNG (gnuplot's own estimate is
# narrower, and cut long labels at the bottom): the bottom one holds the longest label, the left one
# the first label (or the gate names); the canvas grows with the longest label and with the number of
# tokens, so the heat map keeps its size.
drop = 7.5 * 0.71 * toklen + 30
left = 7.5 * 0.71 * firstlen + 15 > 7.5 * namelen + 40 ? 7.5 * 0.71 * firstlen + 15 : 7.5 * namelen + 40
W = 22 * ntok + 300 > 1000 ? 22 * ntok + 300 : 1000
H = 330 + drop
set bmargin at screen drop / H
set lmargin at screen left / W
set cbrange [0:1]
set cblabel "mean gate activation"
set palette defined (0 "#2c3e50", 0.5 "#f1c40f", 1 "#c0392b")
set title "gate activations per token: ".run noenhanced
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size W,H font ",10"; set output out.'.png' }
    if (fmt eq "svg") { set terminal svg size W,H dynamic font ",10"; set output out.'.svg' }
    plot long using 1:2:3 with image notitle, tsv using 1:(NaN):xticlabels(2) every ::1 notitle
    set output
}
