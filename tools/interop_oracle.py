#!/usr/bin/env python3
"""The Python side of politune's interop tests (tests/test_interop.c, tests/test_smollm.c):
each subcommand loads a model with the reference implementation and prints JSON on stdout.

  llama-greedy GGUF --ids 1,2,3 [--ids ...] --n N [--lora ADAPTER.gguf] [--f32-kv]
      llama.cpp (llama-cpp-python) greedy continuation of each prompt: {"ids": [[...], ...]}
      (at most N tokens; an end-of-generation token ends it and is not included)
  llama-tokenize GGUF TEXTS.json
      llama.cpp's tokenisation of each text (no BOS, special tokens parsed): {"ids": [[...], ...]}
  hf-logits --ids 1,2,3 MODEL [MODEL ...]
      transformers float32 logits of every position for each MODEL, a Hugging Face directory or
      DIR+PEFT_DIR (the adapter applied with peft): {"logits": [[[...], ...], ...]} (one per MODEL;
      one process for all, as importing torch dominates the time)

Run on the CPU with the oracle venv (tools/oracles/setup.sh); never part of politune's runtime.
"""
import argparse
import json
import sys


def ids_arg(s):
    return [int(x) for x in s.split(",") if x]


def llama_model(path, lora=None, n_ctx=1024, f32_kv=False):
    from llama_cpp import Llama

    kw = dict(model_path=path, n_ctx=n_ctx, n_threads=2, n_batch=512, verbose=False, logits_all=False)
    if f32_kv:  # llama.cpp's default cache is F16; politune keeps keys and values in float32
        kw.update(type_k=0, type_v=0)
    if lora:
        kw["lora_path"] = lora
    return Llama(**kw)


def llama_greedy(a):
    import numpy as np
    import llama_cpp

    llm = llama_model(a.gguf, a.lora, f32_kv=a.f32_kv)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    results = []
    for prompt in a.ids:
        llm.reset()
        llm.eval(ids_arg(prompt))
        out = []
        for _ in range(a.n):
            # the last position's logits straight from the context (Llama.scores is only
            # filled with logits_all)
            last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            t = int(np.argmax(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),))))
            if llama_cpp.llama_vocab_is_eog(vocab, t):
                break
            out.append(t)
            llm.eval([t])
        results.append(out)
    print(json.dumps({"ids": results}))


def llama_tokenize(a):
    llm = llama_model(a.gguf, n_ctx=64)
    texts = json.load(open(a.texts))
    print(json.dumps({"ids": [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]}))


def hf_logits(a):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    out = []
    for spec in a.models:
        base, _, adapter = spec.partition("+")
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        model.eval()
        with torch.no_grad():
            out.append(model(torch.tensor([ids_arg(a.ids)])).logits[0].float().tolist())
    print(json.dumps({"logits": out}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("llama-greedy")
    p.add_argument("gguf")
    p.add_argument("--ids", required=True, action="append")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--lora")
    p.add_argument("--f32-kv", action="store_true", help="float32 key/value cache (-ctk f32 -ctv f32)")
    p.set_defaults(fn=llama_greedy)
    p = sub.add_parser("llama-tokenize")
    p.add_argument("gguf")
    p.add_argument("texts")
    p.set_defaults(fn=llama_tokenize)
    p = sub.add_parser("hf-logits")
    p.add_argument("--ids", required=True)
    p.add_argument("models", nargs="+")
    p.set_defaults(fn=hf_logits)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
