# fuzz.mk: libFuzzer harnesses for every reader of outside bytes (run from the top directory:
# `make fuzz`, which calls `make -f tests/fuzz/fuzz.mk`). The library is rebuilt with clang,
# -fsanitize=fuzzer-no-link,address,undefined into build-fuzz/; seed corpora are made from
# tests/fixtures/ with the normal tools (BIN); each harness then runs for FUZZ_SECONDS.
#   make fuzz                       60 s per harness
#   make fuzz FUZZ_SECONDS=5        the CI smoke run
#   make fuzz FUZZ_ONLY=stream      one harness
# Findings land in build-fuzz/crashes/<harness>-*; the run fails if any harness finds one.
FZ ?= build-fuzz
BIN ?= build/bin
FUZZ_SECONDS ?= 60
FUZZ_ONLY ?=
FUZZ_FLAGS ?=
HARNESSES_ALL = stream checkpoint csv tokenize tokblob serve
HARNESSES = $(if $(FUZZ_ONLY),$(FUZZ_ONLY),$(HARNESSES_ALL))

FCC = clang
FCXX = clang++
PKGS = icu-uc sentencepiece libzstd openblas jansson libxxhash
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FCFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O1 -g -Wall -Wextra $(patsubst %,-Ilib/%,common io text nn lm) -Itests/fuzz \
          -fsanitize=fuzzer-no-link $(SAN) $(shell pkg-config --cflags $(PKGS))
FCXXFLAGS = -std=c++17 -O1 -g $(patsubst %,-Ilib/%,common io text nn lm) -fsanitize=fuzzer-no-link $(SAN) $(shell pkg-config --cflags $(PKGS))
FLIBS = $(shell pkg-config --libs $(PKGS)) -lstdc++ -lm -lpthread

# lib/nn/pick.c picks among per-kernel builds of gemm.c and vec.c; here each is built once, plain.
LIB_C = $(filter-out lib/nn/pick.c,$(wildcard lib/*/*.c))
LIB_CC = $(wildcard lib/*/*.cc)
LIB_OBJ = $(LIB_C:%.c=$(FZ)/%.o) $(LIB_CC:%.cc=$(FZ)/%.o)
LIBA = $(FZ)/liblstm.a

.PHONY: run build seeds
.DELETE_ON_ERROR:

run: build seeds
	@set -e; mkdir -p $(FZ)/crashes; fail=0; \
	for h in $(HARNESSES); do \
	  mkdir -p $(FZ)/corpus/$$h; \
	  echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
	  if ! LSTM_FUZZ_MODEL=$(FZ)/serve-model.ckpt $(FZ)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
	        -print_final_stats=1 -artifact_prefix=$(FZ)/crashes/$$h- $(FUZZ_FLAGS) \
	        $(FZ)/corpus/$$h $(FZ)/seeds/$$h > $(FZ)/$$h.log 2>&1; then \
	    echo "fuzz: $$h FAILED (see $(FZ)/$$h.log)"; tail -40 $(FZ)/$$h.log; fail=1; \
	  fi; \
	  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' $(FZ)/$$h.log | sed "s/^/fuzz: $$h: /"; \
	done; exit $$fail

build: $(foreach h,$(HARNESSES),$(FZ)/fuzz_$(h))

$(FZ)/lib/%.o: lib/%.c $(wildcard lib/*/*.h)
	@mkdir -p $(@D)
	$(FCC) $(FCFLAGS) -c $< -o $@

$(FZ)/lib/%.o: lib/%.cc $(wildcard lib/*/*.h)
	@mkdir -p $(@D)
	$(FCXX) $(FCXXFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Harnesses are C, linked by clang++ so the C++ parts of the UBSan runtime (spm_c.cc) come along.
$(FZ)/fuzz_%.o: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(wildcard lib/*/*.h)
	@mkdir -p $(@D)
	$(FCC) $(FCFLAGS) -c -o $@ $<

$(FZ)/fuzz_%: $(FZ)/fuzz_%.o $(LIBA)
	$(FCXX) -fsanitize=fuzzer $(SAN) -o $@ $< $(LIBA) $(FLIBS)

$(FZ)/mkseed: tests/fuzz/mkseed.c $(LIBA)
	$(FCC) $(FCFLAGS) -c -o $@.o $<
	$(FCXX) $(SAN) -fsanitize=fuzzer-no-link -o $@ $@.o $(LIBA) $(FLIBS)

# ---- seed corpora, made from the fixtures with the normal tools ----
S = $(FZ)/seeds
F = tests/fixtures
seeds: $(S)/.done

$(S)/.done: $(FZ)/mkseed $(wildcard $(F)/*) $(wildcard $(BIN)/lstm-*)
	@rm -rf $(S) && mkdir -p $(S)/stream $(S)/checkpoint $(S)/csv $(S)/tokenize $(S)/tokblob $(S)/serve $(S)/w
	@set -e; w=$(S)/w; \
	$(BIN)/lstm-tok -q $(F)/tok_small.txt > $$w/text.tok; \
	$(BIN)/lstm-tok -q --vocab-out $$w/chat.vocab $(F)/chat_small.csv > $$w/chat.tok; \
	$(BIN)/lstm-tok -q --chars $(F)/tok_paragraphs.txt > $$w/chars.tok; \
	$(BIN)/lstm-tok -q --split space --unk-token '<unk>' $(F)/tok_pretok.txt > $$w/space.tok; \
	$(BIN)/lstm-tok -q --bpe --vocab-size 320 $(F)/eval_chat.csv > $$w/bpe.tok; \
	$(BIN)/lstm-window -q -L 4 $$w/chat.tok > $$w/chat.win; \
	$(BIN)/lstm-window -q -L 3 --last $$w/text.tok > $$w/last.win; \
	$(BIN)/lstm-train -q --hidden 8 --layers 1 --epochs 1 --batch 2 --threads 1 -o $$w/m.ckpt $$w/chat.win 2>/dev/null; \
	$(BIN)/lstm-train -q --cell gru --hidden 4 --emb 3 --layers 2 --epochs 1 --batch 2 --threads 1 -o $$w/g.ckpt $$w/chat.win 2>/dev/null; \
	for f in $$w/*.tok $$w/*.win $$w/chat.vocab; do \
	  b=$$(basename $$f); \
	  { printf '\000'; cat $$f; } > $(S)/stream/raw-$$b; \
	  { printf '\020'; cat $$f; } > $(S)/stream/rawtok-$$b; \
	  { printf '\001'; zstd -qdc $$f; } > $(S)/stream/plain-$$b; \
	  { printf '\027'; zstd -qdc $$f; } > $(S)/stream/plaintiny-$$b; \
	  $(FZ)/mkseed $$f > $(S)/tokblob/$$b.blob; \
	done; \
	for f in $$w/m.ckpt $$w/m.ckpt.last $$w/g.ckpt; do \
	  b=$$(basename $$f); \
	  { printf '\000'; cat $$f; } > $(S)/checkpoint/raw-$$b; \
	  { printf '\001'; cat $$f; } > $(S)/checkpoint/fix-$$b; \
	done; \
	for f in $(F)/*.csv; do b=$$(basename $$f); \
	  { printf '\000'; cat $$f; } > $(S)/csv/a-$$b; { printf '\077'; cat $$f; } > $(S)/csv/b-$$b; done; \
	for f in $(F)/*.txt $(F)/*.csv; do b=$$(basename $$f); \
	  for m in 000 001 002 003 014; do { printf "\\$$m"; cat $$f; } > $(S)/tokenize/$$m-$$b; done; done; \
	cp $$w/m.ckpt $(FZ)/serve-model.ckpt; \
	printf 'i need hel' > $(S)/serve/plain; \
	printf '{"text":"hi, i need","k":3}' > $(S)/serve/suggest; \
	printf '{"text":"sure","mode":"complete","temperature":0.7,"top_k":5,"top_p":0.9,"max_new":5,"seed":3}' > $(S)/serve/complete; \
	printf '{"text":"hello","mode":"complete","beam":3,"max_new":4,"speaker":"agent"}' > $(S)/serve/beam; \
	printf '{"text":"x","repetition_penalty":1.2,"greedy":true,"mode":"complete","max_new":2}' > $(S)/serve/greedy; \
	printf '[1,2]' > $(S)/serve/array; \
	printf '{"id":"r1","text":"it is ","k":2,"context":[{"speaker":"user","text":"hi, i need help"},{"speaker":"agent","text":"sure!"}]}' > $(S)/serve/context; \
	printf '{"id":42,"text":"sure","mode":"complete","max_new":4,"context":[{"text":"hello"},{"speaker":null,"text":""}]}\n{"id":-1.5,"text":"x","context":[{"who":1}]}' > $(S)/serve/id; \
	touch $@
