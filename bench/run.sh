#!/usr/bin/env bash
# Engine benchmark (issue #2), run by `make bench`: prefill tokens/s (512-token prompt) and
# decode tokens/s (64 tokens after a 128-token prompt, KV cache) of politune on the ~125M
# Llama-shaped random model, side by side with the PyTorch peer in the same run, written to
# the engine section of BENCHMARKS.md.
#
# Each round runs the peer once and then politune on every form of the model, so slow and
# fast moments of a shared machine fall on both sides; figures are medians over rounds (each
# politune figure already the median of BENCH_RUNS runs), ratios are politune / peer.
#
# Knobs (environment): BENCH_THREADS (2), BENCH_ROUNDS (3), BENCH_RUNS (5), BENCH_OUT
# (bench/out), POLITUNE_SHARED (../shared), PEER_ARGS (extra peer arguments; its DPO step is
# cut to one small step, which the engine figures do not use), OURS_CORETYPE (the OpenBLAS
# kernel politune is told to use: by default the one bench_coretype picks from the CPU's flags,
# as for the peer; "inherit" leaves the environment alone),
# BENCH_MD (BENCHMARKS.md). `bench/run.sh --report-only` rewrites the section from the last
# run's results ($BENCH_OUT/results.jsonl and meta.sh) without measuring again.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
RUNS=${BENCH_RUNS:-5}
OUT=${BENCH_OUT:-bench/out}
SHARED=${POLITUNE_SHARED:-../shared}
PEER=$SHARED/tools/peer_torch_llama.py
PEER_ARGS=${PEER_ARGS:---pairs 1 --seq 32 --steps 1}
MD=${BENCH_MD:-BENCHMARKS.md}
# Debian's interpreter: python3-torch lives in its dist-packages, which a python3 earlier on
# PATH (pyenv, a venv) does not see.
PY=/usr/bin/python3
BUILD=${BUILD:-build}

log() { printf 'bench: %s\n' "$*" >&2; }
# shellcheck source=bench/common.sh
. bench/common.sh
# the OpenBLAS core type both sides get (empty: OpenBLAS chooses), recorded in the report
CORETYPE=$(bench_coretype)
OURS_CORETYPE=${OURS_CORETYPE:-${CORETYPE:-inherit}}

RES=$OUT/results.jsonl
META=$OUT/meta.sh
if [ "${1:-}" = --report-only ]; then
    # shellcheck disable=SC1090
    . "$META"
else
    bench_need_peer "$PEER"

    log "building the benchmark tools"
    make -s -j2 -f Makefile -f bench/bench.mk BUILD="$BUILD" bench-tools
    MAKE_MODEL=$BUILD/bench/make_model
    BENCH=$BUILD/bench/bench_engine

    mkdir -p "$OUT"
    if [ ! -f "$OUT/hf-f32/model.safetensors" ] || [ ! -f "$OUT/model-f32.gguf" ] || [ ! -f "$OUT/model-q8_0.gguf" ] ||
       [ ! -f "$OUT/model-q4_0.gguf" ]; then
        log "writing the random 125M model to $OUT"
        "$MAKE_MODEL" --out "$OUT"
    fi

    # What the environment says about OpenBLAS, before this script sets anything.
    INHERIT_CT=${OPENBLAS_CORETYPE-}
    INHERIT_L2=${OPENBLAS_L2_SIZE-}
    ours_env() {
        if [ "$OURS_CORETYPE" = inherit ]; then "$@"; else OPENBLAS_CORETYPE=$OURS_CORETYPE "$@"; fi
    }

    : > "$RES"
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
    MODELS="hf-f32 model-f32.gguf model-q8_0.gguf model-q4_0.gguf"
    for r in $(seq 1 "$ROUNDS"); do
        log "round $r/$ROUNDS: PyTorch peer"
        # shellcheck disable=SC2086
        with_coretype "$PY" "$PEER" --threads "$THREADS" $PEER_ARGS --json "$OUT/peer.json" > /dev/null
        "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["round"]=int(sys.argv[2]); print(json.dumps(d))' \
            "$OUT/peer.json" "$r" >> "$RES"
        for m in $MODELS; do
            log "round $r/$ROUNDS: politune $m"
            sg=
            [ "$m" = hf-f32 ] && sg=--sgemm
            ours_env "$BENCH" "$OUT/$m" --threads "$THREADS" --runs "$RUNS" $sg |
                sed "s/^{/{\"round\":$r,\"setting\":\"ours\",/" >> "$RES"
        done
        # which OpenBLAS kernel politune's process gets under each setting, and its sgemm rate
        {
            "$BENCH" --blas-only --threads "$THREADS" | sed "s/^{/{\"round\":$r,\"setting\":\"blas-inherited\",/"
            with_coretype "$BENCH" --blas-only --threads "$THREADS" |
                sed "s/^{/{\"round\":$r,\"setting\":\"blas-chosen\",/"
            env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BENCH" --blas-only --threads "$THREADS" |
                sed "s/^{/{\"round\":$r,\"setting\":\"blas-unset\",/"
        } >> "$RES"
        if [ "$OURS_CORETYPE" != inherit ]; then
            # the same F32 model under whatever OpenBLAS kernel the environment selects
            log "round $r/$ROUNDS: politune hf-f32, OpenBLAS as inherited"
            "$BENCH" "$OUT/hf-f32" --threads "$THREADS" --runs "$RUNS" --sgemm |
                sed "s/^{/{\"round\":$r,\"setting\":\"inherited\",/" >> "$RES"
        fi
    done
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

    bench_describe
    MEM=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
    FLAGS=$(lscpu | grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|avx2' | sort -u | tr '\n' ' ')
    KERNEL=$(uname -r)
    CCV=$(${CC:-cc} --version | head -1)

    declare -p DATE LOAD_START LOAD_END CPU NCPU MEM FLAGS KERNEL CCV BLASV COMMIT INHERIT_CT INHERIT_L2 BENCH \
        THREADS ROUNDS RUNS PEER PEER_ARGS OURS_CORETYPE CORETYPE > "$META"
fi

export RES MD DATE LOAD_START LOAD_END CPU NCPU MEM FLAGS KERNEL CCV BLASV COMMIT THREADS ROUNDS RUNS OUT PEER \
    PEER_ARGS OURS_CORETYPE CORETYPE INHERIT_CT INHERIT_L2 BENCH
"$PY" - <<'PYEOF'
import json, os, re, statistics as st

E = os.environ
rows = [json.loads(l) for l in open(E["RES"]) if l.strip()]
peer = [r for r in rows if r.get("peer")]
ours = [r for r in rows if r.get("engine") == "politune"]
med = st.median

def per_round(setting, model):
    return {r["round"]: r for r in ours if r["setting"] == setting and r.get("model", "").endswith("/" + model)}

peer_by_round = {r["round"]: r for r in peer}
P_pre = med([r["prefill_tok_s"] for r in peer])
P_dec = med([r["decode_tok_s"] for r in peer])
P_gf = med([r["sgemm2048_gflops"] for r in peer])

def ratios(rr, key):
    return [rr[k][key] / peer_by_round[k][key] for k in rr if k in peer_by_round]

MODELS = [("hf-f32", "F32, safetensors dir"), ("model-f32.gguf", "F32, GGUF"), ("model-q8_0.gguf", "Q8_0, GGUF"),
          ("model-q4_0.gguf", "Q4_0, GGUF")]
summary = {}
lines = []
A = lines.append
A("<!-- engine:begin (written by bench/run.sh; edit the script, not this section) -->")
A("## Engine: prefill and decode (issue #2)")
A("")
A(f"Run {E['DATE']} on {E['CPU']}, {E['NCPU']} cores, {E['MEM']} ({E['FLAGS'].strip()}), Linux {E['KERNEL']}; "
  f"{E['CCV']}; OpenBLAS {E['BLASV']} (Debian, pthread build); PyTorch {peer[0].get('torch', '?')} (Debian). "
  f"Commit {E['COMMIT']}. Load average {E['LOAD_START']} at the start, {E['LOAD_END']} at the end "
  "(the machine is shared: figures move with what else runs, the same-run ratios much less).")
A("")
c = next(r for r in ours if "dim" in r)
A(f"Model: random Llama-shaped, D {c['dim']}, {c['layers']} layers, {c['heads']} heads, {c['kv_heads']} KV heads, "
  f"FFN {c['ffn']}, vocab {c['vocab']} ({c['params_m']:.1f}M parameters; the peer builds the same shapes, "
  f"{peer[0]['params_m']:.1f}M), written by `bench/make_model` in four forms. "
  f"{E['THREADS']} threads on both sides. Prefill: one 512-token prompt of random ids, fresh cache, logits "
  "of the last token. Decode: 64 greedy tokens after a 128-token prompt, one token per forward pass with "
  f"the KV cache. {E['ROUNDS']} rounds; each round runs the peer once (its own median of 3 prefill / 2 "
  f"decode runs) and politune on each model (median of {E['RUNS']} runs); tables show medians over rounds, "
  "ratios are politune / peer per round, then the median.")
A("")
A("| engine, weights | prefill tok/s | decode tok/s | prefill vs peer | decode vs peer | peak RSS MiB | weights + KV MiB | RSS / (weights + KV) |")
A("|---|---:|---:|---:|---:|---:|---:|---:|")
A(f"| PyTorch peer, F32 (sgemm {P_gf:.0f} GFLOP/s) | {P_pre:.0f} | {P_dec:.1f} | 1.00x | 1.00x | "
  f"{med([r['peak_rss_mib'] for r in peer]):.0f} (incl. its DPO step) | | |")
for key, label in MODELS:
    rr = per_round("ours", key)
    if not rr:
        continue
    v = list(rr.values())
    pre, dec = med([r["prefill_tok_s"] for r in v]), med([r["decode_tok_s"] for r in v])
    rp, rd = med(ratios(rr, "prefill_tok_s")), med(ratios(rr, "decode_tok_s"))
    rss = max(r["peak_rss_mib"] for r in v)
    wkv = v[0]["weight_mib"] + v[0]["kv_mib"]
    summary[key] = dict(pre=pre, dec=dec, rp=rp, rd=rd, rss=rss, wkv=wkv, conv=v[0]["converted_mib"],
                        anon=max(r["rss_anon_mib"] for r in v), file=max(r["rss_file_mib"] for r in v),
                        eng=v[0]["engine_mib"], w=v[0]["weight_mib"], kv=v[0]["kv_mib"])
    A(f"| politune, {label} | {pre:.0f} | {dec:.1f} | {rp:.2f}x | {rd:.2f}x | {rss:.0f} | {wkv:.0f} | {rss / wkv:.2f} |")
inh = per_round("inherited", "hf-f32")
A("")
o = next(iter(per_round("ours", "hf-f32").values()), None)
if o:
    ct = E["OURS_CORETYPE"]
    A(f"OpenBLAS kernel in politune's runs above: `{o['openblas_core']}` (OPENBLAS_CORETYPE="
      f"{'as inherited' if ct == 'inherit' else ct}, the peer's setting), 2048² sgemm "
      f"{med([r['sgemm2048_gflops'] for r in per_round('ours', 'hf-f32').values()]):.0f} GFLOP/s through "
      f"politune's threading; politune's own kernels: `{o['kernels']}`.")
if inh:
    v = list(inh.values())
    A(f"The environment of this run had OPENBLAS_CORETYPE={E['INHERIT_CT'] or '(unset)'} and "
      f"OPENBLAS_L2_SIZE={E['INHERIT_L2'] or '(unset)'}; under it politune's F32 figures are prefill "
      f"{med([r['prefill_tok_s'] for r in v]):.0f} tok/s ({med(ratios(inh, 'prefill_tok_s')):.2f}x the peer), decode "
      f"{med([r['decode_tok_s'] for r in v]):.1f} tok/s ({med(ratios(inh, 'decode_tok_s')):.2f}x).")
blas = [(s, l) for s, l in (("blas-inherited", "as inherited"), ("blas-chosen", "OPENBLAS_CORETYPE=" + (E["CORETYPE"] or "(unset)")),
                            ("blas-unset", "no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE"))]
probes = {s: [r for r in ours if r["setting"] == s] for s, _ in blas}
if all(probes.values()):
    A("")
    A("OpenBLAS kernel that politune's process gets (`bench_engine --blas-only`: 2048² sgemm through politune's "
      "threading, median over rounds):")
    A("")
    A("| OpenBLAS environment | kernel | sgemm GFLOP/s |")
    A("|---|---|---:|")
    for s_, label in blas:
        A(f"| {label} | `{probes[s_][0]['openblas_core']}` | {med([r['sgemm2048_gflops'] for r in probes[s_]]):.0f} |")
A("")
A("Targets (llama.cpp on this machine kind, same model: prefill ≈ 3.0x, decode ≈ 8.5x the peer in F32; "
  "≈ 830 / ≈ 64 tok/s, Q8_0 ≈ 540 / ≈ 117 tok/s):")
A("")
def mark(ok): return "met" if ok else "**not met**"
f32 = summary.get("hf-f32")
q8 = summary.get("model-q8_0.gguf")
if f32:
    A(f"- prefill ≥ 2.4x the peer in F32: {f32['rp']:.2f}x — {mark(f32['rp'] >= 2.4)}")
    A(f"- decode ≥ 6.8x the peer in F32: {f32['rd']:.2f}x — {mark(f32['rd'] >= 6.8)}")
if f32 and q8:
    A(f"- Q8_0 decode faster than F32 decode: {q8['dec']:.1f} vs {f32['dec']:.1f} tok/s — {mark(q8['dec'] > f32['dec'])}")
for key, label in MODELS:
    s = summary.get(key)
    if s:
        A(f"- resident memory ≤ (weights + KV) × 1.1, {label}: {s['rss']:.0f} MiB vs {s['wkv'] * 1.1:.0f} MiB "
          f"— {mark(s['rss'] <= s['wkv'] * 1.1)} (weights {s['w']:.1f}, KV {s['kv']:.1f}, engine workspace "
          f"{s['eng'] - s['kv']:.1f}, converted copies {s['conv']:.1f}; resident file pages {s['file']:.0f}, "
          f"anonymous {s['anon']:.0f})")
A("")
A("Memory notes: weights stay memory-mapped, so peak RSS counts the file pages actually touched: the token "
  "embedding is read one row per token, but each page fault maps its 64 KiB neighbourhood, so 512 random "
  "tokens bring in about a third of the F32 table and most of a quantised one. GGUF `llama` files store Q/K rows in the "
  "interleaved rotary order; the loader keeps permuted copies (\"converted\") and the file pages it read them "
  "from stay mapped and resident too, so Q/K count twice. The engine workspace is sized for the whole "
  "512-token prompt, and the shared libraries add about 4 MiB of file pages. What keeps the quantised models "
  "over the bound is therefore outside the kernels: dropping the source pages after the permutation "
  "(madvise MADV_DONTNEED on the mapping) would remove the Q/K double count, and running a long prompt "
  "through the layers in chunks would shrink the workspace.")
A("")
A("Commands:")
A("")
A("```")
A("make bench        # = bash bench/run.sh")
A(f"{E['BENCH']} MODEL --threads {E['THREADS']} --runs {E['RUNS']} [--sgemm]   # OPENBLAS_CORETYPE={E['OURS_CORETYPE']}")
A(f"OPENBLAS_CORETYPE={E['CORETYPE'] or '(unset)'} /usr/bin/python3 {E['PEER']} --threads {E['THREADS']} {E['PEER_ARGS']}")
A("```")
A("")
A("<details><summary>Per-round figures</summary>")
A("")
A("| round | peer prefill | peer decode | peer sgemm GFLOP/s | " + " | ".join(f"{k} prefill / decode" for k, _ in MODELS) + " | hf-f32, inherited OpenBLAS |")
A("|---|---:|---:|---:|" + "---:|" * (len(MODELS) + 1))
for rnd in sorted(peer_by_round):
    p = peer_by_round[rnd]
    cells = []
    for key, _ in MODELS + [("hf-f32", "")]:
        setting = "inherited" if len(cells) == len(MODELS) else "ours"
        r = per_round(setting, key).get(rnd)
        cells.append(f"{r['prefill_tok_s']:.0f} / {r['decode_tok_s']:.1f}" if r else "")
    A(f"| {rnd} | {p['prefill_tok_s']:.0f} | {p['decode_tok_s']:.2f} | {p['sgemm2048_gflops']:.0f} | " + " | ".join(cells) + " |")
A("")
A("</details>")
A("<!-- engine:end -->")
section = "\n".join(lines) + "\n"

path = E["MD"]
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
pat = re.compile(r"<!-- engine:begin.*?<!-- engine:end -->\n?", re.S)
text = pat.sub(lambda _: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
print(section)
PYEOF
log "wrote $MD"
