#!/usr/bin/env bash
# Cost of float64 training (--precision f64, what `auto` picks below 10M parameters) against
# float32 on stories260K: the demo's kind of run — 30 LoRA DPO steps of the stories260K recipe
# (rank 8, all targets, batch 6, up to 256 tokens) on 48 PoliTune left pairs — timed end to end
# (`politune train`, model loading included) with GNU time, ROUNDS rounds alternating f32 and
# f64, medians. Prints a markdown table for BENCHMARKS.md. Both precisions must also end with
# nearly the same loss (the difference is rounding).
#
# usage: bench/precision.sh [ROUNDS] (default 3); POLITUNE_SHARED (../shared), BENCH_THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
THREADS=${BENCH_THREADS:-2}
ASSETS=${POLITUNE_ASSETS:-${POLITUNE_SHARED:-../shared}/assets}
BIN=build/politune
[ -x "$BIN" ] || make -j2 >/dev/null
TMP=$(mktemp -d /tmp/politune-bench-precision.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

"$BIN" run --make-pairs --count 48 --seed 0 --weights 1 --out "$TMP/pairs.jsonl" "$ASSETS/data/politune/politune-left.json" >/dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
  for p in f32 f64; do
    /usr/bin/time -f "%e %M" -o "$TMP/time" "$BIN" train --recipe recipes/stories260k-lora-dpo.yaml \
      --model "$ASSETS/models/stories260K/stories260K.gguf" --data "$TMP/pairs.jsonl" --out "$TMP/out-$p-$r" \
      --precision $p --threads "$THREADS" --save-every 0 > "$TMP/report" 2>/dev/null
    loss=$(sed -n 's/.*"loss":\([^,}]*\).*/\1/p' "$TMP/report")
    echo "$p $(cat "$TMP/time") $loss" >> "$TMP/rows"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
t32=$(awk '$1 == "f32" {print $2}' "$TMP/rows" | median); t64=$(awk '$1 == "f64" {print $2}' "$TMP/rows" | median)
m32=$(awk '$1 == "f32" {print $3}' "$TMP/rows" | median); m64=$(awk '$1 == "f64" {print $3}' "$TMP/rows" | median)
l32=$(awk '$1 == "f32" {print $4; exit}' "$TMP/rows"); l64=$(awk '$1 == "f64" {print $4; exit}' "$TMP/rows")
echo "| precision | wall s (median of $ROUNDS) | vs f32 | peak RSS MiB | final loss |"
echo "|---|---:|---:|---:|---:|"
awk -v t="$t32" -v m="$m32" -v l="$l32" 'BEGIN {printf "| f32 | %.2f | 1.00x | %.0f | %s |\n", t, m / 1024, l}'
awk -v t="$t64" -v t0="$t32" -v m="$m64" -v l="$l64" 'BEGIN {printf "| f64 | %.2f | %.2fx | %.0f | %s |\n", t, t / t0, m / 1024, l}'
echo
echo "Rounds (precision, wall s, peak RSS KiB, final loss):"
sed 's/^/    /' "$TMP/rows"
