#!/usr/bin/env bash
# politune against llama.cpp on SmolLM2-135M-Instruct (issue #11): prefill and decode tokens/s
# on the same GGUF files with the same thread count, politune through bench/bench_engine and
# llama.cpp through llama-cpp-python (bench/llamacpp.py, in the oracle venv). Two files: the
# model's own Q4_1 GGUF (Q8_0 tied embedding), and a Q8_0 copy made by llama.cpp's quantiser.
# Rounds alternate the two engines so that a change in the machine's load hits both; each
# engine's figure per round is its median of RUNS runs, the table shows medians over rounds
# and the median of the per-round ratios. Writes the section between the llamacpp markers
# of BENCHMARKS.md.
#
# usage: bench/llamacpp.sh [MODEL.gguf]   (default: `politune pull smollm2-135m-instruct`)
# env:   ROUNDS (3), RUNS (3), THREADS (2), PREFILL (64), PROMPT (32), DECODE (16),
#        POLITUNE_PYTHON (the oracle venv's python), OUT (BENCHMARKS.md; '-' prints only)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "llamacpp.sh: $*" >&2; }
ROUNDS=${ROUNDS:-3} RUNS=${RUNS:-3} THREADS=${THREADS:-2} PREFILL=${PREFILL:-64} PROMPT=${PROMPT:-32} DECODE=${DECODE:-16}
PY=${POLITUNE_PYTHON:-$HOME/.cache/politune/oracle-venv/bin/python}
OUT=${OUT:-BENCHMARKS.md}
"$PY" -c 'import llama_cpp' 2>/dev/null || { log "llama-cpp-python is missing in $PY (run tools/oracles/setup.sh)"; exit 1; }
make -s -j2 all >&2
make -s -f Makefile -f bench/bench.mk bench-tools >&2
MODEL=${1:-$(build/politune pull smollm2-135m-instruct | head -1)}
[ -f "$MODEL" ] || { log "model not found: $MODEL"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
Q8="$TMP/SmolLM2-135M-Instruct.Q8_0.gguf"
log "making $Q8 with llama.cpp's quantiser"
"$PY" bench/llamacpp.py quantize "$MODEL" "$Q8" Q8_0 >"$TMP/quantize.log" 2>&1 || { cat "$TMP/quantize.log" >&2; exit 1; }
CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
FLAGS=$(grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx512bw' /proc/cpuinfo | sort -u | tr '\n' ' ')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
SHAPE=(--threads "$THREADS" --runs "$RUNS" --prefill "$PREFILL" --prompt "$PROMPT" --decode "$DECODE")
: >"$TMP/results.jsonl"
for round in $(seq "$ROUNDS"); do
    for f in "$MODEL" "$Q8"; do
        name=$(basename "$f")
        log "round $round: $name: llama.cpp"
        "$PY" bench/llamacpp.py bench "$f" "${SHAPE[@]}" | sed "s/^{/{\"round\":$round,\"file\":\"$name\",/" >>"$TMP/results.jsonl"
        log "round $round: $name: politune"
        build/bench/bench_engine "$f" "${SHAPE[@]}" | sed "s/^{/{\"round\":$round,\"file\":\"$name\",/" >>"$TMP/results.jsonl"
    done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
KERN=$(grep -o '"kernels":"[a-z0-9]*"' "$TMP/results.jsonl" | head -1 | cut -d'"' -f4)
VER=$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')
COMMIT=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src bench 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
SECTION=$(python3 - "$TMP/results.jsonl" <<EOF
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
print("<!-- llamacpp:begin (written by bench/llamacpp.sh; edit the script, not this section) -->")
print("## SmolLM2-135M-Instruct: politune vs llama.cpp (issue #11)")
print()
print("Run $(date -u '+%Y-%m-%d %H:%M') UTC on $CPU, $(nproc) cores (flags: $FLAGS); politune kernels \`$KERN\`; "
      "llama-cpp-python $VER (llama.cpp built from source by pip). Commit $COMMIT. "
      "Load average $LOAD0 at the start, $LOAD1 at the end.")
print()
print("Command: \`bench/llamacpp.sh\` (ROUNDS=$ROUNDS RUNS=$RUNS THREADS=$THREADS PREFILL=$PREFILL PROMPT=$PROMPT DECODE=$DECODE). "
      "Both engines: $THREADS threads, the same file. Prefill: $PREFILL random token ids into a fresh cache, one batch. "
      "Decode: $DECODE greedy tokens after a $PROMPT-token prompt, one forward pass each. $ROUNDS rounds alternating "
      "the engines; per round each engine's median of $RUNS runs; the table gives medians over rounds and the median "
      "of the per-round ratios politune / llama.cpp. The Q8_0 file is made from the Q4_1 one by llama.cpp's quantiser.")
print()
print("| file | llama.cpp prefill tok/s | politune prefill tok/s | prefill ratio | llama.cpp decode tok/s | politune decode tok/s | decode ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for f in dict.fromkeys(r["file"] for r in rows):
    by = {}
    for r in rows:
        if r["file"] == f:
            by.setdefault(r["round"], {})[r["engine"]] = r
    rounds = [v for v in by.values() if "politune" in v and "llama.cpp" in v]
    lp = med([v["llama.cpp"]["prefill_tok_s"] for v in rounds]); pp = med([v["politune"]["prefill_tok_s"] for v in rounds])
    ld = med([v["llama.cpp"]["decode_tok_s"] for v in rounds]); pd = med([v["politune"]["decode_tok_s"] for v in rounds])
    rp = med([v["politune"]["prefill_tok_s"] / v["llama.cpp"]["prefill_tok_s"] for v in rounds])
    rd = med([v["politune"]["decode_tok_s"] / v["llama.cpp"]["decode_tok_s"] for v in rounds])
    print(f"| {f} | {lp:.1f} | {pp:.1f} | {rp:.2f}x | {ld:.2f} | {pd:.2f} | {rd:.2f}x |")
print()
print("Per-round figures (prefill / decode tok/s): " + "; ".join(
    f'{r["file"]} r{r["round"]} {r["engine"]} {r["prefill_tok_s"]} / {r["decode_tok_s"]}' for r in rows) + ".")
print("<!-- llamacpp:end -->")
EOF
)
echo "$SECTION"
[ "$OUT" = - ] && exit 0
python3 - "$OUT" "$SECTION" <<'EOF'
import os, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
b, e = "<!-- llamacpp:begin", "<!-- llamacpp:end -->"
if b in text and e in text:
    text = text[:text.index(b)] + section + text[text.index(e) + len(e):]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
tmp = path + ".tmp"
open(tmp, "w").write(text)
os.replace(tmp, path)
EOF
log "wrote the llamacpp section of $OUT"
