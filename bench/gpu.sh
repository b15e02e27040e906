#!/usr/bin/env bash
# The GPU checks of issue #12 as one device call.
#
#   bash bench/gpu.sh prepare    here (a developer machine with nvcc): builds the CUDA build for
#                                a generic x86-64 CPU and packs into .gpu/ (in .gitignore) what
#                                the device machine lacks: the binaries, the shared libraries
#                                they load (not glibc's, not CUDA's), the reference data the GPU
#                                tests read and the peer script, as one .gpu/bundle.tar.xz
#   bash bench/gpu.sh            on the device machine (the `run` tool, carry [".gpu"]):
#                                unpacks the bundle, records the machine, runs the GPU tests
#                                (tests/gpu), the inference fixture tests again on the GPU in f32,
#                                politune's generation benchmark (bench/bench_gpu.c: the GPU-
#                                resident engine, batches 1, 16 and 32, and a compass-shaped
#                                log-prob workload of 744 prompts) and the
#                                peer (peer_peft_gpu.py: PyTorch + transformers + peft) in the
#                                same call, and writes everything to $OUT (at most 8 files).
#
# Budget: each stage has its own timeout; the whole run is meant to end within ~8 minutes
# (LAYERS=32, the full 8B shape) so a 600 s call leaves room. LAYERS=8 for a quick look.
# The machine has no package registry: nothing is installed there.
set -uo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu

prepare() {
    set -e
    local shared=${POLITUNE_SHARED:-../shared}
    command -v nvcc >/dev/null || PATH=/usr/local/cuda/bin:$PATH
    command -v nvcc >/dev/null || { echo "gpu.sh prepare: nvcc not found" >&2; exit 1; }
    # a separate build folder: -march=native here could use instructions the device's CPU lacks
    local b=build-gpu-portable
    make -j2 CUDA=1 BUILD=$b ARCH=-march=x86-64-v2 $b/politune $b/test_runner $b/bench/bench_gpu
    rm -rf $GPU_DIR && mkdir -p $GPU_DIR/stage/bin $GPU_DIR/stage/lib $GPU_DIR/stage/shared/assets/models $GPU_DIR/stage/shared/assets/data \
        $GPU_DIR/stage/shared/fixtures
    cp $b/politune $b/test_runner $b/bench/bench_gpu $GPU_DIR/stage/bin/
    # every shared library the binaries load, except the C runtime and CUDA's (the device image
    # has its own, newer ones)
    ldd $b/politune $b/test_runner | awk '$3 ~ /^\// {print $3}' | sort -u |
        grep -Ev '/(libc|libm|libdl|librt|libpthread|libresolv|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so|libcuda|libcublas|libcudart' |
        while read -r lib; do cp -L "$lib" $GPU_DIR/stage/lib/; done
    cp -r "$shared/assets/models/stories260K" $GPU_DIR/stage/shared/assets/models/
    cp -r "$shared/assets/data/pct" $GPU_DIR/stage/shared/assets/data/
    cp -r "$shared/fixtures/reference" $GPU_DIR/stage/shared/fixtures/
    [ -f "$shared/fixtures/README.md" ] && cp "$shared/fixtures/README.md" $GPU_DIR/stage/shared/fixtures/
    cp "$shared/tools/peer_peft_gpu.py" $GPU_DIR/stage/
    git rev-parse --short HEAD > $GPU_DIR/stage/commit.txt
    git diff --quiet HEAD -- src bench tests || echo "(with uncommitted changes)" >> $GPU_DIR/stage/commit.txt
    tar -C $GPU_DIR/stage -cJf $GPU_DIR/bundle.tar.xz .
    rm -rf $GPU_DIR/stage
    ls -la $GPU_DIR
    echo "gpu.sh prepare: ready; on the device: run(command='bash bench/gpu.sh', carry=['.gpu'], timeout_s=600)"
}

# Runs a stage with a time limit, its output appended to a log; never stops the script.
stage() {
    local name=$1 limit=$2 log=$3
    shift 3
    echo "=== $name (limit ${limit}s): $*" >> "$log"
    local t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    local rc=$?
    echo "=== $name: exit $rc after $(( $(date +%s) - t0 ))s" >> "$log"
    echo "$name: exit $rc after $(( $(date +%s) - t0 ))s"
    return 0
}

device() {
    local out=${OUT:-bench/out/gpu} layers=${LAYERS:-32}
    mkdir -p "$out"
    [ -f $GPU_DIR/bundle.tar.xz ] || { echo "gpu.sh: $GPU_DIR/bundle.tar.xz missing: run 'bash bench/gpu.sh prepare' first and carry $GPU_DIR" >&2; exit 1; }
    local root=/tmp/politune-gpu
    rm -rf $root && mkdir -p $root && tar -C $root -xJf $GPU_DIR/bundle.tar.xz
    # CUDA's libraries: the toolkit's, else the ones PyTorch's wheels ship
    local cudalib=/usr/local/cuda/lib64
    local pylibs
    pylibs=$(python3 -c 'import glob, os, nvidia; print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/*/lib/lib*.so*")})))' 2>/dev/null || true)
    export LD_LIBRARY_PATH="$root/lib:$cudalib:${pylibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export POLITUNE_SHARED=$root/shared POLITUNE_ASSETS=$root/shared/assets POLITUNE_BIN=$root/bin/politune
    local m=$out/machine.txt
    { date -u; echo "commit: $(cat $root/commit.txt)"; nvidia-smi 2>&1 | head -20; echo "cpus: $(nproc)"; lscpu | grep 'Model name';
      grep MemTotal /proc/meminfo; cat /etc/os-release | head -2; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH";
      echo "--- ldd politune"; ldd $root/bin/politune; } > "$m" 2>&1
    # the binary built elsewhere must start here; if it does not, the log says why
    $root/bin/politune --help > /dev/null 2>> "$m" || echo "politune does not start here (see ldd above)" >> "$m"

    local t=$out/tests.log
    : > "$t"
    # 1. GPU tests: each CUDA operation against the CPU's, stories260K greedy in f32, memory refusal
    stage gpu-tests 110 "$t" $root/bin/test_runner gpu_
    # 2. the fixture tests of inference (logits, greedy, scores, the compass, the CLI) and of
    #    float32 training (DPO/SFT log-probs, losses, LoRA gradients) again, with every model on
    #    the GPU in f32, at the tests' own tolerances (1e-4 x max|expected| for logits and
    #    gradients, 1e-5 relative for log-probabilities)
    stage fixtures-on-cuda-f32 90 "$t" env POLITUNE_DEVICE=cuda POLITUNE_CUDA_PRECISION=f32 \
        $root/bin/test_runner test_engine_ test_compass_logprob test_cli_logits test_cli_generate test_train_dpo_grads test_train_sft_grads \
        test_backend_cli_device_cpu
    # 3. --device cuda end to end through the CLI, bf16 (the users' mode): text and timing
    stage cli-generate-bf16 30 "$t" $root/bin/politune generate --device cuda --model $root/shared/assets/models/stories260K/stories260K.gguf \
        --prompt "Once upon a time" --max-new-tokens 40

    # 4. politune's generation benchmark on the 8B shape (batch 1, 16 and 32, 96 + 128 tokens; the
    #    peer measures 1 and 16) and the compass-shaped workload (744 prompts of 80 ids, 4 options)
    stage politune-bench 150 "$out/bench.log" $root/bin/bench_gpu --layers "$layers" --runs 3 --batch 1,16,32 --prompt 96 --new 128 \
        --compass 744
    grep '^{' "$out/bench.log" > "$out/politune.jsonl" 2>/dev/null || true

    # 5. the peer in the same call: PyTorch + transformers + peft (DPO steps, generate)
    stage peer 220 "$out/peer.log" env PYTHONUNBUFFERED=1 python3 $root/peer_peft_gpu.py "$out/peer.json" --layers "$layers"

    # one summary of what came back
    python3 - "$out" > "$out/summary.txt" 2>&1 <<'EOF'
import json, sys, os
out = sys.argv[1]
def lines(p):
    try: return [json.loads(l) for l in open(p) if l.startswith("{")]
    except OSError: return []
ours = {r["batch"]: r for r in lines(os.path.join(out, "politune.jsonl")) if r.get("bench") == "politune_generate"}
peer = lines(os.path.join(out, "peer.log"))
gen = {r["config"]: r for r in peer if str(r.get("config", "")).startswith("generate_bs")}
for bs in (1, 16, 32):
    o, p = ours.get(bs), gen.get(f"generate_bs{bs}")
    if o and p and "tokens_per_s" in p:
        print(f"generate batch {bs}: politune {o['tokens_per_s']:.1f} tok/s, transformers {p['tokens_per_s']:.1f} tok/s, ratio {o['tokens_per_s'] / p['tokens_per_s']:.2f}")
    elif o:
        print(f"generate batch {bs}: politune {o['tokens_per_s']:.1f} tok/s (decode {o['decode_tokens_per_s_median']:.1f}), peer: {p or 'not measured'}")
    else:
        print(f"generate batch {bs}: politune {o}, peer {p}")
for r in lines(os.path.join(out, "politune.jsonl")):
    if r.get("bench") in ("politune_compass_shaped", "politune_engine_open"): print(json.dumps(r))
for r in peer:
    if str(r.get("config", "")).startswith("dpo"): print("peer", json.dumps(r))
    if "bf16_matmul_tflops" in r: print("peer bf16 matmul ceiling TFLOP/s", round(r["bf16_matmul_tflops"], 1))
t = open(os.path.join(out, "tests.log")).read().splitlines()
print("\n".join(l for l in t if l.startswith("===") or " passed, " in l or l.startswith("FAIL")))
EOF
    cat "$out/summary.txt"
}

case "${1:-device}" in
prepare) prepare ;;
device) device ;;
*) echo "usage: bash bench/gpu.sh [prepare|device]" >&2; exit 2 ;;
esac
