#!/usr/bin/env bash
# Serving throughput with adapters chosen per request (issue 15): one `politune serve` with two
# LoRA adapters loaded (left, right), 8 concurrent clients (curl processes, requests one after
# another), each request a fixed prompt and 32 generated tokens (greedy, ignore_eos). Three
# loads, measured in the same round so that a shared machine's load falls on all alike:
#
#   base       every request "model": "base" (no adapter)
#   1 adapter  every request "adapters": [{"name": "left", "scale": 1}]
#   2 mixed    clients alternate left and right: both adapters in every batch
#
# The figure of interest is 2 mixed / 1 adapter (target >= 0.8). The adapters are trained
# here for one DPO step (rank 16, the paper's targets, B non-zero), which costs what a trained
# adapter costs. Model: SmolLM2-135M-Instruct Q4_1 from the asset cache (politune pull
# smollm2-135m-instruct), else stories260K (and it says so). Prints a markdown section for
# BENCHMARKS.md.
#
# usage: bench/serve_adapters.sh [--runs N] [--threads N] [--requests N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=5 THREADS=1 REQS=2 QUICK=0 NEW=32 CLIENTS=8
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --requests) REQS=$2; shift 2 ;;
    --quick) QUICK=1; RUNS=1; REQS=1; NEW=8; shift ;;
    *) echo "usage: $0 [--runs N] [--threads N] [--requests N] [--quick]" >&2; exit 2 ;;
  esac
done
SHARED=${POLITUNE_SHARED:-../shared}
BIN=build/politune
[ -x "$BIN" ] || make -j2 >/dev/null
TMP=$(mktemp -d /tmp/politune-bench-adapters.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

SMOL=${POLITUNE_SMOLLM2:-$HOME/.cache/politune/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -f "$SMOL" ]; then
  MODEL=$SMOL MODEL_NAME="SmolLM2-135M-Instruct Q4_1"
else
  MODEL=$SHARED/assets/models/stories260K/stories260K.gguf MODEL_NAME="stories260K (SmolLM2 not in the cache: politune pull smollm2-135m-instruct)"
fi
export OMP_NUM_THREADS=$THREADS

# two adapters, one DPO step each on a few of the paper's pairs
for side in left right; do
  "$BIN" train --method dpo --model "$MODEL" --data "$SHARED/assets/data/politune/politune-$side.json" --out "$TMP/$side" \
    --max-steps 1 --batch-size 1 --grad-accum 1 --max-seq-len 96 --lora-rank 16 --threads "$THREADS" >/dev/null 2>"$TMP/train-$side.log" ||
    { cat "$TMP/train-$side.log" >&2; exit 1; }
done

"$BIN" serve --model "$MODEL" --adapter "left=$TMP/left" --adapter "right=$TMP/right" --port 0 --port-file "$TMP/port" \
  --parallel "$CLIENTS" --threads "$THREADS" --ctx 512 --quiet 2>"$TMP/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { cat "$TMP/serve.log" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$TMP/port")/v1/completions"
PROMPT="The role of government in the economy is"
body() { echo "{\"prompt\":\"$PROMPT\",\"max_tokens\":$NEW,\"temperature\":0,\"ignore_eos\":true,$1}"; }
curl -s --noproxy '*' -H 'Content-Type: application/json' -d "$(body '"model":"base"')" "$URL" >/dev/null # warm-up

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

# One load: $1 = base | one | mixed; prints generated tokens/s over all clients.
load() {
  local kind=$1 t0 t1 pids=() c
  rm -f "$TMP"/client.*
  t0=$(now)
  for c in $(seq 1 "$CLIENTS"); do
    local extra='"model":"base"'
    case "$kind" in
      one) extra='"adapters":[{"name":"left","scale":1}]' ;;
      mixed) if [ $((c % 2)) = 0 ]; then extra='"adapters":[{"name":"left","scale":1}]'; else extra='"adapters":[{"name":"right","scale":1}]'; fi ;;
    esac
    local b
    b=$(body "$extra")
    ( for _ in $(seq 1 "$REQS"); do curl -s --noproxy '*' -H 'Content-Type: application/json' -d "$b" "$URL"; echo; done >"$TMP/client.$c" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(now)
  local ok tokens
  ok=$(cat "$TMP"/client.* | grep -c '"text_completion"' || true)
  tokens=$(cat "$TMP"/client.* | grep -o '"completion_tokens":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
  [ "$ok" -eq $((CLIENTS * REQS)) ] || { echo "bench: $ok of $((CLIENTS * REQS)) requests succeeded" >&2; cat "$TMP"/client.* >&2; exit 1; }
  awk -v t="$tokens" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", t / (b - a)}'
}

: >"$TMP/base"; : >"$TMP/one"; : >"$TMP/mixed"; : >"$TMP/ratio"
for round in $(seq 1 "$RUNS"); do
  # the order alternates between rounds, so that a drift in the machine's load does not
  # always favour the same side of the ratio
  if [ $((round % 2)) = 1 ]; then order="base one mixed"; else order="mixed one base"; fi
  for kind in $order; do load "$kind" >>"$TMP/$kind"; done
  awk -v m="$(tail -n1 "$TMP/mixed")" -v o="$(tail -n1 "$TMP/one")" 'BEGIN {printf "%.3f\n", m / o}' >>"$TMP/ratio"
  echo "bench: round $round: base $(tail -n1 "$TMP/base"), 1 adapter $(tail -n1 "$TMP/one"), 2 mixed $(tail -n1 "$TMP/mixed") tokens/s" >&2
done
BASE=$(median <"$TMP/base") ONE=$(median <"$TMP/one") MIXED=$(median <"$TMP/mixed") RATIO=$(median <"$TMP/ratio")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
cat <<EOF
## Serving with adapters chosen per request (issue #15)

Measured by \`bench/serve_adapters.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%d), $CPU, $(nproc --all) cores (shared with
other work: absolute figures move with the load, the ratios less), $THREADS thread(s), on $MODEL_NAME. One
\`politune serve --parallel $CLIENTS\` with two rank-16 adapters loaded (one DPO step each, the default targets);
$CLIENTS concurrent clients, $REQS request(s) each, $NEW generated tokens per request (greedy, ignore_eos).
Median of $RUNS rounds, each round measuring the three loads one after another (the order reversed
every other round).

| load | generated tokens/s | vs. 1 adapter |
| --- | ---: | ---: |
| every request \`"model": "base"\` (no adapter) | $BASE | $(ratio "$BASE" "$ONE") |
| every request \`left\` at scale 1 | $ONE | 1.00 |
| clients alternate \`left\` and \`right\` (both in every batch) | $MIXED | $(ratio "$MIXED" "$ONE") |

2 adapters mixed in one batch against 1 adapter: **$RATIO** (median of the per-round ratios; target >= 0.8).
In a mixed batch each adapter runs over the rows that use it (gathered), so the LoRA arithmetic is
that of one adapter; what remains is twice the number of small GEMM calls and the gathering.
EOF
