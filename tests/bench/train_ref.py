#!/usr/bin/python3
"""train_ref.py: the PyTorch reference for lstm-train's throughput. Trains the same model (Embedding,
nn.LSTM with L layers, Linear, cross-entropy, SGD with gradient clipping) on the same window shape for a
fixed number of seconds on random-but-fixed token ids, with truncated BPTT (state carried and detached),
and prints tokens/s. Run with Debian's python3-torch and OPENBLAS_NUM_THREADS=1; torch threads from
TORCH_THREADS (default 2, PyTorch's fastest setting on a quiet 2-core machine).
IDS=FILE: train on these token ids instead (the `lstm-dump --ids` listing of a token stream, read as B
contiguous lanes as lstm-train reads windows), so a frequency-sensitive output layer sees real targets.
ADAPTIVE=C0,C1,..: nn.AdaptiveLogSoftmaxWithLoss (div_value DIV, default 4, head_bias) instead of the
Linear + cross-entropy output layer.

usage: train_ref.py V E H L B T SECONDS [TIED]
"""
import os
import sys
import time

import torch
import torch.nn as nn

V, E, H, L, B, T = (int(x) for x in sys.argv[1:7])
seconds = float(sys.argv[7])
tied = len(sys.argv) > 8 and sys.argv[8] == "1"
cutoffs = [int(c) for c in os.environ["ADAPTIVE"].split(",")] if os.environ.get("ADAPTIVE") else None
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
torch.manual_seed(1)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, L, batch_first=True)
        if cutoffs:
            self.out = nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value=float(os.environ.get("DIV", "4")),
                                                     head_bias=True)
        else:
            self.out = nn.Linear(H, V)
        if tied:
            self.out.weight = self.emb.weight

    def forward(self, x, y, state):
        h, state = self.rnn(self.emb(x), state)
        if cutoffs:
            return self.out(h.reshape(-1, H), y.reshape(-1)).loss, state
        return loss_fn(self.out(h).reshape(-1, V), y.reshape(-1)), state


model = Model()
opt = torch.optim.SGD(model.parameters(), lr=1.0)
loss_fn = nn.CrossEntropyLoss()
if os.environ.get("IDS"):
    ids = []
    with open(os.environ["IDS"]) as f:
        for line in f:
            if line.lstrip().startswith("ids:"):
                ids.extend(int(t) for t in line.split()[1:])
    lanes = torch.tensor(ids[: len(ids) // B * B], dtype=torch.int64).reshape(B, -1)
    nw = (lanes.shape[1] - 1) // T
    data = torch.stack([lanes[:, w * T: w * T + T + 1] for w in range(min(nw, 4096))])
else:
    data = torch.randint(4, V, (64, B, T + 1))
state = (torch.zeros(L, B, H), torch.zeros(L, B, H))


def step(i):
    global state
    batch = data[i % data.shape[0]]
    x, y = batch[:, :T], batch[:, 1:]
    state = tuple(s.detach() for s in state)
    loss, state = model(x, y, state)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    opt.step()


for i in range(3):  # warm-up
    step(i)
t0 = time.perf_counter()
n = 0
while time.perf_counter() - t0 < seconds:
    step(n)
    n += 1
dt = time.perf_counter() - t0
print(f"{n * B * T / dt:.0f}")
