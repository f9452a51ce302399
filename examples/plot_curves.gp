# plot_curves.gp: training curves from an lstm-train --log TSV.
# gnuplot -e "log='out/train.tsv'; out='curves'; run='chat (sample.csv)'" plot_curves.gp  ->  curves.png, curves.svg
# run names the run in the title (default: the log's file name without directory and extension).
# Top: train and valid perplexity per epoch (log scale) with the per-step training perplexity;
# middle: learning rate and global gradient norm per step; bottom: the gradient norm of each weight
# matrix per step (log scale), where vanishing (lower layers orders of magnitude below the output) or
# exploding gradients show.
if (!exists("log")) log = 'train.tsv'
if (!exists("out")) out = 'curves'
if (!exists("run")) {
    run = log
    while (strstrt(run, "/") > 0) { run = run[strstrt(run, "/") + 1:] }
    dot = 0; rest = run
    while (strstrt(rest, ".") > 0) { dot = dot + strstrt(rest, "."); rest = run[dot + 1:] }
    if (dot > 1) { run = run[1:dot - 1] }
}
set datafile separator "\t"
set key autotitle columnhead
steps = '< grep -e ^kind -e ^step '.log
# columns of the weight matrices' gradient norms (gn:emb, gn:l0.w_ih, ..., gn:out.w; not the biases)
gn = "head -1 ".log." | tr '\t' '\n' | grep -n -e '^gn:.*w_' -e '^gn:emb' -e '^gn:out.w'"
gncols = system(gn." | cut -d: -f1 | tr '\n' ' '")
gnlen = int(system(gn." | cut -d: -f2- | awk '{ if (length > m) m = length } END { print m + 0 }'"))
epochs = '< grep -e ^kind -e ^epoch '.log
# One x range, from 0 to the last token count, and the same margins (in characters) for the three
# panels, so that they line up and no tick label reaches the figure's edge: the right margin holds
# half the last x tick label, the y2 tick labels and label, and the bottom panel's key.
# Token counts in thousands or millions keep the x tick labels short.
stats log using 4 nooutput
xs = STATS_max >= 1e6 ? 1e6 : STATS_max >= 1e4 ? 1e3 : 1
xunit = xs == 1e6 ? " (millions)" : xs == 1e3 ? " (thousands)" : ""
set xrange [0:(STATS_max > 0 ? STATS_max / xs : 1)]
set lmargin 13
set rmargin (gnlen + 12 > 16 ? gnlen + 12 : 16)
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 900,1000 font ",10"; set output out.'.png' }
    if (fmt eq "svg") { set terminal svg size 900,1000 dynamic font ",10"; set output out.'.svg' }
    set multiplot layout 3,1 title "training curves: ".run noenhanced
    set logscale y
    set ylabel "perplexity"
    set xlabel "tokens trained".xunit
    set grid
    plot steps using ($4 / xs):8 with lines lw 1 lc rgb "#b0b0d0" title "train (per step)", \
         epochs using ($4 / xs):8 with linespoints lw 2 lc rgb "#1f4e9e" title "train (epoch)", \
         epochs using ($4 / xs):10 with linespoints lw 2 lc rgb "#c0392b" title "valid (epoch)"
    unset logscale y
    set ylabel "learning rate"
    set yrange [0:*]
    set y2label "gradient norm"
    set y2tics
    set ytics nomirror
    plot steps using ($4 / xs):6 with lines lw 2 lc rgb "#27ae60" title "lr", \
         steps using ($4 / xs):11 axes x1y2 with lines lw 1 lc rgb "#8e44ad" title "grad norm (before clipping)"
    unset y2tics
    unset y2label
    set ytics mirror
    set autoscale y
    set logscale y
    set ylabel "gradient norm per matrix"
    set key outside right
    plot for [c in gncols] steps using ($4 / xs):int(c) with lines lw 1 title columnhead(int(c)) noenhanced
    unset logscale y
    set key inside
    unset multiplot
    set output
}
