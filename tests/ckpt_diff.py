#!/usr/bin/env python3
"""ckpt_diff.py A.ckpt B.ckpt: how far apart the parameters of two lstm-train checkpoints are.

Prints one line: n (floats), identical (1 when every bit agrees), max_abs (largest |a - b|),
max_rel (max |a - b| / max |a|: the gap against the largest weight) and rel_l2 (||a - b|| / ||a||).
Reads the file as formats/checkpoint.md describes it (header, entry table, the `params` tensor);
exit 1 when either file has no `params` entry or the two differ in size."""
import array
import math
import struct
import sys


def params(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89LCKP\r\n\x1a":
        sys.exit(f"ckpt_diff.py: {path}: not a checkpoint")
    n_entries, = struct.unpack_from("<I", data, 24)
    table_off, = struct.unpack_from("<Q", data, 32)
    p = table_off
    for _ in range(n_entries):
        kind, name_len = data[p], data[p + 1]
        name = data[p + 2:p + 2 + name_len].decode()
        p += 2 + name_len
        ndim = data[p]
        p += 1 + 8 * ndim
        off, nbytes = struct.unpack_from("<QQ", data, p)
        p += 16
        if name == "params" and kind == 1:
            v = array.array("f", data[off:off + nbytes])
            if sys.byteorder != "little":
                v.byteswap()
            return v
    sys.exit(f"ckpt_diff.py: {path}: no params entry")


def main():
    a, b = params(sys.argv[1]), params(sys.argv[2])
    if len(a) != len(b):
        sys.exit(f"ckpt_diff.py: {len(a)} parameters against {len(b)}")
    d = [abs(x - y) for x, y in zip(a, b)]
    ref_max = max(abs(x) for x in a)
    l2d = math.sqrt(sum(x * x for x in d))
    l2a = math.sqrt(sum(x * x for x in a))
    print(f"n={len(a)} identical={int(a.tobytes() == b.tobytes())} max_abs={max(d):.3g} "
          f"max_rel={max(d) / max(ref_max, 1e-30):.3g} rel_l2={l2d / max(l2a, 1e-30):.3g}")


main()
