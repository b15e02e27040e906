#!/usr/bin/env python3
"""Why politune's greedy tokens equal llama.cpp's on an F32 copy of SmolLM2 but not on its Q4_1
file: how far llama.cpp's own logits move under its own storage choices, and how close
politune's `--numerics llamacpp` (llama.cpp's CPU rounding, docs/numerics.md) brings them.

For each of the five chat prompts of tests/test_smollm.c, the logits of every prompt position
are taken from llama.cpp (llama-cpp-python, CPU) in three set-ups and from politune in two:
  llama.cpp  Q4_1 file, F16 key/value cache (its default)
  llama.cpp  Q4_1 file, F32 key/value cache
  llama.cpp  F32 copy (tools/gguf_dequant.py), F32 key/value cache
  politune   Q4_1 file      (prefill: float32 activations against the dequantised weights)
  politune   F32 copy
  politune   Q4_1 file, --numerics llamacpp
and the largest absolute logit difference between pairs of set-ups is printed, with how many
positions agree on the most likely token. A difference between llama.cpp's own set-ups is a
property of its rounding (activations quantised to 8 bits per 32 with f16 scales against Q4_1
weights, keys/values stored as f16), not of correctness; politune against llama.cpp on the F32
copy is the correctness check.

Then the greedy continuations (32 new tokens, llama.cpp's default F16 cache) of llama.cpp and
of politune --numerics llamacpp are compared token by token; where they part, the position,
both candidates and each engine's logit gap between them are printed (politune's logits there
come from one pass over the prompt and llama.cpp's continuation).

usage: python3 bench/llamacpp_numerics.py Q4_1.gguf [--politune build/politune] [--work DIR]
(oracle venv: tools/oracles/setup.sh)
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for staying healthy.",
    "Explain in one sentence what photosynthesis is.",
    "Should the minimum wage be raised? Answer briefly.",
    "Write a haiku about the sea.",
]


def chatml(text):
    return "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n" % text


def llama_logits(path, f32_kv, prompts_ids):
    from llama_cpp import Llama

    kw = dict(model_path=path, n_ctx=256, n_threads=2, logits_all=True, verbose=False)
    if f32_kv:
        kw.update(type_k=0, type_v=0)
    m = Llama(**kw)
    out = []
    for ids in prompts_ids:
        m.reset()
        m.eval(ids)
        out.append(np.array(m.scores[: len(ids)], dtype=np.float64))
    return out


def politune_logits(binary, path, prompts_ids, numerics="exact"):
    out = []
    for ids in prompts_ids:
        r = subprocess.run([binary, "logits", "--model", path, "--threads", "2", "--numerics", numerics,
                            "--ids", ",".join(map(str, ids))],
                           capture_output=True, text=True, check=True)
        out.append(np.array(json.loads(r.stdout)["logits"], dtype=np.float64))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("q41")
    ap.add_argument("--politune", default="build/politune")
    ap.add_argument("--work", default="/tmp/politune-llamacpp-numerics")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    f32 = os.path.join(a.work, "f32.gguf")
    if not os.path.exists(f32):
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "..", "tools", "gguf_dequant.py"), a.q41, f32], check=True)
    from llama_cpp import Llama

    tok = Llama(model_path=a.q41, n_ctx=64, vocab_only=True, verbose=False)
    ids = [tok.tokenize(chatml(p).encode(), add_bos=False, special=True) for p in PROMPTS]
    runs = {
        "llama.cpp Q4_1 f16-kv": llama_logits(a.q41, False, ids),
        "llama.cpp Q4_1 f32-kv": llama_logits(a.q41, True, ids),
        "llama.cpp F32 f32-kv": llama_logits(f32, True, ids),
        "politune Q4_1": politune_logits(a.politune, a.q41, ids),
        "politune F32": politune_logits(a.politune, f32, ids),
        "politune Q4_1 llamacpp": politune_logits(a.politune, a.q41, ids, "llamacpp"),
    }
    pairs = [
        ("llama.cpp Q4_1 f16-kv", "llama.cpp Q4_1 f32-kv", "llama.cpp's F16 cache alone"),
        ("llama.cpp Q4_1 f32-kv", "llama.cpp F32 f32-kv", "llama.cpp's 8-bit activations alone"),
        ("politune F32", "llama.cpp F32 f32-kv", "politune vs llama.cpp, same F32 weights"),
        ("politune Q4_1", "politune F32", "politune Q4_1 vs its F32 copy"),
        ("politune Q4_1", "llama.cpp Q4_1 f16-kv", "politune vs llama.cpp, Q4_1 file as each runs it"),
        ("politune Q4_1 llamacpp", "llama.cpp Q4_1 f16-kv", "politune --numerics llamacpp vs llama.cpp, Q4_1 file"),
        ("politune Q4_1 llamacpp", "politune Q4_1", "politune --numerics llamacpp vs its default"),
    ]
    n_pos = sum(len(x) for x in ids)
    print("| comparison | max abs logit difference | positions with the same top token (of %d) |" % n_pos)
    print("| --- | ---: | ---: |")
    for x, y, what in pairs:
        d = max(np.abs(p - q).max() for p, q in zip(runs[x], runs[y]))
        same = sum(int((p.argmax(1) == q.argmax(1)).sum()) for p, q in zip(runs[x], runs[y]))
        print("| %s (%s vs %s) | %.4f | %d |" % (what, x, y, d, same))
    greedy(a, ids)


def greedy(a, prompts_ids, n_new=32):
    """llama.cpp's greedy continuation (prompt in one batch, then one token per step) against
    politune --numerics llamacpp's (the same), token by token; and, on the whole sequence
    evaluated in one batch, where each engine's most likely token differs from llama.cpp's
    greedy choice (llama.cpp's own batch and step paths sum in different orders)."""
    here = os.path.dirname(os.path.abspath(__file__))
    oracle = os.path.join(here, "..", "tools", "interop_oracle.py")
    cmd = [sys.executable, oracle, "llama-greedy", a.q41, "--n", str(n_new)]
    for ids in prompts_ids:
        cmd += ["--ids", ",".join(map(str, ids))]
    theirs = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["ids"]
    print()
    print("| prompt | llama.cpp's greedy tokens | politune --numerics llamacpp: first token that differs | "
          "one-batch pass over prompt + llama.cpp's tokens: positions whose top token is not llama.cpp's greedy one, "
          "llama.cpp / politune llamacpp (max abs logit difference between the two) |")
    print("| --- | ---: | --- | --- |")
    equal = 0
    for i, (ids, cont) in enumerate(zip(prompts_ids, theirs)):
        r = subprocess.run([a.politune, "generate", "--model", a.q41, "--threads", "2", "--numerics", "llamacpp",
                            "--max-new-tokens", str(n_new), "--json", "--prompt", chatml(PROMPTS[i])],
                           capture_output=True, text=True, check=True)
        mine = json.loads(r.stdout)["ids"]
        first = next((j for j in range(max(len(mine), len(cont)))
                      if j >= len(mine) or j >= len(cont) or mine[j] != cont[j]), None)
        equal += first is None
        seq = ids + cont
        lp = politune_logits(a.politune, a.q41, [seq], "llamacpp")[0]
        lc = llama_logits(a.q41, False, [seq])[0]
        rows = range(len(ids) - 1, len(seq) - 1)
        off_l = sum(int(lc[r].argmax() != seq[r + 1]) for r in rows)
        off_p = sum(int(lp[r].argmax() != seq[r + 1]) for r in rows)
        d = np.abs(lp - lc).max()
        print("| %d | %d | %s | %d / %d (%.2g) |" % (i, len(cont), "none (equal)" if first is None else
                                                  "%d (politune %s, llama.cpp %s)" % (first, mine[first] if first < len(mine) else "-",
                                                                                       cont[first] if first < len(cont) else "-"),
                                                  off_l, off_p, d))
    print()
    print("%d/%d greedy continuations equal token for token" % (equal, len(prompts_ids)))


if __name__ == "__main__":
    main()
