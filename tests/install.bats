#!/usr/bin/env bats
# make install / make uninstall into temporary prefixes (with the build directory the suite runs, so
# nothing is rebuilt elsewhere): the tools, liblstm.a and liblstm.so (soname), the headers, lstm.pc,
# man pages and bash completions; examples/embed built with pkg-config against the prefix alone,
# shared and static, giving the suggestions lstm-sample gives on models trained by the installed tools.

bats_require_minimum_version 1.5.0

# make in the tree, whatever the calling make was given (-j jobserver, SAN=1 on its command line).
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$ROOT" BUILD="$BUILD" SAN="${LSTM_SAN:-}" "$@"
}

# examples/embed copied to $1 and built with the pkg-config given, STATIC=$2.
build_embed() {
    mkdir -p "$1"
    cp "$ROOT/examples/embed/embed.c" "$ROOT/examples/embed/Makefile" "$1/"
    # a sanitized liblstm needs the sanitizer runtime linked into the program, first
    local ld=""
    if [ "${LSTM_SAN:-}" = 1 ]; then ld="-fsanitize=address,undefined"; fi
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$1" STATIC="$2" LDFLAGS="$ld" \
        PKG_CONFIG="${PC:-pkg-config}" > "$1/build.log" 2>&1 || { cat "$1/build.log"; return 1; }
}

setup_file() {
    export ROOT
    ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd -P)
    export BUILD
    BUILD=$(cd "$LSTM_BIN/.." && pwd -P)
    case $BUILD in "$ROOT"/*) BUILD=${BUILD#"$ROOT"/} ;; esac
    export T="$BATS_FILE_TMPDIR" FIX="$BATS_TEST_DIRNAME/fixtures"
    export P="$T/prefix"
    mkdir "$P"
    mk install PREFIX="$P" > "$T/install.log" 2>&1 || { cat "$T/install.log"; return 1; }
    # models trained by the installed tools alone
    PATH="$P/bin:/usr/bin:/bin" sh -ec '
        lstm-tok -q "$1/eval_chat.csv" | lstm-window -q -L 8 | lstm-train --hidden 32 --epochs 3 -q -o "$2/words.ckpt"
        lstm-tok -q --chars "$1/eval_chat.csv" | lstm-window -q -L 16 | lstm-train --hidden 32 --epochs 2 -q -o "$2/chars.ckpt"
    ' sh "$FIX" "$T"
    PKG_CONFIG_PATH="$P/lib/pkgconfig" build_embed "$T/shared" ""
    PKG_CONFIG_PATH="$P/lib/pkgconfig" build_embed "$T/static" 1
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

# The tools of the build, by name.
tools() { for t in "$LSTM_BIN"/lstm-*; do basename "$t"; done; }

@test "install puts the tools, liblstm.a, liblstm.so.0.1.0 (soname liblstm.so.0), the headers and lstm.pc under PREFIX" {
    for t in $(tools); do
        [ -x "$P/bin/$t" ]
        # help2man reads both from stdout
        run --separate-stderr env PATH="$P/bin:/usr/bin:/bin" "$t" --version
        assert_success
        assert_output --regexp "^$t [0-9]+\.[0-9]+"
        assert_equal "$stderr" ""
        run --separate-stderr env PATH="$P/bin:/usr/bin:/bin" "$t" --help
        assert_success
        assert_line --regexp "^Usage: $t "
        assert_equal "$stderr" ""
    done
    [ -f "$P/lib/liblstm.a" ]
    [ -f "$P/lib/liblstm.so.0.1.0" ]
    assert_equal "$(readlink "$P/lib/liblstm.so.0")" liblstm.so.0.1.0
    assert_equal "$(readlink "$P/lib/liblstm.so")" liblstm.so.0
    run readelf -d "$P/lib/liblstm.so.0.1.0"
    assert_line --regexp 'SONAME.*\[liblstm\.so\.0\]'
    assert_line --regexp 'NEEDED.*\[libzstd\.so'
    # every header of lib/, flat under include/lstm/
    for h in "$ROOT"/lib/*/*.h; do cmp "$h" "$P/include/lstm/$(basename "$h")"; done
    export PKG_CONFIG_PATH="$P/lib/pkgconfig"
    run pkg-config --modversion lstm
    assert_output 0.1.0
    run pkg-config --cflags --libs lstm
    assert_output --regexp "^-I$P/include/lstm .*-L$P/lib -llstm *\$"
    run pkg-config --static --libs lstm
    assert_output --partial '-licuuc'
    assert_output --partial '-lsentencepiece'
    assert_output --partial '-lzstd'
    assert_output --partial '-lopenblas'
    assert_output --partial '-ljansson'
    assert_output --partial '-lxxhash'
    assert_output --partial '-lstdc++'
}

@test "every installed header compiles on its own with pkg-config --cflags lstm" {
    local cflags
    cflags=$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags lstm)
    for h in "$P"/include/lstm/*.h; do
        run cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -x c - $cflags <<< "#include <$(basename "$h")>"
        assert_success
    done
}

@test "examples/embed against the prefix, shared (its rpath finds liblstm.so.0): the suggestions lstm-sample gives" {
    run ldd "$T/shared/embed"
    assert_line --regexp "liblstm\.so\.0 => $P/lib/liblstm\.so\.0 "
    local m p
    for m in words chars; do
        for p in 'hi, i need help with my ' 'can you reset my pa' 'i was charged twice for my ' 'the ' ''; do
            run --separate-stderr "$P/bin/lstm-sample" -q -m "$T/$m.ckpt" --suggest 5 "$p"
            assert_success
            [ -n "$output" ]
            local want=$output
            run --separate-stderr "$T/shared/embed" "$T/$m.ckpt" 5 "$p"
            assert_success
            assert_output "$want"
        done
    done
}

@test "examples/embed linked with liblstm.a (STATIC=1, pkg-config --static) needs no liblstm.so and gives the same" {
    run ldd "$T/static/embed"
    refute_output --partial liblstm
    local p
    for p in 'hi, i need help with my ' 'can you reset my pa'; do
        run --separate-stderr "$P/bin/lstm-sample" -q -m "$T/words.ckpt" --suggest 3 "$p"
        local want=$output
        run --separate-stderr "$T/static/embed" "$T/words.ckpt" 3 "$p"
        assert_success
        assert_output "$want"
    done
    run --separate-stderr "$T/static/embed" "$T/nowhere.ckpt" 3 "hi "
    assert_failure 1
    assert_equal "$stderr" "embed: $T/nowhere.ckpt: No such file or directory"
}

@test "man -l renders every tool's page (from its --help) and its NAME names the tool" {
    for t in $(tools); do
        [ -f "$P/share/man/man1/$t.1" ]
        run --separate-stderr env MANWIDTH=200 man -l "$P/share/man/man1/$t.1"
        assert_success
        assert_line --regexp "^ +$t - [a-z]"
        assert_line --regexp '^SYNOPSIS'
        assert_output --partial -- '--help'
    done
}

@test "the bash completions complete options from --help, subcommands, and file names after an option's argument" {
    for t in $(tools); do [ -f "$P/share/bash-completion/completions/$t" ]; done
    local C="$P/share/bash-completion/completions"
    touch chat.csv chat.tok
    run bash --norc -c 'source "$1"; complete -p lstm-tok; COMP_WORDS=(lstm-tok --vocab-o); COMP_CWORD=1; _lstm_tok
        printf "%s\n" "${COMPREPLY[@]}"' _ "$C/lstm-tok"
    assert_success
    assert_output "complete -o filenames -F _lstm_tok lstm-tok
--vocab-out"
    # an option's argument and a plain argument are file names
    run bash --norc -c 'source "$1"; COMP_WORDS=(lstm-tok -o chat.t); COMP_CWORD=2; _lstm_tok; printf "%s\n" "${COMPREPLY[@]}"
        COMP_WORDS=(lstm-tok --words ch); COMP_CWORD=2; _lstm_tok; printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$C/lstm-tok"
    assert_output "chat.tok
chat.csv
chat.tok"
    run bash --norc -c 'source "$1"; COMP_WORDS=(lstm-train --cl); COMP_CWORD=1; _lstm_train; printf "%s\n" "${COMPREPLY[@]}"' _ "$C/lstm-train"
    assert_output --clip
    run bash --norc -c 'source "$1"; COMP_WORDS=(lstm-ngram e); COMP_CWORD=1; _lstm_ngram; printf "%s\n" "${COMPREPLY[@]}"' _ "$C/lstm-ngram"
    assert_output eval
}

@test "DESTDIR stages the prefix: lstm.pc names PREFIX, embed builds from the stage, uninstall empties it" {
    local S="$BATS_TEST_TMPDIR/stage"
    run mk install DESTDIR="$S" PREFIX=/opt/lstm
    assert_success
    [ -x "$S/opt/lstm/bin/lstm-sample" ]
    run grep '^prefix=' "$S/opt/lstm/lib/pkgconfig/lstm.pc"
    assert_output prefix=/opt/lstm
    PC="pkg-config --define-variable=prefix=$S/opt/lstm" PKG_CONFIG_PATH="$S/opt/lstm/lib/pkgconfig" build_embed emb ""
    run --separate-stderr "$S/opt/lstm/bin/lstm-sample" -q -m "$T/words.ckpt" --suggest 4 'hi, i need help with my '
    local want=$output
    run --separate-stderr emb/embed "$T/words.ckpt" 4 'hi, i need help with my '
    assert_output "$want"
    run mk uninstall DESTDIR="$S" PREFIX=/opt/lstm
    assert_success
    assert_output --regexp "^uninstall: removed [0-9]+ files and 13 directories from $S/opt/lstm\$"
    run find "$S"
    assert_output "$S"
}

@test "uninstall removes every file install put in the prefix and the directories it created, nothing else" {
    local Q="$BATS_TEST_TMPDIR/q"
    # what was there before: a file of someone else's in bin/, an empty man1/
    mkdir -p "$Q/bin" "$Q/share/man/man1"
    echo mine > "$Q/bin/other-tool"
    run mk install PREFIX="$Q"
    assert_success
    run mk install PREFIX="$Q"   # a second install over the first keeps the record of what the first created
    assert_success
    run mk uninstall PREFIX="$Q"
    assert_success
    run sh -c 'find "$1" -mindepth 1 | sort' _ "$Q"
    assert_output "$Q/bin
$Q/bin/other-tool
$Q/share
$Q/share/man
$Q/share/man/man1"
    # the suite's prefix: no file left, and no directory install created
    run mk uninstall PREFIX="$P"
    assert_success
    run find "$P" -mindepth 1
    assert_output ""
    # uninstall again: nothing to do, still success
    run mk uninstall PREFIX="$P"
    assert_success
    assert_output "uninstall: removed 0 files and 0 directories from $P"
}
