#!/usr/bin/python3
"""sample_ref.py MODEL.ckpt PROMPTS.txt MODE: the PyTorch reference for tests/bench/sample.sh.

Loads the checkpoint's weights (formats/checkpoint.md, parsed with struct/numpy) into nn.LSTM + Linear
and times, per request: tokenizing (whitespace split against the checkpoint's vocabulary: word and
space models), the LSTM, the output layer, softmax and top-5.
MODE full:   every request runs its whole prompt ("EOS tokens") from a zero state.
MODE step:   consecutive lines extend each other (typing): the state of the previous prompt is kept and
             only the new tokens run (as lstm-sample's prefix reuse does).
MODE greedy: greedy generation from each prompt, 100 tokens, tokens/s.
Prints "median_us p99_us" (full, step) or "tokens_per_s" (greedy)."""
import struct, sys, time
import numpy as np
import torch

torch.set_num_threads(2)


def load(path):
    d = open(path, "rb").read()
    assert d[:8] == b"\x89LCKP\r\n\x1a", "not a checkpoint"
    n = struct.unpack_from("<I", d, 24)[0]
    toff, tlen = struct.unpack_from("<QQ", d, 32)
    p, ent = toff, {}
    for _ in range(n):
        typ, nl = d[p], d[p + 1]
        name = d[p + 2:p + 2 + nl].decode()
        p += 2 + nl
        nd = d[p]
        p += 1
        dims = struct.unpack_from("<%dQ" % nd, d, p)
        p += 8 * nd
        off, nb = struct.unpack_from("<QQ", d, p)
        p += 16
        if typ == 1:
            ent[name] = np.frombuffer(d, dtype="<f4", count=nb // 4, offset=off).reshape(dims)
        else:
            ent[name] = d[off:off + nb]
    cfg = dict(l.split("=", 1) for l in ent["config"].decode().split("\n") if "=" in l)
    return ent, cfg


def vocab(blob):
    kind, flags, V, S, ulen = struct.unpack_from("<IIIII", blob, 8)
    assert kind in (1, 2), "the reference tokenizes word and space models only"
    p = 28 + ulen
    for _ in range(S):
        n = struct.unpack_from("<I", blob, p)[0]
        p += 4 + n
    words = {}
    for i in range(V - 4 - S):
        n = struct.unpack_from("<I", blob, p)[0]
        words[blob[p + 4:p + 4 + n].decode()] = 4 + S + i
        p += 4 + n
    return words


def main():
    path, prompts, mode = sys.argv[1:4]
    ent, cfg = load(path)
    V, E, H, L = (int(cfg[k]) for k in ("vocab", "emb", "hidden", "layers"))
    words = vocab(ent["tokenizer"])
    emb = torch.nn.Embedding(V, E)
    lstm = torch.nn.LSTM(E, H, L)
    out = torch.nn.Linear(H, V)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(ent["emb"].copy()))
        for l in range(L):
            for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
                getattr(lstm, "%s_l%d" % (k.replace("w_", "weight_").replace("b_", "bias_"), l)).copy_(
                    torch.from_numpy(ent["l%d.%s" % (l, k)].copy()))
        out.weight.copy_(torch.from_numpy((ent["out.w"] if "out.w" in ent else ent["emb"]).copy()))
        out.bias.copy_(torch.from_numpy(ent["out.b"].copy()))
    lines = [l.rstrip("\n") for l in open(prompts)]
    times, prev, state = [], [], None
    with torch.inference_mode():
        if mode == "greedy":
            total, t0 = 0, time.perf_counter()
            for l in lines:
                ids = [3] + [words.get(w, 1) for w in l.split()]
                x, st = lstm(emb(torch.tensor(ids).view(-1, 1)))
                tok = int(torch.argmax(out(x[-1, 0])))
                for _ in range(100):
                    x, st = lstm(emb(torch.tensor([[tok]])), st)
                    tok = int(torch.argmax(out(x[0, 0])))
                    total += 1
            print("%.0f" % (total / (time.perf_counter() - t0)))
            return
        for l in lines + lines:  # the first pass warms up
            t0 = time.perf_counter()
            ids = [3] + [words.get(w, 1) for w in l.split()]
            if mode == "step" and state is not None and ids[:len(prev)] == prev and len(ids) > len(prev):
                x, state = lstm(emb(torch.tensor(ids[len(prev):]).view(-1, 1)), state)
            else:
                x, state = lstm(emb(torch.tensor(ids).view(-1, 1)))
            prev = ids
            p = torch.softmax(out(x[-1, 0]), 0)
            top = torch.topk(p, 5)
            _ = (top.values.tolist(), top.indices.tolist())
            times.append(time.perf_counter() - t0)
    t = np.array(times[len(lines):]) * 1e6
    print("%.1f %.1f" % (np.median(t), np.percentile(t, 99)))


main()
