#!/usr/bin/env bash
# Times the Political Compass evaluation (issue #4) on the ~125M-parameter benchmark model:
# a full 62-item logprob run (one template, and all 12 template/order variants), the same
# without prefix sharing (a prefill per option: the baseline prefix sharing saves), and a
# generate run (K = 1, at most 300 new tokens per reply, EOS ignored so every reply is 300
# tokens: a random model's replies would otherwise stop at random places). Prints a markdown
# table for BENCHMARKS.md.
#
# The benchmark model (bench/make_model.c writes bench/out/hf-f32) has no tokenizer; it is
# paired with the 32k SentencePiece tokenizer from ../shared/assets/tokenizers/spm32k (same
# vocabulary size) through a directory of symbolic links. Without bench/out the script falls
# back to stories260K and says so.
#
# usage: bench/compass.sh [--runs N] [--threads "1 2"] [--gen-runs N] [--all-variants] [--quick]
#   --all-variants: also time logprob over all 12 template/order variants (12x the work)
#   --quick: the first 8 items only, one run each (a smoke test of the script)
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS="$*"
RUNS=3 GEN_RUNS=1 THREADS="1 2" QUICK=0 ALL=0 ITEMS=62
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --gen-runs) GEN_RUNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --quick) QUICK=1; RUNS=1; ITEMS=8; shift ;;
    --all-variants) ALL=1; shift ;;
    *) echo "usage: $0 [--runs N] [--threads LIST] [--gen-runs N] [--all-variants] [--quick]" >&2; exit 2 ;;
  esac
done
SHARED=${POLITUNE_SHARED:-../shared}
export POLITUNE_ASSETS=${POLITUNE_ASSETS:-$SHARED/assets}
BIN=build/politune
[ -x "$BIN" ] || make -j2 >/dev/null
TMP=$(mktemp -d /tmp/politune-bench-compass.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if [ -f bench/out/hf-f32/model.safetensors ] && [ -f "$SHARED/assets/tokenizers/spm32k/tokenizer.json" ]; then
  MODEL=$TMP/model
  mkdir -p "$MODEL"
  ln -s "$PWD/bench/out/hf-f32/config.json" "$PWD/bench/out/hf-f32/model.safetensors" "$MODEL/"
  ln -s "$(cd "$SHARED/assets/tokenizers/spm32k" && pwd)/tokenizer.json" "$(cd "$SHARED/assets/tokenizers/spm32k" && pwd)/tokenizer_config.json" "$MODEL/"
  MODEL_DESC="benchmark model (bench/out/hf-f32: Llama-shaped, D 768, 12 layers, ~125M parameters, F32) + spm32k tokenizer"
else
  MODEL=$SHARED/assets/models/stories260K/stories260K.gguf
  MODEL_DESC="stories260K (bench/out/hf-f32 not found: run bench/make_model first for the ~125M model)"
fi

QARGS=()
if [ "$QUICK" = 1 ]; then
  # the first 8 propositions with a dummy scoring (timing only)
  head -n 9 "$POLITUNE_ASSETS/data/pct/pct_propositions.csv" > "$TMP/q8.csv"
  python3 - "$TMP/s8.json" <<'PY' 2>/dev/null || printf '{"answers":["Strongly disagree","Disagree","Agree","Strongly agree"],"axes":[{"name":"economic","weights":[[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1]]},{"name":"social","weights":[[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1],[0,0,0,1]]}]}' > "$TMP/s8.json"
import json, sys
w = [[0, 0, 0, 1]] * 8
json.dump({"answers": ["Strongly disagree", "Disagree", "Agree", "Strongly agree"],
           "axes": [{"name": "economic", "weights": w}, {"name": "social", "weights": w}]}, open(sys.argv[1], "w"))
PY
  QARGS=(--questionnaire "$TMP/q8.csv" --scoring "$TMP/s8.json")
fi

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# run NAME THREADS ARGS...: prints "seconds peak_MiB tokens prefills"
run_once() {
  local out=$TMP/out.$RANDOM threads=$1; shift
  local json
  json=$( { /usr/bin/time -f "%M" -o "$TMP/rss" "$BIN" compass --model "$MODEL" --out "$out" --no-open-prompts --threads "$threads" "${QARGS[@]}" "$@"; } 2>"$TMP/err") || { cat "$TMP/err" >&2; exit 1; }
  local secs stats
  secs=$(printf '%s' "$json" | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p')
  stats=$(python3 -c "import json,sys; e=json.load(open(sys.argv[1]))['evaluations'][0]['stats']; print(e['prefill_tokens']+e['option_tokens'], e['generated_tokens'], e['prefills'])" "$out/compass.json")
  echo "$secs $(( $(cat "$TMP/rss") / 1024 )) $stats"
  rm -rf "$out"
}

row() { # label threads runs args...
  local label=$1 threads=$2 n=$3; shift 3
  local times=() line mem toks gen pre
  for _ in $(seq "$n"); do
    line=$(run_once "$threads" "$@")
    times+=("${line%% *}")
    read -r _ mem toks gen pre <<<"$line"
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | median)
  local rate
  rate=$(awk -v t="$med" -v a="$toks" -v g="$gen" 'BEGIN { if (g > 0) printf "%.1f generated tok/s", g / t; else printf "%.0f prompt tok/s", a / t }')
  printf '| %s | %s | %s | %s | %s | %s | %s MiB |\n' "$label" "$threads" "$med" "$(printf '%s ' "${times[@]}")" "$pre" "$rate" "$mem"
}

echo "### Compass ($(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo
echo "Model: $MODEL_DESC. Command: \`bench/compass.sh $ARGS\`; time = the compass run without model loading (median of the runs listed)."
echo
echo "| run | threads | median s | runs (s) | prefills | throughput | peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for t in $THREADS; do
  row "logprob, $ITEMS items x 1 template (t1-fwd)" "$t" "$RUNS" --templates t1-fwd
  row "logprob, $ITEMS items, no prefix sharing (a prefill per option)" "$t" "$RUNS" --templates t1-fwd --no-prefix-sharing
  [ "$ALL" = 0 ] || row "logprob, $ITEMS items x 12 variants (all)" "$t" 1 --templates all
  row "generate, $ITEMS items, K=1, 300 new tokens, 1 template" "$t" "$GEN_RUNS" --mode generate --samples 1 --max-new-tokens 300 --ignore-eos --templates t1-fwd
done
