# plot_curves.gp: training curves from an lstm-train --log TSV.
# gnuplot -e "log='train.tsv'; out='curves'" plot_curves.gp  ->  curves.png, curves.svg
# Top: train and valid perplexity per epoch (log scale) with the per-step training perplexity;
# middle: learning rate and global gradient norm per step; bottom: the gradient norm of each weight
# matrix per step (log scale), where vanishing (lower layers orders of magnitude below the output) or
# exploding gradients show.
if (!exists("log")) log = 'train.tsv'
if (!exists("out")) out = 'curves'
set datafile separator "\t"
set key autotitle columnhead
steps = '< grep -e ^kind -e ^step '.log
# columns of the weight matrices' gradient norms (gn:emb, gn:l0.w_ih, ..., gn:out.w; not the biases)
gncols = system("head -1 ".log." | tr '\t' '\n' | grep -n -e '^gn:.*w_' -e '^gn:emb' -e '^gn:out.w' | cut -d: -f1 | tr '\n' ' '")
epochs = '< grep -e ^kind -e ^epoch '.log
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 900,1000 font ",10"; set output out.'.png' }
    if (fmt eq "svg") { set terminal svg size 900,1000 dynamic font ",10"; set output out.'.svg' }
    set multiplot layout 3,1 title "lstm-train: ".log
    set logscale y
    set ylabel "perplexity"
    set xlabel "tokens trained"
    set grid
    plot steps using 4:8 with lines lw 1 lc rgb "#b0b0d0" title "train (per step)", \
         epochs using 4:8 with linespoints lw 2 lc rgb "#1f4e9e" title "train (epoch)", \
         epochs using 4:10 with linespoints lw 2 lc rgb "#c0392b" title "valid (epoch)"
    unset logscale y
    set ylabel "learning rate"
    set yrange [0:*]
    set y2label "gradient norm"
    set y2tics
    set ytics nomirror
    plot steps using 4:6 with lines lw 2 lc rgb "#27ae60" title "lr", \
         steps using 4:11 axes x1y2 with lines lw 1 lc rgb "#8e44ad" title "grad norm (before clipping)"
    unset y2tics
    unset y2label
    set ytics mirror
    set autoscale y
    set logscale y
    set ylabel "gradient norm per matrix"
    set key outside right
    plot for [c in gncols] steps using 4:int(c) with lines lw 1 title columnhead(int(c)) noenhanced
    unset logscale y
    set key inside
    unset multiplot
    set output
}
