#!/usr/bin/python3
"""cache_crosscheck.py: the PyTorch half of the continuous cache's cross-check (Debian's
python3-torch; run with /usr/bin/python3). Reads the case written by `test_cache dump FILE` (the
pairs pushed into a ring of N, the query state, the model's logits, and the C library's mixed
log-probabilities) and recomputes, in float64, with torch:

    p_cache = scatter_add(softmax(theta * keys[-N:] @ q), words[-N:])
    log p   = log((1 - lambda) softmax(logits) + lambda p_cache)

Prints the largest difference; exits 1 when it is above 1e-5 (the C side returns float32 log-probs).

usage: cache_crosscheck.py FILE
"""
import sys

import torch

TOL = 1e-5


def main(path):
    with open(path) as f:
        lines = [l.split() for l in f if l.strip()]
    H, V, N = (int(x) for x in lines[0][:3])
    theta, lam = float(lines[0][3]), float(lines[0][4])
    n = int(lines[0][5])
    rows = lines[1:1 + n]
    keys = torch.tensor([[float(x) for x in r[:H]] for r in rows], dtype=torch.float64)
    words = torch.tensor([int(r[H]) for r in rows], dtype=torch.int64)
    q = torch.tensor([float(x) for x in lines[1 + n]], dtype=torch.float64)
    logits = torch.tensor([float(x) for x in lines[2 + n]], dtype=torch.float64)
    got = torch.tensor([float(x) for x in lines[3 + n]], dtype=torch.float64)
    keys, words = keys[-N:], words[-N:]  # the ring keeps the last N pairs
    weights = torch.softmax(theta * (keys @ q), dim=0)
    p_cache = torch.zeros(V, dtype=torch.float64).scatter_add_(0, words, weights)
    p = (1 - lam) * torch.softmax(logits, dim=0) + lam * p_cache
    want = torch.log(p)
    diff = (got - want).abs().max().item()
    cached = int((p_cache > 0).sum().item())
    print(f"cache cross-check: H={H} V={V} N={N} pairs={n} words in the cache={cached} max |C - torch| = {diff:.3g}")
    if not diff <= TOL:
        print(f"cache cross-check: FAILED (tolerance {TOL})")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
