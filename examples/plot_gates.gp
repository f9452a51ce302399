# plot_gates.gp: heat map of mean gate activations per token and layer, from `lstm-inspect gates --tsv`.
# gnuplot -e "tsv='gates.tsv'; out='gates'" plot_gates.gp  ->  gates.png, gates.svg
if (!exists("tsv")) tsv = 'gates.tsv'
if (!exists("out")) out = 'gates'
set datafile separator "\t"
long = "< awk -F'\t' 'NR > 1 { for (i = 3; i <= NF; i++) print NR - 2 \"\t\" i - 3 \"\t\" $i }' ".tsv
names = system("head -1 ".tsv." | cut -f3- | tr '\t' ' '")
ntok = int(system("tail -n +2 ".tsv." | wc -l"))
set ytics () 
do for [i = 1:words(names)] { set ytics add (word(names, i) i - 1) }
set yrange [-0.5:words(names) - 0.5] reverse
set xrange [-0.5:ntok - 0.5]
set xtics rotate by 45 right
set cbrange [0:1]
set cblabel "mean gate activation"
set palette defined (0 "#2c3e50", 0.5 "#f1c40f", 1 "#c0392b")
set title "gate activations per token (".tsv.")"
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1000,420 font ",10"; set output out.'.png' }
    if (fmt eq "svg") { set terminal svg size 1000,420 dynamic font ",10"; set output out.'.svg' }
    plot long using 1:2:3 with image notitle, tsv using 1:(NaN):xticlabels(2) every ::1 notitle
    set output
}
