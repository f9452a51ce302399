#!/usr/bin/env bats
# The include direction of lib/'s layers (tests/layers.sh): the tree passes; a planted include
# against the direction, a header no layer has and one two layers have each fail with a line naming it.

bats_require_minimum_version 1.5.0

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    ROOT="$BATS_TEST_DIRNAME/.."
    cd "$BATS_TEST_TMPDIR"
}

@test "lib/'s includes go from lm down to common only, never from nn to text or io" {
    run sh "$ROOT/tests/layers.sh" "$ROOT"
    assert_success
    assert_output ""
}

@test "an include against the direction, or a header no layer or two layers have, fails the check" {
    mkdir tree
    cp -r "$ROOT/lib" tree/
    printf '#include "tokenizer.h"\n' >> tree/lib/nn/model.c
    run sh "$ROOT/tests/layers.sh" tree
    assert_failure 1
    assert_output "layers: lib/nn/model.c includes text/tokenizer.h: nn may include only common nn"
    rm -r tree/lib && cp -r "$ROOT/lib" tree/
    printf '#include "nowhere.h"\n' >> tree/lib/io/stream.h
    cp tree/lib/common/errors.h tree/lib/io/errors.h
    run sh "$ROOT/tests/layers.sh" tree
    assert_failure 1
    assert_line 'layers: lib/io/stream.h includes "nowhere.h": no layer has it'
    assert_line --partial 'includes "errors.h": more than one layer has it: common io'
}
