#!/usr/bin/env bash
# One LoRA DPO step on SmolLM2-135M's shape: politune (bench/bench_train, on the real Q4_1
# GGUF and on its float32 dequantised copy) against TRL + PEFT on PyTorch
# (bench/trl_dpo_peer.py, float32), alternating in rounds on the same machine. 4 pairs x 256
# tokens (64 prompt), rank 16, alpha 32 on q, v, gate, up, down (TRL refuses a LoRA on
# lm_head), reference pass with the adapter off, sigmoid loss, backward, AdamW. Prints the
# rows (JSON lines in $OUT/dpo-trl.jsonl) and a Markdown table of medians and per-round ratios.
#
# Knobs (environment): BENCH_THREADS (2), BENCH_ROUNDS (3), BENCH_STEPS (3), BENCH_OUT
# (bench/out), POLITUNE_PYTHON (the oracle venv), BUILD (build).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
STEPS=${BENCH_STEPS:-3}
OUT=${BENCH_OUT:-bench/out}
BUILD=${BUILD:-build}
PY=${POLITUNE_PYTHON:-$HOME/.cache/politune/oracle-venv/bin/python}
SHAPE="--pairs 4 --seq 256"
mkdir -p "$OUT"
log() { printf 'bench-dpo-trl: %s\n' "$*" >&2; }

make -s -j2 -f Makefile -f bench/bench.mk BUILD="$BUILD" "$BUILD/bench/bench_train" ./politune
Q41=$(./politune pull --quiet smollm2-135m-instruct)
F32=$OUT/smollm2-f32.gguf
[ -f "$F32" ] || { log "dequantising $Q41 to $F32"; "$PY" tools/gguf_dequant.py "$Q41" "$F32"; }

export OMP_WAIT_POLICY=passive
RES=$OUT/dpo-trl.jsonl
: > "$RES"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
    log "round $r/$ROUNDS: TRL + PEFT"
    # shellcheck disable=SC2086
    "$PY" bench/trl_dpo_peer.py --threads "$THREADS" $SHAPE --steps "$STEPS" | sed "s/^{/{\"round\":$r,\"setting\":\"trl\",/" >> "$RES"
    for m in q4_1 f32; do
        log "round $r/$ROUNDS: politune $m"
        file=$Q41; [ $m = f32 ] && file=$F32
        # shellcheck disable=SC2086
        "$BUILD/bench/bench_train" --model "$file" --threads "$THREADS" $SHAPE --steps "$STEPS" --targets q,v,gate,up,down |
            sed "s/^{/{\"round\":$r,\"setting\":\"politune-$m\",/" >> "$RES"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
export RES LOAD_START LOAD_END
python3 - <<'PYEOF'
import json, os, statistics as st
rows = [json.loads(l) for l in open(os.environ["RES"]) if l.strip()]
by = lambda s: {r["round"]: r for r in rows if r["setting"] == s}
trl = by("trl")
print(f"load average {os.environ['LOAD_START']} at the start, {os.environ['LOAD_END']} at the end")
print("| implementation | step s | tokens/s | vs TRL (tokens/s) | peak RSS MiB | vs TRL (memory) |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for s in ["trl", "politune-q4_1", "politune-f32"]:
    d = by(s)
    if not d:
        continue
    med = lambda k: st.median(r[k] for r in d.values())
    sp = st.median(d[i]["dpo_tok_s"] / trl[i]["dpo_tok_s"] for i in d if i in trl)
    mem = st.median(d[i]["peak_rss_mib"] / trl[i]["peak_rss_mib"] for i in d if i in trl)
    print(f"| {s} | {med('dpo_step_s'):.2f} | {med('dpo_tok_s'):.0f} | {sp:.2f}x | {med('peak_rss_mib'):.0f} | {mem:.2f}x |")
PYEOF
