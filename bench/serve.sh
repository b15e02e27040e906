#!/usr/bin/env bash
# Server and data-pipeline throughput (issue #5) on the ~125M-parameter benchmark model:
#
#   serve    requests/s and generated tokens/s with 1 and with 8 concurrent clients (curl
#            processes, each sending its requests one after another) against `politune serve
#            --parallel 8`; every request is a 32-token prompt and 64 generated tokens
#            (ignore_eos, so a random model's replies all have the same length). Baseline:
#            `politune generate` alone on the same prompt (the engine without HTTP or batching).
#   select   records/s of `politune select` with the in-process log-prob judge (ideology and
#            quality of each senator tweet scored as label probabilities, 8 sequences a batch).
#
# The benchmark model (bench/make_model.c writes bench/out/hf-f32) has no tokenizer; it is
# paired with the 32k SentencePiece tokenizer of ../shared/assets/tokenizers/spm32k (the same
# vocabulary size) through a directory of symbolic links. Without bench/out the script falls
# back to stories260K and says so. Prints a markdown section for BENCHMARKS.md.
#
# usage: bench/serve.sh [--runs N] [--threads N] [--requests N] [--records N] [--quick]
#   --quick: one run, fewer requests and records (a smoke test of the script)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3 THREADS=2 REQS=8 RECORDS=32 QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --requests) REQS=$2; shift 2 ;;
    --records) RECORDS=$2; shift 2 ;;
    --quick) QUICK=1; RUNS=1; REQS=2; RECORDS=8; shift ;;
    *) echo "usage: $0 [--runs N] [--threads N] [--requests N] [--records N] [--quick]" >&2; exit 2 ;;
  esac
done
SHARED=${POLITUNE_SHARED:-../shared}
BIN=build/politune
[ -x "$BIN" ] || make -j2 >/dev/null
TMP=$(mktemp -d /tmp/politune-bench-serve.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [ -f bench/out/hf-f32/model.safetensors ] && [ -f "$SHARED/assets/tokenizers/spm32k/tokenizer.json" ]; then
  MODEL=$TMP/model
  mkdir -p "$MODEL"
  for f in bench/out/hf-f32/config.json bench/out/hf-f32/model.safetensors; do ln -s "$PWD/$f" "$MODEL/"; done
  for f in tokenizer.json tokenizer_config.json; do ln -s "$(cd "$SHARED/assets/tokenizers/spm32k" && pwd)/$f" "$MODEL/"; done
  MODEL_NAME="the ~125M benchmark model (bench/out/hf-f32, F32, with the spm32k tokenizer)"
else
  MODEL=$SHARED/assets/models/stories260K/stories260K.gguf
  MODEL_NAME="stories260K (bench/out/hf-f32 not found: run bench/make_model first for the ~125M model)"
fi
CLIENTS_HI=8
NEW=64
PROMPT="The history of the United States is the story of a people who came from many lands and built a nation together over the"

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

export OMP_NUM_THREADS=$THREADS
"$BIN" serve --model "$MODEL" --port 0 --port-file "$TMP/port" --parallel "$CLIENTS_HI" --threads "$THREADS" --ctx 512 --quiet 2>"$TMP/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { cat "$TMP/serve.log" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$TMP/port")/v1/completions"
BODY="{\"prompt\":\"$PROMPT\",\"max_tokens\":$NEW,\"temperature\":0,\"ignore_eos\":true}"
curl -s --noproxy '*' -H 'Content-Type: application/json' -d "$BODY" "$URL" >/dev/null # warm-up

# One load run: $1 clients, $2 requests each; prints "requests/s tokens/s".
load() {
  local clients=$1 per=$2 t0 t1 pids=()
  rm -f "$TMP"/client.*
  t0=$(now)
  for c in $(seq 1 "$clients"); do
    ( for _ in $(seq 1 "$per"); do
        curl -s --noproxy '*' -H 'Content-Type: application/json' -d "$BODY" "$URL"; echo
      done >"$TMP/client.$c" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(now)
  local ok tokens
  ok=$(cat "$TMP"/client.* | grep -c '"text_completion"' || true)
  tokens=$(cat "$TMP"/client.* | grep -o '"completion_tokens":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
  [ "$ok" -eq $((clients * per)) ] || { echo "bench: $ok of $((clients * per)) requests succeeded" >&2; exit 1; }
  awk -v n="$ok" -v t="$tokens" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f %.2f\n", n / (b - a), t / (b - a)}'
}

# Each round measures the engine alone, then 1 client, then 8, so that the load of a shared
# machine falls on all three alike; figures are medians over rounds.
PER_HI=$(( (REQS + 1) / 2 ))
: >"$TMP/gen"; : >"$TMP/r.1"; : >"$TMP/r.$CLIENTS_HI"
for round in $(seq 1 "$RUNS"); do
  "$BIN" generate --model "$MODEL" --prompt "$PROMPT" --max-new-tokens "$NEW" --ignore-eos --threads "$THREADS" --json 2>/dev/null |
    grep -o '"decode_tokens_per_s":[0-9.]*' | cut -d: -f2 >>"$TMP/gen"
  load 1 "$REQS" >>"$TMP/r.1"
  load "$CLIENTS_HI" "$PER_HI" >>"$TMP/r.$CLIENTS_HI"
  echo "bench: round $round: generate $(tail -n1 "$TMP/gen") tok/s; 1 client $(tail -n1 "$TMP/r.1"); $CLIENTS_HI clients $(tail -n1 "$TMP/r.$CLIENTS_HI") (requests/s, tokens/s)" >&2
done
declare -A RPS TPS
for clients in 1 "$CLIENTS_HI"; do
  RPS[$clients]=$(cut -d' ' -f1 "$TMP/r.$clients" | median)
  TPS[$clients]=$(cut -d' ' -f2 "$TMP/r.$clients" | median)
done
GEN=$(median <"$TMP/gen")
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=

# select with the in-process log-prob judge
: >"$TMP/sel"
for _ in $(seq 1 "$RUNS"); do
  "$BIN" select --in "$SHARED/assets/data/corpus/senators.csv" --text-field text --target left --limit "$RECORDS" \
    --judge-model "$MODEL" --judge-threads "$THREADS" --judge-concurrency 8 --out "$TMP/sel.jsonl" --restart --quiet 2>"$TMP/sel.err"
  grep -o '([0-9.]* records/s)' "$TMP/sel.err" | tr -d '(' | cut -d' ' -f1 >>"$TMP/sel"
done
SEL=$(median <"$TMP/sel")
echo "bench: select: $SEL records/s" >&2

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
cat <<EOF
## Server and data pipeline (issue #5)

Measured by \`bench/serve.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%d), $CPU, $(nproc --all) cores (shared with other
work: absolute figures move with the load, the ratios less), $THREADS threads, on $MODEL_NAME.
Median of $RUNS rounds (each round: the engine alone, 1 client, $CLIENTS_HI clients). Each request: a $(echo "$PROMPT" | wc -w)-word prompt, $NEW generated tokens (greedy, ignore_eos),
\`politune serve --parallel $CLIENTS_HI\` (continuous batching: requests share every forward pass).

| load | requests/s | generated tokens/s | vs. the engine alone |
| --- | ---: | ---: | ---: |
| \`politune generate\` (no server, one sequence) | | $GEN | 1.00 |
| serve, 1 client ($REQS requests in a row) | ${RPS[1]} | ${TPS[1]} | $(ratio "${TPS[1]}" "$GEN") |
| serve, $CLIENTS_HI concurrent clients ($PER_HI requests each) | ${RPS[$CLIENTS_HI]} | ${TPS[$CLIENTS_HI]} | $(ratio "${TPS[$CLIENTS_HI]}" "$GEN") |

$CLIENTS_HI clients against 1: $(ratio "${TPS[$CLIENTS_HI]}" "${TPS[1]}")x the generated tokens/s (the gain of batching decode steps).
No peer server (llama.cpp's, vLLM) is installed here; the baseline is politune's own engine.

\`politune select\` with the in-process log-prob judge (ideology 1..9 and quality 1..5 read as label
probabilities, each prompt scored in its own forward pass, 8 jobs in flight), first $RECORDS senator tweets:
**$SEL records/s** (two judge prompts per record, about 160 tokens each with the default templates in the
alpaca wrapper: roughly $(awk -v r="$SEL" 'BEGIN {printf "%.0f", r * 320}') prompt tokens/s).
EOF
