# lstm-* tools: build, test, demo, bench, install, clean.
#   make            build lib/liblstm.a and every tool into $(BUILD)/bin
#   make test       build and run every test (C unit tests, then bats)
#   make demo       the end-to-end demo on the sample shipped in examples/
#   make bench      benchmarks (never part of the tests)
#   make SAN=1 test the same tests built with ASan + UBSan (in build-san/)
#   make native     the tools built with -march=native (in build-native/), to compare with the default
#                   build, which runs on any x86-64 and picks its GEMM kernel at run time
#   make fuzz       libFuzzer harnesses (tests/fuzz/), FUZZ_SECONDS each (default 60), in build-fuzz/
#   make install PREFIX=/usr/local [DESTDIR=stage]   tools, liblstm.a/.so, headers, lstm.pc, man pages, completions
#   make uninstall PREFIX=/usr/local [DESTDIR=stage] removes exactly what install put there
# Missing Debian packages are installed on first build (apt-get, via sudo when not root); those only
# the benchmarks use (BENCH_DEBS) on the first make bench.

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT = -O1 -g
else
BUILD ?= build
SANFLAGS =
# No -march: the binaries run on any x86-64 (the GEMM kernels for AVX-512, AVX2 and plain x86-64 are
# all built in and one is picked at run time, lib/nn/gemm_pick.c). `make native` sets ARCH=-march=native.
ARCH ?=
OPT = -O2 -g $(ARCH) -ffp-contract=off
endif

# Install layout (DESTDIR stages a package: files go to $(DESTDIR)$(PREFIX)/..., lstm.pc names $(PREFIX)).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
LSTM_DATADIR = $(PREFIX)/share/lstm
# liblstm's version: the soname is liblstm.so.MAJOR (bump MAJOR when the ABI breaks).
LIB_VERSION = 0.1.0
SOMAJOR = $(firstword $(subst ., ,$(LIB_VERSION)))
PKGS = icu-uc sentencepiece libzstd openblas jansson libxxhash
DEBS = pkg-config libicu-dev libsentencepiece-dev sentencepiece libzstd-dev zstd libopenblas-dev \
       libjansson-dev libxxhash-dev bats bats-support bats-assert bats-file python3-torch g++ gnuplot-nox \
       help2man libmicrohttpd-dev curl chromium chromium-driver python3-selenium \
       libopenmpi-dev openmpi-bin
# Packages only the benchmarks use (make bench): wrk loads lstm-serve (tests/bench/serve_http.sh).
BENCH_DEBS = wrk
# Packages only some tools link (not liblstm, so not in lstm.pc): TOOL_PKGS_<tool>.
TOOL_PKGS_lstm-serve = libmicrohttpd
# lstm-train runs as N ranks under mpirun when Open MPI is there (tools/train/dist.c: MPI glue, or
# its one-rank twin without it); liblstm never links MPI. TOOL_SRCS_<tool>: more sources of a tool.
HAVE_MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1)
TOOL_PKGS_lstm-train = $(if $(HAVE_MPI),ompi-c)
TOOL_DEFS_lstm-train = $(if $(HAVE_MPI),-DLSTM_HAVE_MPI)
TOOL_SRCS_lstm-train = tools/train/dist.c
TORCH_PY ?= /usr/bin/python3

CC ?= cc
CXX ?= c++
DEPS_STAMP = $(BUILD)/.deps-ok
BENCH_DEPS_STAMP = $(BUILD)/.bench-deps-ok
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# lib/ is grouped by layer (tests/layers.sh checks the direction); every layer is on the include path.
LIB_LAYERS = common io text nn lm
LIB_INC = $(LIB_LAYERS:%=-Ilib/%)
CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -Wall -Wextra $(LIB_INC) $(SANFLAGS) $(PKG_CFLAGS)
CXXFLAGS = -std=c++17 $(OPT) -Wall -Wextra $(LIB_INC) $(SANFLAGS) $(PKG_CFLAGS)
LDLIBS = $(PKG_LIBS) -lstdc++ -lm -lpthread
LDFLAGS = $(SANFLAGS)

LIB_C = $(filter-out $(KERNEL_SRC) lib/nn/pick.c,$(wildcard lib/*/*.c))
LIB_CC = $(wildcard lib/*/*.cc)
LIB_H = $(wildcard lib/*/*.h)
# The files of kernels: each compiled once per x86-64 kernel (lib/nn/gemm_avx2.o, ...: GEMM_VARIANTS and
# their -m flags below) and lib/nn/pick.c choosing among them at run time; where there are no
# variants (not x86), each once as it is.
KERNEL_SRC = lib/nn/gemm.c lib/nn/vec.c
KERNEL_OBJ = $(if $(GEMM_VARIANTS),$(foreach f,$(KERNEL_SRC:.c=),$(GEMM_VARIANTS:%=$(f)_%.o)) lib/nn/pick.o,$(KERNEL_SRC:.c=.o))
LIB_OBJ = $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CC:%.cc=$(BUILD)/%.o) $(KERNEL_OBJ:%=$(BUILD)/%)
LIBA = $(BUILD)/liblstm.a
# The shared library is built from a second, position-independent object set.
PIC_OBJ = $(LIB_C:%.c=$(BUILD)/pic/%.o) $(LIB_CC:%.cc=$(BUILD)/pic/%.o) $(KERNEL_OBJ:%=$(BUILD)/pic/%)
SOLIB = $(BUILD)/liblstm.so.$(LIB_VERSION)

TOOL_SRC = $(wildcard tools/*/lstm-*.c)
TOOLS = $(foreach s,$(TOOL_SRC),$(BUILD)/bin/$(basename $(notdir $(s))))
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNITS = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BATS = $(sort $(wildcard tests/*.bats))
MANS = $(TOOLS:$(BUILD)/bin/%=$(BUILD)/man/%.1)
COMPLETIONS = $(TOOLS:$(BUILD)/bin/%=$(BUILD)/completions/%)

# The kernel variants of lib/nn/gemm.c and vec.c (their #if picks AVX-512, else AVX2 + FMA, else
# scalar by the -m flags they are compiled with); lib/nn/pick.c picks one at run time. GEMM_CPU_x:
# the /proc/cpuinfo flags a variant needs to run; without them `make unit` says it was not run.
GEMM_VARIANTS := $(if $(filter x86_64 i386 i686,$(shell uname -m)),avx512 avx2 scalar)
GEMM_FLAGS_avx512 = -mavx512f -mavx2 -mfma
GEMM_FLAGS_avx2 = -mno-avx512f -mavx2 -mfma
GEMM_FLAGS_scalar = -mno-avx512f -mno-avx2
GEMM_CPU_avx512 = avx512f
GEMM_CPU_avx2 = avx2 fma
GEMM_CPU_scalar =

.PHONY: all build-all deps test unit bats demo bench install install-files uninstall clean fuzz native
.DELETE_ON_ERROR:

# The real build runs in a sub-make so that pkg-config sees packages installed by `deps`.
all: deps
	@$(MAKE) --no-print-directory build-all

build-all: $(LIBA) $(TOOLS)

# $(call apt_install,PACKAGES): installs those of the Debian packages that are missing.
define apt_install
@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing missing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
endef

# Install missing Debian packages once per build directory.
$(DEPS_STAMP): Makefile
	$(call apt_install,$(DEBS))
	@mkdir -p $(@D) && touch $@

# What only `make bench` needs, installed the same way on its first run.
$(BENCH_DEPS_STAMP): Makefile
	$(call apt_install,$(BENCH_DEBS))
	@mkdir -p $(@D) && touch $@

# Re-run make after deps so pkg-config flags are picked up in a fresh clone.
deps: $(DEPS_STAMP)

$(BUILD)/lib/%.o: lib/%.c $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/lib/%.o: lib/%.cc $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/pic/lib/%.o: lib/%.c $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/pic/lib/%.o: lib/%.cc $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -fPIC -c $< -o $@

# $(call kernel_rules,FILE,VARIANT): FILE_VARIANT.o (static and PIC) from lib/nn/FILE.c, with the
# variant's -m flags and FILE's VARIANT macro (GEMM_VARIANT, VEC_VARIANT) naming it.
define kernel_rules
$(BUILD)/lib/nn/$(1)_$(2).o: lib/nn/$(1).c $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $$(GEMM_FLAGS_$(2)) -D$(shell echo $(1) | tr a-z A-Z)_VARIANT=$(2) -c $$< -o $$@
$(BUILD)/pic/lib/nn/$(1)_$(2).o: lib/nn/$(1).c $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $$(GEMM_FLAGS_$(2)) -D$(shell echo $(1) | tr a-z A-Z)_VARIANT=$(2) -fPIC -c $$< -o $$@
endef
$(foreach f,$(KERNEL_SRC:lib/nn/%.c=%),$(foreach v,$(GEMM_VARIANTS),$(eval $(call kernel_rules,$(f),$(v)))))

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# liblstm.so.X.Y.Z with soname liblstm.so.X, its dependencies recorded (DT_NEEDED), and the
# liblstm.so.X and liblstm.so links beside it.
$(SOLIB): $(PIC_OBJ)
	$(CC) -shared -Wl,-soname,liblstm.so.$(SOMAJOR) -Wl,--no-undefined -o $@ $^ $(LDFLAGS) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/liblstm.so.$(SOMAJOR)
	ln -sf liblstm.so.$(SOMAJOR) $(BUILD)/liblstm.so

# A man page per tool from its --help and --version (help2man); NAME is the first sentence (or clause
# before a colon) of the paragraph after the usage lines.
$(BUILD)/man/%.1: $(BUILD)/bin/% | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "help2man $< > $@"; name=$$($< --help | awk 'NR > 1 && /^[^ \t]/ { on = 1 } on && $$0 == "" { exit } \
	  on { s = s (s == "" ? "" : " ") $$0 } END { sub(/[.:] .*/, "", s); sub(/[.:]$$/, "", s); print tolower(substr(s, 1, 1)) substr(s, 2) }'); \
	help2man --no-info --section=1 --manual='lstm-* tools' --name="$$name" --output=$@.tmp $< && mv $@.tmp $@

# A bash completion per tool: options from its --help, file names otherwise.
$(BUILD)/completions/%: $(BUILD)/bin/% tools/completions/gen-completion.sh
	@mkdir -p $(@D)
	sh tools/completions/gen-completion.sh $< > $@.tmp && mv $@.tmp $@

# pkg-config file for the prefix given (rewritten at every install: PREFIX may change).
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
$(BUILD)/lstm.pc: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(PC_LIBDIR)' 'includedir=$(PC_INCLUDEDIR)' '' \
	  'Name: lstm' 'Description: LSTM language models: tokenizer, record streams, training, next-word suggestions' \
	  'Version: $(LIB_VERSION)' 'Requires.private: $(PKGS)' 'Cflags: -I$${includedir}/lstm' \
	  'Libs: -L$${libdir} -llstm' 'Libs.private: -lstdc++ -lm -lpthread' > $@
FORCE:

# One rule per tool: build/bin/lstm-x from tools/<dir>/lstm-x.c.
# tools/common/: what the tools share (messages, flag parsing, -q/-v, version, time, the keystroke report),
# linked into each.
TOOL_COMMON_OBJ = $(patsubst tools/common/%.c,$(BUILD)/tools/common/%.o,$(wildcard tools/common/*.c))
$(BUILD)/tools/common/%.o: tools/common/%.c $(wildcard tools/common/*.h) $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itools/common -c $< -o $@

define tool_rule
$(BUILD)/bin/$(basename $(notdir $(1))): $(1) $(TOOL_SRCS_$(basename $(notdir $(1)))) $(wildcard $(dir $(1))*.h) $(LIBA) $(LIB_H) $(TOOL_COMMON_OBJ) $(wildcard tools/common/*.h)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $$(TOOL_DEFS_$$(@F)) $$(if $$(TOOL_PKGS_$$(@F)),$$(shell pkg-config --cflags $$(TOOL_PKGS_$$(@F)))) -Itools/common -o $$@ $(1) \
	  $$(TOOL_SRCS_$$(@F)) $(TOOL_COMMON_OBJ) $(LIBA) $$(LDFLAGS) $$(if $$(TOOL_PKGS_$$(@F)),$$(shell pkg-config --libs $$(TOOL_PKGS_$$(@F)))) $$(LDLIBS)
endef
$(foreach s,$(TOOL_SRC),$(eval $(call tool_rule,$(s))))
# lstm-serve assembles its page into the binary (.incbin, a path from the top of the tree).
$(BUILD)/bin/lstm-serve: tools/serve/page.html

$(BUILD)/tests/%: tests/unit/%.c $(LIBA) $(LIB_H) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBA) $(LDFLAGS) $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory build-all $(UNITS)
	@$(MAKE) --no-print-directory unit bats

# The kernel tests (test_gemm, test_kernels) run once per kernel variant of the library, each asked
# for by LSTM_KERNEL (lib/nn/pick.c; the tests check they got it). A variant the CPU cannot run is
# reported as not run, never passed silently.
KERNEL_TESTS = $(BUILD)/tests/test_gemm $(BUILD)/tests/test_kernels
UNITS_RUN = $(if $(GEMM_VARIANTS),$(filter-out $(KERNEL_TESTS),$(UNITS)),$(UNITS))
unit: $(UNITS)
	@set -e; for t in $(UNITS_RUN); do echo "unit: $$t"; $$t; done; \
	$(foreach v,$(GEMM_VARIANTS),missing=""; \
	  for f in $(GEMM_CPU_$(v)); do grep -qw $$f /proc/cpuinfo 2>/dev/null || missing="$$missing $$f"; done; \
	  for t in $(KERNEL_TESTS); do \
	  if [ -n "$$missing" ]; then echo "unit: LSTM_KERNEL=$(v) $$t: NOT RUN: this CPU lacks$$missing (the $(v) kernels are untested here)"; \
	  else echo "unit: LSTM_KERNEL=$(v) $$t"; LSTM_KERNEL=$(v) $$t; fi; done;)

# Tests that cannot fail are failures: '[ a ] && [ b ]' in a test passes when a is false (bats checks
# only the last command's status), and a skipped test proves nothing. The TAP report names the skips.
bats: build-all $(UNITS)
	@if grep -Hn '\] && \[' $(BATS) >&2; then \
	  echo "make: the lines above do not fail their test when the first [ ] is false: write '[ a ]; [ b ]' or '[[ a && b ]]'" >&2; exit 1; fi
	@if grep -Hn '^[[:space:]]*! ' $(BATS) >&2; then \
	  echo "make: '! cmd' above never fails its test (bash's errexit ignores it): write 'run cmd' and 'assert_failure'" >&2; exit 1; fi
	@rm -rf $(BUILD)/bats-report && mkdir -p $(BUILD)/bats-report
	@LSTM_SAN=$(SAN) LSTM_BIN=$(CURDIR)/$(BUILD)/bin LSTM_TESTBIN=$(CURDIR)/$(BUILD)/tests TORCH_PY=$(TORCH_PY) \
	  bats --print-output-on-failure --report-formatter tap --output $(BUILD)/bats-report $(BATS); rc=$$?; \
	skipped=$$(grep -E '^ok [0-9]+ .* # skip' $(BUILD)/bats-report/report.tap); \
	if [ -n "$$skipped" ]; then printf '%s\n' "make: skipped tests fail the run:" "$$skipped" >&2; exit 1; fi; \
	if [ ! -s $(BUILD)/bats-report/report.tap ]; then echo "make: bats wrote no report" >&2; exit 1; fi; \
	exit $$rc

# The old way, for comparisons: every file for this CPU only (the benchmarks take BIN=build-native/bin).
native:
	@$(MAKE) --no-print-directory BUILD=build-native ARCH=-march=native all

demo: all
	@$(MAKE) --no-print-directory -C examples/chat demo BIN=$(CURDIR)/$(BUILD)/bin

fuzz: all
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk BIN=$(CURDIR)/$(BUILD)/bin

bench: all $(BENCH_DEPS_STAMP)
	@$(MAKE) --no-print-directory -C tests/bench BIN=$(CURDIR)/$(BUILD)/bin TORCH_PY=$(TORCH_PY)

# What install puts under the prefix; LSTM_DATADIR/install-manifest also lists every file and every
# directory install created, so uninstall removes those and nothing else, whatever the tree is then.
INSTALL_DIRS = $(BINDIR) $(LIBDIR)/pkgconfig $(INCLUDEDIR)/lstm $(MANDIR)/man1 $(BASHCOMPDIR) $(LSTM_DATADIR)
INSTALLED = $(TOOLS:$(BUILD)/bin/%=$(BINDIR)/%) \
    $(addprefix $(LIBDIR)/,liblstm.a liblstm.so.$(LIB_VERSION) liblstm.so.$(SOMAJOR) liblstm.so pkgconfig/lstm.pc) \
    $(addprefix $(INCLUDEDIR)/lstm/,$(notdir $(LIB_H))) $(MANS:$(BUILD)/man/%=$(MANDIR)/man1/%) \
    $(COMPLETIONS:$(BUILD)/completions/%=$(BASHCOMPDIR)/%)
MANIFEST = $(LSTM_DATADIR)/install-manifest

install: deps
	@$(MAKE) --no-print-directory install-files

install-files: build-all $(SOLIB) $(MANS) $(COMPLETIONS) $(BUILD)/lstm.pc
	@set -e; D='$(DESTDIR)'; new=$(BUILD)/install-manifest.new; : > $$new; \
	for d in $(INSTALL_DIRS); do while [ "$$d" != / ] && [ "$$d" != . ] && [ ! -d "$$D$$d" ]; do echo "d $$d" >> $$new; d=$$(dirname "$$d"); done; done; \
	for f in $(INSTALLED) $(MANIFEST); do echo "f $$f" >> $$new; done; \
	for d in $(INSTALL_DIRS); do install -d "$$D$$d"; done; \
	echo "install: $(words $(INSTALLED) $(MANIFEST)) files into $$D$(PREFIX) (listed in $$D$(MANIFEST))"; \
	install -m 755 $(TOOLS) "$$D$(BINDIR)/"; \
	install -m 644 $(LIBA) "$$D$(LIBDIR)/"; \
	install -m 755 $(SOLIB) "$$D$(LIBDIR)/"; \
	ln -sf liblstm.so.$(LIB_VERSION) "$$D$(LIBDIR)/liblstm.so.$(SOMAJOR)"; \
	ln -sf liblstm.so.$(SOMAJOR) "$$D$(LIBDIR)/liblstm.so"; \
	install -m 644 $(BUILD)/lstm.pc "$$D$(LIBDIR)/pkgconfig/lstm.pc"; \
	install -m 644 $(LIB_H) "$$D$(INCLUDEDIR)/lstm/"; \
	install -m 644 $(MANS) "$$D$(MANDIR)/man1/"; \
	install -m 644 $(COMPLETIONS) "$$D$(BASHCOMPDIR)/"; \
	if [ -f "$$D$(MANIFEST)" ]; then cat "$$D$(MANIFEST)" >> $$new; fi; \
	sort -u $$new > $$new.s && install -m 644 $$new.s "$$D$(MANIFEST)" && rm -f $$new $$new.s

# Files first (the ones this tree installs and the ones the manifest lists), then the directories
# install created, deepest first, each only if empty.
uninstall:
	@D='$(DESTDIR)'; m="$$D$(MANIFEST)"; files='$(INSTALLED)'; dirs=""; \
	if [ -f "$$m" ]; then files="$$files $$(sed -n 's/^f //p' "$$m")"; dirs=$$(sed -n 's/^d //p' "$$m" | sort -r); fi; \
	n=0; st=0; for f in $$files; do if [ -e "$$D$$f" ] || [ -L "$$D$$f" ]; then rm -f "$$D$$f" && n=$$((n + 1)) || st=1; fi; done; \
	k=0; for d in $$dirs; do if [ -d "$$D$$d" ] && rmdir "$$D$$d" 2>/dev/null; then k=$$((k + 1)); fi; done; \
	echo "uninstall: removed $$n files and $$k directories from $$D$(PREFIX)"; exit $$st

clean:
	rm -rf build build-san build-fuzz build-vg build-native
