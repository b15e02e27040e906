#!/bin/bash
# A recorded fuzzing campaign: builds each target with ASan + UBSan (UB aborts, so it counts
# as a finding), runs it for SECONDS of wall time at the lowest priority (the machine is
# shared; FUZZ_NICE=N sets another), one target at a time, and appends one line per target
# to build-fuzz/campaign.tsv:
# target, wall s, CPU s (user+sys), executions, final coverage, corpus size, findings.
# Usage: fuzz/campaign.sh SECONDS target...   (from the repository root; TMPDIR=/dev/shm keeps
# the loader targets' scratch files off the disk)
set -u
secs=$1; shift
mkdir -p build-fuzz/campaign
for t in "$@"; do
  extra=$(sed -n 's/^.*fuzz-sources: *//p' fuzz/$t.c)
  nice -n ${FUZZ_NICE:-19} clang -O1 -g -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Iinclude \
    fuzz/$t.c src/util/*.c src/format/*.c src/tokenizer/*.c $extra -o build-fuzz/$t \
    -ljansson -lpcre2-8 -lutf8proc -lyaml -lcrypto -lm || { echo "$t: build failed"; continue; }
  mkdir -p build-fuzz/corpus-$t build-fuzz/campaign/$t
  log=build-fuzz/campaign/$t.log
  /usr/bin/time -f "%U %S %e" -o build-fuzz/campaign/$t.time nice -n ${FUZZ_NICE:-19} build-fuzz/$t -max_total_time=$secs -max_len=65536 \
    -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix=build-fuzz/campaign/$t/ \
    build-fuzz/corpus-$t fuzz/seeds/$t > $log 2>&1
  rc=$?
  read -r user sys wall < <(tail -n 1 build-fuzz/campaign/$t.time)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' $log)
  cov=$(grep -oE 'cov: [0-9]+' $log | tail -n 1 | cut -d' ' -f2)
  findings=$(ls build-fuzz/campaign/$t/ 2>/dev/null | wc -l)
  printf "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\trc=%s\n" "$t" "$wall" "$(echo "$user + $sys" | bc)" "${execs:-?}" "${cov:-?}" \
    "$(ls build-fuzz/corpus-$t | wc -l)" "$findings" "$rc" | tee -a build-fuzz/campaign.tsv
done
