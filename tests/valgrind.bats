#!/usr/bin/env bats
# valgrind memcheck on one end-to-end pipeline: tok -> window -> train (1 tiny epoch) -> eval ->
# sample --suggest (and two --serve requests). No errors, no definite or indirect leaks.
# The tools are built once more into build-vg/ without -march=native, and run with the AVX2 kernels
# (LSTM_KERNEL=avx2, lib/nn/pick.c; the scalar ones where the CPU has no AVX2): valgrind 3.19 does not
# decode AVX-512, which a CPU that has it would otherwise get. OpenBLAS runs one thread
# (OPENBLAS_NUM_THREADS=1, --threads 1); with that no suppressions are needed (none are used).

bats_require_minimum_version 1.5.0

setup_file() {
    export REPO="$BATS_TEST_DIRNAME/.."
    # a plain build whatever the calling make was given (SAN=1, -j jobserver)
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s -C "$REPO" BUILD=build-vg SAN= OPT='-O1 -g' \
        build-all > "$BATS_FILE_TMPDIR/build.log" 2>&1 || { cat "$BATS_FILE_TMPDIR/build.log"; return 1; }
    export V="$REPO/build-vg/bin" OPENBLAS_NUM_THREADS=1 LSTM_KERNEL=avx2
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

vg() { valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$@"; }

@test "valgrind memcheck: the whole pipeline runs clean (no errors, no leaks)" {
    local F="$REPO/tests/fixtures"
    run --separate-stderr vg "$V/lstm-tok" --vocab-out chat.vocab -o chat.tok "$F/eval_chat.csv"
    assert_success
    assert_equal "$stderr" ''
    run --separate-stderr vg "$V/lstm-window" -L 6 -o chat.win chat.tok
    assert_success
    assert_equal "$stderr" ''
    run --separate-stderr vg "$V/lstm-train" -q --hidden 8 --layers 1 --epochs 1 --batch 4 --threads 1 -o chat.ckpt chat.win
    assert_success
    assert_equal "$stderr" ''
    run --separate-stderr vg "$V/lstm-eval" -m chat.ckpt --threads 1 chat.win
    assert_success
    assert_equal "$stderr" ''
    assert_output --partial 'perplexity'
    run --separate-stderr vg "$V/lstm-sample" -m chat.ckpt --suggest 3 'hi, i need '
    assert_success
    assert_equal "$stderr" ''
    [ "${#lines[@]}" -ge 1 ]
    run --separate-stderr bash -c 'printf "%s\n" "i need hel" "{\"text\":\"sure\",\"mode\":\"complete\",\"max_new\":5}" |
                                   valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
                                   --error-exitcode=99 "$V/lstm-sample" -m chat.ckpt --serve'
    assert_success
    assert_equal "$stderr" ''
    assert_equal "${#lines[@]}" 2
}
