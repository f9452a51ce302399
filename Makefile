# lstm-* tools: build, test, demo, bench, install, clean.
#   make            build lib/liblstm.a and every tool into $(BUILD)/bin
#   make test       build and run every test (C unit tests, then bats)
#   make demo       the end-to-end demo on the sample shipped in examples/
#   make bench      benchmarks (never part of the tests)
#   make SAN=1 test the same tests built with ASan + UBSan (in build-san/)
#   make fuzz       libFuzzer harnesses (tests/fuzz/), FUZZ_SECONDS each (default 60), in build-fuzz/
#   make install PREFIX=/usr/local
# Missing Debian packages are installed on first build (apt-get, via sudo when not root).

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT = -O1 -g
else
BUILD ?= build
SANFLAGS =
OPT = -O2 -g -march=native -ffp-contract=off
endif

PREFIX ?= /usr/local
PKGS = icu-uc sentencepiece libzstd openblas jansson libxxhash
DEBS = pkg-config libicu-dev libsentencepiece-dev sentencepiece libzstd-dev zstd libopenblas-dev \
       libjansson-dev libxxhash-dev bats bats-support bats-assert bats-file python3-torch g++ gnuplot-nox
TORCH_PY ?= /usr/bin/python3

CC ?= cc
CXX ?= c++
DEPS_STAMP = $(BUILD)/.deps-ok
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# lib/ is grouped by layer (tests/layers.sh checks the direction); every layer is on the include path.
LIB_LAYERS = common io text nn lm
LIB_INC = $(LIB_LAYERS:%=-Ilib/%)
CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -Wall -Wextra $(LIB_INC) $(SANFLAGS) $(PKG_CFLAGS)
CXXFLAGS = -std=c++17 $(OPT) -Wall -Wextra $(LIB_INC) $(SANFLAGS) $(PKG_CFLAGS)
LDLIBS = $(PKG_LIBS) -lstdc++ -lm -lpthread
LDFLAGS = $(SANFLAGS)

LIB_C = $(wildcard lib/*/*.c)
LIB_CC = $(wildcard lib/*/*.cc)
LIB_H = $(wildcard lib/*/*.h)
LIB_OBJ = $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CC:%.cc=$(BUILD)/%.o)
LIBA = $(BUILD)/liblstm.a

TOOL_SRC = $(wildcard tools/*/lstm-*.c)
TOOLS = $(foreach s,$(TOOL_SRC),$(BUILD)/bin/$(basename $(notdir $(s))))
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNITS = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BATS = $(sort $(wildcard tests/*.bats))

.PHONY: all build-all deps test unit bats demo bench install clean fuzz
.DELETE_ON_ERROR:

# The real build runs in a sub-make so that pkg-config sees packages installed by `deps`.
all: deps
	@$(MAKE) --no-print-directory build-all

build-all: $(LIBA) $(TOOLS)

# Install missing Debian packages once per build directory.
$(DEPS_STAMP): Makefile
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing missing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@mkdir -p $(@D) && touch $@

# Re-run make after deps so pkg-config flags are picked up in a fresh clone.
deps: $(DEPS_STAMP)

$(BUILD)/lib/%.o: lib/%.c $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/lib/%.o: lib/%.cc $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# One rule per tool: build/bin/lstm-x from tools/<dir>/lstm-x.c.
# tools/common/: what the tools share (messages, flag parsing, -q/-v, version, time), linked into each.
TOOL_COMMON_OBJ = $(patsubst tools/common/%.c,$(BUILD)/tools/common/%.o,$(wildcard tools/common/*.c))
$(BUILD)/tools/common/%.o: tools/common/%.c tools/common/tool.h $(LIB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itools/common -c $< -o $@

define tool_rule
$(BUILD)/bin/$(basename $(notdir $(1))): $(1) $(LIBA) $(LIB_H) $(TOOL_COMMON_OBJ) tools/common/tool.h
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) -Itools/common -o $$@ $(1) $(TOOL_COMMON_OBJ) $(LIBA) $$(LDFLAGS) $$(LDLIBS)
endef
$(foreach s,$(TOOL_SRC),$(eval $(call tool_rule,$(s))))

$(BUILD)/tests/%: tests/unit/%.c $(LIBA) $(LIB_H) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBA) $(LDFLAGS) $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory build-all $(UNITS)
	@$(MAKE) --no-print-directory unit bats

unit: $(UNITS)
	@set -e; for t in $(UNITS); do echo "unit: $$t"; $$t; done

bats: build-all $(UNITS)
	LSTM_SAN=$(SAN) LSTM_BIN=$(CURDIR)/$(BUILD)/bin LSTM_TESTBIN=$(CURDIR)/$(BUILD)/tests TORCH_PY=$(TORCH_PY) bats --print-output-on-failure $(BATS)

demo: all
	@$(MAKE) --no-print-directory -C examples/chat demo BIN=$(CURDIR)/$(BUILD)/bin

fuzz: all
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk BIN=$(CURDIR)/$(BUILD)/bin

bench: all
	@$(MAKE) --no-print-directory -C tests/bench BIN=$(CURDIR)/$(BUILD)/bin TORCH_PY=$(TORCH_PY)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-san build-fuzz build-vg
