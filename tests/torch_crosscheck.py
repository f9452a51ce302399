#!/usr/bin/python3
"""torch_crosscheck.py: the PyTorch half of the cross-check (Debian's python3-torch; run with
/usr/bin/python3). Reads the cases written by `test_torchdump DIR`, rebuilds each model from the same
weights with torch.nn.Embedding + nn.LSTM / nn.GRU / nn.RNN (num_layers=2, batch_first) + nn.Linear
(tied or not) or nn.AdaptiveLogSoftmaxWithLoss (head_bias=True; the *_adaptive cases), with the attention
written out for the *_attention cases, in float64, and compares the logits, the loss, every parameter gradient, the gradient
w.r.t. the initial state (and the carried-in attention memory), and the parameters after one SGD step and two Adam / AdamW steps (torch.optim,
fed the C gradients so only the update rule is compared). Every comparison: max |c - torch| relative to
max |torch| <= 1e-4. Prints one line per case; exits 1 on any mismatch.

The *_awd cases (manifest `awd 1`) are AWD-LSTM's training step (Merity et al. 2017; the structure of
salesforce/awd-lstm-lm's model.py and main.py), one single-layer torch module per layer, on the C side's
masks: embedded_dropout (the embedding matrix times the word mask, then the lookup), LockedDropout on
the embeddings, between layers and on the output (a (B,1,X) mask broadcast over the T steps; the
`_unlocked` case one mask per step), WeightDrop (AWD's: the module's weight_hh_l0 is replaced at each
forward by the raw weight times the mask, so autograd gives the raw weight's gradient), and the loss
cross_entropy + alpha * output.pow(2).mean() + beta * (raw_output[:, 1:] - raw_output[:, :-1]).pow(2).mean();
compared: the NLL, AR + TAR, every parameter gradient and the initial state's.

usage: torch_crosscheck.py DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-4


def read_manifest(path):
    info, tensors = {}, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "tensor":
                tensors.append((parts[1], int(parts[2]), int(parts[3])))
            else:
                info[parts[0]] = parts[1]
    return info, tensors


def load(d, name, shape, dtype="<f4"):
    a = np.fromfile(os.path.join(d, name), dtype=dtype)
    if a.size != int(np.prod(shape)):
        raise SystemExit(f"{d}/{name}: {a.size} values, expected {shape}")
    return torch.from_numpy(a.reshape(shape).astype(np.float64 if dtype == "<f4" else np.int64))


def set_weights_and_load(d, named, P, B, T, L, H):
    """Our parameters P copied into the torch tensors named after them (the same names, or exit), and
    the case's inputs, targets and initial state (h0, c0 requiring gradients)."""
    if set(named) != set(P):
        raise SystemExit(f"{d}: tensors {sorted(P)} but torch model has {sorted(named)}")
    with torch.no_grad():
        for n, p in named.items():
            p.copy_(P[n])
    inputs = load(d, "inputs.u32", (B, T), "<u4")
    targets = load(d, "targets.u32", (B, T), "<u4")
    h0 = load(d, "h0.f32", (L, B, H)).requires_grad_(True)
    c0 = load(d, "c0.f32", (L, B, H)).requires_grad_(True)
    return inputs, targets, h0, c0


def rel(c, t):
    scale = float(t.abs().max())
    diff = float((c - t).abs().max())
    return diff / scale if scale > 0 else diff


class ManualLSTM(torch.nn.Module):
    """The LSTM variants no torch module has, written out step by step (batch_first), weights stacked in
    w_ih / w_hh like torch.nn.LSTM's:
    cifg: gates f, g, o, i = 1 - f; c' = f c + (1 - f) g, h' = o tanh(c');
    peephole: gates i, f, g, o with peep_l<k> = (p_i, p_f, p_o): i = sig(.. + p_i c), f = sig(.. + p_f c),
    c' = f c + i g, o = sig(.. + p_o c'), h' = o tanh(c');
    lnlstm (Ba et al. 2016) with ln_l<k> = (g_x, g_h, g_c, b_c): z = g_x LN(W_ih x) + b_ih + g_h LN(W_hh h) + b_hh,
    gates i, f, g, o; c' = f c + i g (carried as is), h' = o tanh(g_c LN(c') + b_c), through F.layer_norm
    (eps 1e-5, biased variance)."""

    def __init__(self, kind, E, H, L):
        super().__init__()
        self.kind, self.H, self.L = kind, H, L
        G = 3 if kind == "cifg" else 4
        for k in range(L):
            In = E if k == 0 else H
            setattr(self, f"weight_ih_l{k}", torch.nn.Parameter(torch.empty(G * H, In)))
            setattr(self, f"weight_hh_l{k}", torch.nn.Parameter(torch.empty(G * H, H)))
            setattr(self, f"bias_ih_l{k}", torch.nn.Parameter(torch.empty(G * H)))
            setattr(self, f"bias_hh_l{k}", torch.nn.Parameter(torch.empty(G * H)))
            if kind == "peephole":
                setattr(self, f"peep_l{k}", torch.nn.Parameter(torch.empty(3 * H)))
            if kind == "lnlstm":
                setattr(self, f"ln_l{k}", torch.nn.Parameter(torch.empty(10 * H)))

    def forward(self, x, state):
        h0, c0 = state
        H = self.H
        for k in range(self.L):
            h, c, outs = h0[k], c0[k], []
            for t in range(x.shape[1]):
                if self.kind == "lnlstm":
                    ln = getattr(self, f"ln_l{k}")
                    gx, gh, gc, bc = ln[:4 * H], ln[4 * H:8 * H], ln[8 * H:9 * H], ln[9 * H:]
                    z = (F.layer_norm(x[:, t] @ getattr(self, f"weight_ih_l{k}").T, (4 * H,), gx,
                                      getattr(self, f"bias_ih_l{k}"), 1e-5)
                         + F.layer_norm(h @ getattr(self, f"weight_hh_l{k}").T, (4 * H,), gh,
                                        getattr(self, f"bias_hh_l{k}"), 1e-5))
                    i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H])
                    g, o = torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
                    c = f * c + i * g
                    h = o * torch.tanh(F.layer_norm(c, (H,), gc, bc, 1e-5))
                    outs.append(h)
                    continue
                z = (x[:, t] @ getattr(self, f"weight_ih_l{k}").T + getattr(self, f"bias_ih_l{k}")
                     + h @ getattr(self, f"weight_hh_l{k}").T + getattr(self, f"bias_hh_l{k}"))
                if self.kind == "cifg":
                    f, g, o = torch.sigmoid(z[:, :H]), torch.tanh(z[:, H:2 * H]), torch.sigmoid(z[:, 2 * H:])
                    c = f * c + (1 - f) * g
                else:
                    p = getattr(self, f"peep_l{k}")
                    i = torch.sigmoid(z[:, :H] + p[:H] * c)
                    f = torch.sigmoid(z[:, H:2 * H] + p[H:2 * H] * c)
                    g = torch.tanh(z[:, 2 * H:3 * H])
                    c = f * c + i * g
                    o = torch.sigmoid(z[:, 3 * H:] + p[2 * H:] * c)
                h = o * torch.tanh(c)
                outs.append(h)
            x = torch.stack(outs, 1)
        return x, None


class Attention(torch.nn.Module):
    """Daniluk et al. 2017's basic attention over the top layer's last K outputs, written out: the memory
    Y_t = [h_{t-K} .. h_{t-1}] (slots from the carried-in mem0 first), M = tanh(W^Y Y + W^h h_t),
    alpha = softmax(w^T M) over the filled slots (lane b's mem0 has its newest mlen0[b] filled),
    r = Y alpha (0 with none filled), h* = tanh(W^r r + W^x h_t)."""

    def __init__(self, H):
        super().__init__()
        for n in ("wy", "wh", "wr", "wx"):
            setattr(self, n, torch.nn.Parameter(torch.empty(H, H)))
        self.w = torch.nn.Parameter(torch.empty(H))

    def forward(self, out, mem0, mlen0):
        B, T, H = out.shape
        K = mem0.shape[1]
        ext = torch.cat([mem0, out], 1)
        outs = []
        for t in range(T):
            Y, h = ext[:, t:t + K], out[:, t]
            valid = (torch.arange(K)[None, :] + t) >= (K - mlen0[:, None])
            M = torch.tanh(Y @ self.wy.T + (h @ self.wh.T)[:, None, :])
            s = (M @ self.w).masked_fill(~valid, -1e300)
            alpha = torch.softmax(s, 1) * valid
            r = (alpha[:, :, None] * Y).sum(1)
            outs.append(torch.tanh(r @ self.wr.T + h @ self.wx.T))
        return torch.stack(outs, 1)


class WeightDrop(torch.nn.Module):
    """AWD-LSTM's WeightDrop (DropConnect on weight_hh_l0) with a given mask instead of a random one:
    the parameter becomes weight_hh_raw, and every forward sets the module's weight_hh_l0 to
    weight_hh_raw * mask (torch.nn.RNNBase.__setattr__ refreshes the weights its kernel reads)."""

    def __init__(self, module, mask):
        super().__init__()
        raw = module.weight_hh_l0
        del module._parameters["weight_hh_l0"]
        self.module, self.mask = module, mask
        self.weight_hh_raw = torch.nn.Parameter(raw.data.clone())

    def forward(self, *args):
        setattr(self.module, "weight_hh_l0", self.weight_hh_raw * self.mask)
        return self.module(*args)


def check_awd_case(d, info, tensors):
    V, E, H, L, B, T = (int(info[k]) for k in ("V", "E", "H", "L", "B", "T"))
    cell, tie, locked = info["cell"], int(info["tie"]), int(info["locked"])
    alpha, beta = float(info["ar"]), float(info["tar"])
    shape = {n: ((a, b) if n.split(".")[-1].startswith("w") or n == "emb" else (a,)) for n, a, b in tensors}
    P = {n: load(d, f"param.{n}.f32", shape[n]) for n in shape}
    G = {n: load(d, f"grad.{n}.f32", shape[n]) for n in shape}
    g = 4 if cell == "lstm" else 3
    nt = 1 if locked else T
    m_in = load(d, "mask_in.f32", (B, nt, E))
    m_hid = load(d, "mask_hidden.f32", (L - 1, B, nt, H))
    m_out = load(d, "mask_out.f32", (B, nt, H))
    m_words = load(d, "mask_words.f32", (V,))
    m_whh = load(d, "mask_whh.f32", (L, g * H, H))

    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, E).double()
    layers = []
    for k in range(L):
        In = E if k == 0 else H
        if cell == "cifg":
            layers.append(ManualLSTM("cifg", In, H, 1).double())
        else:
            layers.append({"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](In, H, num_layers=1, batch_first=True).double())
    lin = torch.nn.Linear(H, V).double()
    named = {"emb": emb.weight, "out.b": lin.bias}
    for k, rnn in enumerate(layers):
        for ours, theirs in (("w_ih", "weight_ih_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):
            named[f"l{k}.{ours}"] = getattr(rnn, theirs)
        layers[k] = WeightDrop(rnn, m_whh[k])
        named[f"l{k}.w_hh"] = layers[k].weight_hh_raw
    if tie:
        lin.weight = emb.weight
    else:
        named["out.w"] = lin.weight
    inputs, targets, h0, c0 = set_weights_and_load(d, named, P, B, T, L, H)

    def lockdrop(x, mask):  # AWD's LockedDropout with the mask given: (B,1,X) over every step
        return x * mask

    # embedded_dropout: the dropped matrix (whole rows), then the lookup
    x = F.embedding(inputs, emb.weight * m_words[:, None])
    x = lockdrop(x, m_in)
    raw_output = None
    for k, rnn in enumerate(layers):
        state = h0[k:k + 1] if cell == "gru" else (h0[k:k + 1], c0[k:k + 1])
        raw_output, _ = rnn(x, state)
        x = lockdrop(raw_output, m_hid[k]) if k < L - 1 else raw_output
    output = lockdrop(raw_output, m_out)
    logits = lin(output)
    nll = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=0)
    reg = alpha * output.pow(2).mean() + beta * (raw_output[:, 1:] - raw_output[:, :-1]).pow(2).mean()
    # how much of the gradient is the regularizers' (the comparison below must see them)
    top = named[f"l{L - 1}.w_hh"]
    reg_share = float(torch.autograd.grad(reg, top, retain_graph=True)[0].norm()
                      / torch.autograd.grad(nll + reg, top, retain_graph=True)[0].norm())
    (nll + reg).backward()

    errors = []
    worst = 0.0

    def cmp(what, c, t):
        r = rel(c, t)
        if not r <= TOL:
            errors.append(f"{what}: relative difference {r:.3g}")
        return r

    for what, key, t in (("loss (NLL)", "loss", nll), ("AR + TAR", "reg", reg)):
        c = float(info[key])
        if not abs(c - t.item()) <= TOL * abs(t.item()):
            errors.append(f"{what}: C {c!r} torch {t.item()!r}")
        worst = max(worst, abs(c - t.item()) / abs(t.item()))
    if int(info["count"]) != int((targets != 0).sum()):
        errors.append("count of unmasked targets differs")
    for n, p in named.items():
        worst = max(worst, cmp(f"grad {n}", G[n], p.grad))
    worst = max(worst, cmp("grad h0", load(d, "dh0.f32", (L, B, H)), h0.grad))
    if cell in ("lstm", "cifg"):
        worst = max(worst, cmp("grad c0", load(d, "dc0.f32", (L, B, H)), c0.grad))
    # the masks did something (dropped weights, words and units) and AR + TAR weigh in the gradient
    if not ((m_whh == 0).any() and (m_words[inputs] == 0).any() and (m_in == 0).any() and reg_share > 0.05):
        errors.append(f"the masks or the regularizers are trivial (AR + TAR: {reg_share:.3g} of the top w_hh gradient)")
    print(f"  {os.path.basename(d)}: AR + TAR {reg_share:.3g} of the top w_hh gradient", file=sys.stderr)
    return errors, worst


def check_case(d):
    info, tensors = read_manifest(os.path.join(d, "manifest.txt"))
    if info.get("awd") == "1":
        return check_awd_case(d, info, tensors)
    V, E, H, L, B, T = (int(info[k]) for k in ("V", "E", "H", "L", "B", "T"))
    cell, tie = info["cell"], int(info["tie"])
    adaptive = info.get("softmax") == "adaptive"
    two_d = ("emb", "head.w") + tuple(f"tail{i}.{k}" for i in range(8) for k in ("proj", "out"))
    shape = {n: ((a, b) if (n.split(".")[-1].startswith("w") and n != "att.w") or n in two_d else (a,))
             for n, a, b in tensors}
    P = {n: load(d, f"param.{n}.f32", shape[n]) for n in shape}
    G = {n: load(d, f"grad.{n}.f32", shape[n]) for n in shape}

    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, E).double()
    peephole = info.get("peephole") == "1"
    if cell in ("cifg", "lnlstm") or peephole:
        rnn = ManualLSTM(cell if cell != "lstm" else "peephole", E, H, L).double()
    else:
        rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        rnn = rnn_cls(E, H, num_layers=L, batch_first=True, **kw).double()
    K = int(info.get("attention", "0"))
    named = {"emb": emb.weight}
    if K:
        att = Attention(H).double()
        for n in ("wy", "wh", "w", "wr", "wx"):
            named[f"att.{n}"] = getattr(att, n)
    if adaptive:
        cutoffs = [int(x) for x in info["cutoffs"].split(",")]
        asm = torch.nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value=float(info["div"]), head_bias=True).double()
        named["head.w"], named["head.b"] = asm.head.weight, asm.head.bias
        for i, tail in enumerate(asm.tail):
            named[f"tail{i}.proj"], named[f"tail{i}.out"] = tail[0].weight, tail[1].weight
    else:
        lin = torch.nn.Linear(H, V).double()
        named["out.b"] = lin.bias
    for k in range(L):
        named[f"l{k}.w_ih"] = getattr(rnn, f"weight_ih_l{k}")
        named[f"l{k}.w_hh"] = getattr(rnn, f"weight_hh_l{k}")
        named[f"l{k}.b_ih"] = getattr(rnn, f"bias_ih_l{k}")
        named[f"l{k}.b_hh"] = getattr(rnn, f"bias_hh_l{k}")
        if peephole:
            named[f"l{k}.peep"] = getattr(rnn, f"peep_l{k}")
        if cell == "lnlstm":
            named[f"l{k}.ln"] = getattr(rnn, f"ln_l{k}")
    if adaptive:
        pass
    elif tie:
        lin.weight = emb.weight
    else:
        named["out.w"] = lin.weight
    inputs, targets, h0, c0 = set_weights_and_load(d, named, P, B, T, L, H)
    out, _ = rnn(emb(inputs), (h0, c0) if cell in ("lstm", "cifg", "lnlstm") else h0)
    if K:
        mem0 = load(d, "mem0.f32", (B, K, H)).requires_grad_(True)
        mlen0 = load(d, "mlen0.f32", (B,)).long()
        out = att(out, mem0, mlen0)
    if adaptive:
        # PAD (0) targets are masked: the loss is over the others; log_prob gives the full distribution
        flat, tflat = out.reshape(-1, H), targets.reshape(-1)
        keep = tflat != 0
        loss = asm(flat[keep], tflat[keep]).loss
        logits = asm.log_prob(flat).reshape(B, T, V)
    else:
        logits = lin(out)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=0)
    loss.backward()

    errors = []

    def cmp(what, c, t):
        r = rel(c, t)
        if not r <= TOL:
            errors.append(f"{what}: relative difference {r:.3g}")
        return r

    worst = 0.0
    worst = max(worst, cmp("logits", load(d, "logits.f32", (B, T, V)), logits.detach()))
    if adaptive:
        worst = max(worst, cmp("inferred log-probabilities", load(d, "infer.f32", (B, T, V)), logits.detach()))
    lc = float(info["loss"])
    if not abs(lc - loss.item()) <= TOL * abs(loss.item()):
        errors.append(f"loss: C {lc!r} torch {loss.item()!r}")
    if int(info["count"]) != int((targets != 0).sum()):
        errors.append("count of unmasked targets differs")
    for n, p in named.items():
        worst = max(worst, cmp(f"grad {n}", G[n], p.grad))
    worst = max(worst, cmp("grad h0", load(d, "dh0.f32", (L, B, H)), h0.grad))
    if cell in ("lstm", "cifg", "lnlstm"):
        worst = max(worst, cmp("grad c0", load(d, "dc0.f32", (L, B, H)), c0.grad))
    if K:
        worst = max(worst, cmp("grad mem0", load(d, "dmem0.f32", (B, K, H)), mem0.grad))

    # Optimizer rules, on the C gradients.
    lr_sgd, lr_adam = float(info["lr_sgd"]), float(info["lr_adam"])
    betas = (float(info["beta1"]), float(info["beta2"]))
    eps, wd = float(info["eps"]), float(info["weight_decay_adamw"])
    steps = int(info["adam_steps"])
    for kind in ("sgd", "adam", "adamw"):
        params = {n: P[n].clone().requires_grad_(True) for n in P}
        if kind == "sgd":
            opt = torch.optim.SGD(params.values(), lr=lr_sgd)
            n_steps = 1
        elif kind == "adam":
            opt = torch.optim.Adam(params.values(), lr=lr_adam, betas=betas, eps=eps)
            n_steps = steps
        else:
            opt = torch.optim.AdamW(params.values(), lr=lr_adam, betas=betas, eps=eps, weight_decay=wd)
            n_steps = steps
        for _ in range(n_steps):
            for n, p in params.items():
                p.grad = G[n].clone()
            opt.step()
        for n, p in params.items():
            worst = max(worst, cmp(f"{kind} {n}", load(d, f"{kind}.{n}.f32", shape[n]), p.detach()))
    return errors, worst


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root = sys.argv[1]
    cases = sorted(c for c in os.listdir(root) if os.path.isfile(os.path.join(root, c, "manifest.txt")))
    if not cases:
        print(f"torch_crosscheck: {root}: no cases", file=sys.stderr)
        return 1
    failed = 0
    for c in cases:
        errors, worst = check_case(os.path.join(root, c))
        if errors:
            failed += 1
            print(f"{c}: FAIL")
            for e in errors:
                print(f"  {e}")
        else:
            print(f"{c}: ok (worst relative difference {worst:.2g})")
    print(f"torch {torch.__version__}: {len(cases) - failed} of {len(cases)} cases ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
