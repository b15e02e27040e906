#!/usr/bin/env python3
"""The llama.cpp peer of bench/llamacpp.sh, through llama-cpp-python (llama.cpp built from
source into the oracle venv by tools/oracles/setup.sh): the shapes bench/bench_engine.c
measures, on the same GGUF file with the same thread count.

    llamacpp.py bench MODEL [--threads N] [--runs R] [--prefill T] [--prompt P] [--decode G]
        Prefill: T random token ids into a fresh cache, one batch, logits of the last token.
        Decode: G greedy tokens, one per forward pass, after a P-token prompt.
        Prints one JSON line: medians of R runs and every run's figure (tokens/s).
    llamacpp.py quantize SRC DST TYPE
        llama.cpp's own quantiser (llama_model_quantize), LLAMA_FTYPE_MOSTLY_<TYPE>; re-quantising
        an already quantised file is allowed (its values pass through float32).
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import llama_cpp


def quantize(src, dst, qtype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + qtype)
    params.allow_requantize = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llamacpp.py: quantising {src} to {qtype} failed ({rc})")


def bench(a):
    n_ctx = max(a.prefill, a.prompt + a.decode)
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=a.model, n_ctx=n_ctx, n_batch=max(a.prefill, a.prompt), n_ubatch=max(a.prefill, a.prompt),
                          n_threads=a.threads, n_threads_batch=a.threads, logits_all=False, verbose=False)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    vocab = llm.n_vocab()
    ids = [int(i) for i in rng.integers(3, vocab, size=max(a.prefill, a.prompt))]
    llm.reset()
    llm.eval(ids[: a.prefill])  # warm-up
    pre, dec, last = [], [], -1
    for _ in range(a.runs):
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids[: a.prefill])
        pre.append(a.prefill / (time.perf_counter() - t))
        llm.reset()
        llm.eval(ids[: a.prompt])
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t = time.perf_counter()
        for _ in range(a.decode):
            llm.eval([nxt])
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        dec.append(a.decode / (time.perf_counter() - t))
        last = nxt
    print(json.dumps({"engine": "llama.cpp", "version": llama_cpp.__version__, "model": a.model, "threads": a.threads,
                      "runs": a.runs, "prefill_tokens": a.prefill, "prompt_tokens": a.prompt, "decode_tokens": a.decode,
                      "prefill_tok_s": round(statistics.median(pre), 1), "decode_tok_s": round(statistics.median(dec), 2),
                      "prefill_runs": [round(x, 1) for x in pre], "decode_runs": [round(x, 2) for x in dec],
                      "load_s": round(load_s, 3), "last_token": last}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--runs", type=int, default=3)
    b.add_argument("--prefill", type=int, default=64)
    b.add_argument("--prompt", type=int, default=32)
    b.add_argument("--decode", type=int, default=16)
    b.add_argument("--seed", type=int, default=1)
    q = sub.add_parser("quantize")
    q.add_argument("src")
    q.add_argument("dst")
    q.add_argument("type")
    a = p.parse_args()
    llama_cpp.llama_backend_init()
    if a.cmd == "quantize":
        quantize(a.src, a.dst, a.type)
    else:
        bench(a)


if __name__ == "__main__":
    main()
