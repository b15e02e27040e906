# Benchmark tools (issue #2), included from the top Makefile (`include bench/bench.mk`) or
# read alongside it (`make -f Makefile -f bench/bench.mk bench-tools`, as bench/run.sh does).
# Uses the top Makefile's CC, CFLAGS, LDLIBS and BUILD; links the static library.
ifndef PT_BENCH_MK
PT_BENCH_MK := 1

BENCH_TOOLS := $(BUILD)/bench/make_model $(BUILD)/bench/bench_engine $(BUILD)/bench/bench_train $(BUILD)/bench/mpi_allreduce

.PHONY: bench-tools
bench-tools: $(BENCH_TOOLS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libpolitune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpolitune.a $(LDLIBS)

endif
