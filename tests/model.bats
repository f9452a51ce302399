#!/usr/bin/env bats
# The model against PyTorch: test_torchdump writes weights, inputs, logits, loss, every gradient and
# the parameters after SGD / Adam / AdamW steps for lstm, gru, rnn, cifg, the LayerNorm lstm, the peephole lstm and the lstm with attention over its last 3 outputs (torch autograd modules for the last four; the attention case with a carried-in memory and its gradient), tied
# and untied, and the adaptive softmax; and AWD-regularized steps (with their masks: locked dropout,
# word dropout, weight drop, AR and TAR);
# torch_crosscheck.py rebuilds the same models with torch.nn and compares (relative 1e-4).
# A missing torch is a failure, not a skip: the cross-check is part of the proof of correctness.

bats_require_minimum_version 1.5.0

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    TESTBIN="${LSTM_TESTBIN:-$BATS_TEST_DIRNAME/../build/tests}"
    PY="${TORCH_PY:-/usr/bin/python3}"
}

@test "torch is importable by TORCH_PY" {
    run --separate-stderr "$PY" -c 'import torch, numpy; print(torch.__version__)'
    assert_success
}

@test "test_torchdump self-check passes" {
    run --separate-stderr "$TESTBIN/test_torchdump"
    assert_success
    assert_output "test_torchdump: ok"
}

@test "logits, loss, gradients and optimizer steps match PyTorch for lstm/gru/rnn/cifg/lnlstm, peephole lstm, lstm with attention (carried-in memory), tied and untied, and the adaptive softmax" {
    run --separate-stderr "$TESTBIN/test_torchdump" "$BATS_TEST_TMPDIR/dump"
    assert_success
    run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/torch_crosscheck.py" "$BATS_TEST_TMPDIR/dump"
    assert_success
    assert_output --partial "20 of 20 cases ok"
    for c in lstm_tie0 lstm_tie1 gru_tie0 gru_tie1 rnn_tie0 rnn_tie1 cifg_tie0 cifg_tie1 lnlstm_tie0 lnlstm_tie1 lstm_peephole_tie0 lstm_peephole_tie1 lstm_attention_tie0 lstm_attention_tie1 lstm_adaptive gru_adaptive; do
        assert_line --partial "$c: ok"
    done
}

@test "AWD regularization matches PyTorch (AWD-LSTM's embedded_dropout, LockedDropout, WeightDrop, AR, TAR on the same masks): NLL, AR + TAR, every gradient" {
    run --separate-stderr "$TESTBIN/test_torchdump" "$BATS_TEST_TMPDIR/dump"
    assert_success
    run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/torch_crosscheck.py" "$BATS_TEST_TMPDIR/dump"
    assert_success
    for c in lstm_awd_tie0 gru_awd_tie1 cifg_awd_tie0 lstm_awd_tie1_unlocked; do
        assert_line --partial "$c: ok"
    done
    # the regularizers weigh in the gradients compared (their share of the top layer's w_hh gradient)
    [[ "$stderr" =~ "lstm_awd_tie0: AR + TAR 0."[1-9] ]]
}

@test "the AWD cross-check fails on a gradient off by 0.1% and on another weight-drop mask" {
    run --separate-stderr "$TESTBIN/test_torchdump" "$BATS_TEST_TMPDIR/dump"
    assert_success
    "$PY" - "$BATS_TEST_TMPDIR/dump/lstm_awd_tie0/grad.l1.w_hh.f32" "$BATS_TEST_TMPDIR/dump/gru_awd_tie1/mask_whh.f32" <<'PY'
import sys, numpy as np
g = np.fromfile(sys.argv[1], dtype="<f4")
g[np.argmax(abs(g))] += 1e-3 * abs(g).max()
g.tofile(sys.argv[1])
m = np.fromfile(sys.argv[2], dtype="<f4")
k = int(np.argmin(m))  # a dropped weight of layer 0, kept on the torch side
m[k] = m.max()
m.tofile(sys.argv[2])
PY
    run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/torch_crosscheck.py" "$BATS_TEST_TMPDIR/dump"
    assert_failure 1
    assert_line "lstm_awd_tie0: FAIL"
    assert_line --partial "grad l1.w_hh: relative difference"
    assert_line "gru_awd_tie1: FAIL"
    assert_output --partial "18 of 20 cases ok"
}

@test "the cross-check fails on a gradient that is off by 0.1%" {
    run --separate-stderr "$TESTBIN/test_torchdump" "$BATS_TEST_TMPDIR/dump"
    assert_success
    "$PY" - "$BATS_TEST_TMPDIR/dump/lstm_tie0/grad.l0.w_hh.f32" <<'PY'
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype="<f4")
a[3] += 1e-3 * abs(a).max()
a.tofile(sys.argv[1])
PY
    run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/torch_crosscheck.py" "$BATS_TEST_TMPDIR/dump"
    assert_failure 1
    assert_line "lstm_tie0: FAIL"
    assert_line --partial "grad l0.w_hh: relative difference"
    assert_output --partial "19 of 20 cases ok"
}

@test "the cross-check fails on an attention memory gradient that is off by 0.1%" {
    run --separate-stderr "$TESTBIN/test_torchdump" "$BATS_TEST_TMPDIR/dump"
    assert_success
    "$PY" - "$BATS_TEST_TMPDIR/dump/lstm_attention_tie0/dmem0.f32" <<'PY'
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype="<f4")
a[np.argmax(abs(a))] *= 1.001
a.tofile(sys.argv[1])
PY
    run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/torch_crosscheck.py" "$BATS_TEST_TMPDIR/dump"
    assert_failure 1
    assert_line "lstm_attention_tie0: FAIL"
    assert_line --partial "grad mem0: relative difference"
    assert_output --partial "19 of 20 cases ok"
}
