#!/usr/bin/env bash
# scaling.sh [MS_200 MS_650 GFLOPS]: the scaling model of README "Training on several machines", on
# paper: synchronous data parallelism, B=20 lanes x T=35 per rank (the global batch grows with the
# nodes), the gradient block summed by a ring allreduce, for the 2x200 and 2x650 PTB models (V=10k,
# untied) and a 2x1024 V=50k untied model. Inputs: the measured compute time of one step on one node
# (this machine: 1 process x 2 threads, tests/bench/mpi.sh or train.sh) for 2x200 and 2x650, and the
# node's GFLOP/s for the 2x1024 model, which was not run (its time is its FLOPs at that rate).
#
#   ring allreduce of S bytes over N nodes: 2 (N-1)/N S / bw  +  2 (N-1) alpha
#   bw: 10 Gbit/s -> 1.1 GB/s, 100 Gbit/s -> 11 GB/s achieved; alpha 30 us (TCP) and 5 us (RDMA)
#   without overlap: step = compute + allreduce
#   with overlap (what lstm-train does): the output layer's and the LSTM layers' gradients are
#     reduced while the layers below are in backward, which hides at most the LSTM layers' backward
#     time; the embedding's gradient is final only at the very end, so its share is never hidden:
#     step = compute + allreduce(emb) + max(0, allreduce(rest) - backward(LSTM layers))
set -euo pipefail
ms200=${1:-107}
ms650=${2:-533}
gflops=${3:-104}

awk -v ms200="$ms200" -v ms650="$ms650" -v gf="$gflops" '
function ring(S, N, bw, a) { return N < 2 ? 0 : 2 * (N - 1) / N * S / bw + 2 * (N - 1) * a }
function model(name, V, E, H, ms,    emb, lstm, out, S, Semb, flop_lstm, flop_out, C, W, i, j, N, bw, a, ar, arE, t0, t1) {
    emb = V * E; lstm = 4 * H * (E + H) + 8 * H + 4 * H * (2 * H) + 8 * H; out = V * H + V
    S = 4 * (emb + lstm + out); Semb = 4 * emb
    flop_lstm = 3 * 2 * (4 * H * (E + H) + 4 * H * 2 * H); flop_out = 3 * 2 * V * H   # per token, fwd + bwd
    C = ms > 0 ? ms / 1000 : 700 * (flop_lstm + flop_out) / (gf * 1e9)
    W = C * (2 / 3) * flop_lstm / (flop_lstm + flop_out)                            # backward of the LSTM layers
    printf "%s: %.1f M parameters, %.1f MB of gradients per step (embedding %.1f MB), compute %.0f ms per step%s\n", \
        name, S / 4e6, S / 1e6, Semb / 1e6, C * 1000, (ms > 0 ? " (measured)" : sprintf(" (%.0f GFLOP at %g GFLOP/s)", 700 * (flop_lstm + flop_out) / 1e9, gf))
    printf "  %-10s", "nodes"
    for (i = 1; i <= 4; i++) printf " %22s", nn[i]
    printf "\n"
    for (j = 1; j <= 2; j++) {
        bw = j == 1 ? 1.1e9 : 11e9; a = j == 1 ? 30e-6 : 5e-6
        for (ov = 0; ov < 2; ov++) {
            printf "  %-10s", (j == 1 ? "10G" : "100G") (ov ? " overlap" : "")
            for (i = 1; i <= 4; i++) {
                N = nn[i]; ar = ring(S, N, bw, a); arE = ring(Semb, N, bw, a)
                t1 = ov ? C + arE + ((ar - arE) > W ? ar - arE - W : 0) : C + ar
                printf " %11.0f ms %5.1f%%", t1 * 1000, 100 * C / t1
            }
            printf "\n"
        }
    }
}
BEGIN {
    nn[1] = 2; nn[2] = 8; nn[3] = 32; nn[4] = 64
    print "step time and efficiency (compute / step) per node count, B=20 x T=35 per rank, ring allreduce"
    model("2x200 PTB (V=10,000, untied)", 10000, 200, 200, ms200)
    model("2x650 PTB (V=10,000, untied)", 10000, 650, 650, ms650)
    model("2x1024 V=50,000 (untied)", 50000, 1024, 1024, 0)
}'
