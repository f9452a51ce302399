#!/usr/bin/python3
"""zipf_corpus.py: a synthetic large-vocabulary corpus for the adaptive-softmax benchmark. Word w<r> has
frequency rank r under a Zipf law (exponent 1.0, as natural text roughly follows); to give a language
model something to learn, after each word the next one is, with probability 0.6, one of that word's 4
fixed successors (themselves Zipf-drawn), and otherwise a fresh Zipf draw. Sentences of 5 to 30 words,
one per line; the first lines name every word once, so all TYPES appear. Deterministic for a seed.

usage: zipf_corpus.py TYPES TOKENS [SEED] > corpus.txt
"""
import sys

import numpy as np

types, tokens = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
p = 1.0 / np.arange(1, types + 1)
p /= p.sum()
succ = rng.choice(types, size=(types, 4), p=p)
fresh = rng.choice(types, size=tokens, p=p)
follow = rng.random(tokens) < 0.6
pick = rng.integers(0, 4, size=tokens)
seq = np.empty(tokens, dtype=np.int64)
prev = fresh[0]
for i in range(tokens):
    prev = succ[prev, pick[i]] if follow[i] else fresh[i]
    seq[i] = prev
out = sys.stdout
for s in range(0, types, 25):
    out.write(" ".join(f"w{r}" for r in range(s, min(s + 25, types))) + "\n")
lens = rng.integers(5, 31, size=tokens // 5 + 1)
i = k = 0
while i < tokens:
    n = int(lens[k])
    out.write(" ".join(f"w{r}" for r in seq[i:i + n]) + "\n")
    i += n
    k += 1
