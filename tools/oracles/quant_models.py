#!/usr/bin/env python3
"""Quantised copies of one small random Llama model, made by llama.cpp's own quantiser, each
with a float32 twin holding the same weights dequantised by the gguf package's reference
(gguf.quants). politune's logits on a quantised file and on its twin must agree: the test
tests/test_quants.c (test_quants_llamacpp_presets) runs this script into a temporary directory.

    quant_models.py OUT_DIR TOKENIZER_GGUF PRESET...

TOKENIZER_GGUF supplies the vocabulary (stories260K.gguf: 512 SentencePiece tokens). The model
is llama-shaped with every row length a multiple of 256, as the K-quants need: dim 256, 4 heads
of 64 with 2 KV heads, FFN 512, 2 layers. PRESET names llama.cpp's LLAMA_FTYPE_MOSTLY_<PRESET>
(Q4_1, Q5_0, Q2_K, Q4_K_M, IQ4_NL, ...). Writes OUT_DIR/model-f32.gguf, OUT_DIR/<PRESET>.gguf,
OUT_DIR/<PRESET>-deq.gguf, and prints one JSON line per preset: {"preset", "types"} with the
GGML types llama.cpp chose for the tensors (its presets mix types per tensor).
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf.quants import dequantize

DIM, HEADS, KV_HEADS, FFN, LAYERS, CTX = 256, 4, 2, 512, 2, 256


def tensors_f32(vocab):
    """name -> float32 array in PyTorch order (out, in), llama.cpp's GGUF names."""
    rng = np.random.default_rng(1234)
    hd = DIM // HEADS

    def lin(o, i):
        return (rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)

    t = {"token_embd.weight": rng.standard_normal((vocab, DIM)).astype(np.float32),
         "output_norm.weight": (1 + 0.1 * rng.standard_normal(DIM)).astype(np.float32),
         "output.weight": lin(vocab, DIM)}
    for l in range(LAYERS):
        p = f"blk.{l}."
        t[p + "attn_norm.weight"] = (1 + 0.1 * rng.standard_normal(DIM)).astype(np.float32)
        t[p + "attn_q.weight"] = lin(HEADS * hd, DIM)
        t[p + "attn_k.weight"] = lin(KV_HEADS * hd, DIM)
        t[p + "attn_v.weight"] = lin(KV_HEADS * hd, DIM)
        t[p + "attn_output.weight"] = lin(DIM, HEADS * hd)
        t[p + "ffn_norm.weight"] = (1 + 0.1 * rng.standard_normal(DIM)).astype(np.float32)
        t[p + "ffn_gate.weight"] = lin(FFN, DIM)
        t[p + "ffn_up.weight"] = lin(FFN, DIM)
        t[p + "ffn_down.weight"] = lin(DIM, FFN)
    return t


def write_model(path, tok, tensors):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("politune quant test model")
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(FFN)
    w.add_block_count(LAYERS)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(DIM // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tok["tokens"])
    w.add_token_scores(tok["scores"])
    w.add_token_types(tok["types"])
    w.add_bos_token_id(tok["bos"])
    w.add_eos_token_id(tok["eos"])
    for name, a in tensors.items():
        w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_tokenizer(path):
    r = gguf.GGUFReader(path)

    def field(name):
        return r.fields[name]

    toks = field("tokenizer.ggml.tokens")
    tokens = [bytes(toks.parts[i]).decode("utf-8") for i in toks.data]
    scores = [float(field("tokenizer.ggml.scores").parts[i][0]) for i in field("tokenizer.ggml.scores").data]
    types = [int(field("tokenizer.ggml.token_type").parts[i][0]) for i in field("tokenizer.ggml.token_type").data]
    bos = int(field("tokenizer.ggml.bos_token_id").parts[-1][0])
    eos = int(field("tokenizer.ggml.eos_token_id").parts[-1][0])
    return {"tokens": tokens, "scores": scores, "types": types, "bos": bos, "eos": eos}


def quantize(llama_cpp, src, dst, preset):
    ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + preset, None)
    if ftype is None:
        raise SystemExit(f"quant_models.py: llama.cpp has no preset {preset}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        raise SystemExit(f"quant_models.py: llama.cpp failed to quantise {src} to {preset} ({rc})")


def dequantized(path):
    """name -> float32 array from every tensor of a GGUF, through gguf.quants; and the types."""
    r = gguf.GGUFReader(path)
    out, types = {}, set()
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))  # PyTorch order
        a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        out[t.name] = a
        types.add(t.tensor_type.name)
    return out, sorted(types)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    out_dir, tok_path, presets = sys.argv[1], sys.argv[2], sys.argv[3:]
    import llama_cpp  # noqa: E402  (only this script needs it)
    llama_cpp.llama_backend_init()
    os.makedirs(out_dir, exist_ok=True)
    tok = read_tokenizer(tok_path)
    f32 = os.path.join(out_dir, "model-f32.gguf")
    write_model(f32, tok, tensors_f32(len(tok["tokens"])))
    for preset in presets:
        q = os.path.join(out_dir, preset + ".gguf")
        quantize(llama_cpp, f32, q, preset)
        deq, types = dequantized(q)
        write_model(os.path.join(out_dir, preset + "-deq.gguf"), tok, deq)
        print(json.dumps({"preset": preset, "types": types}), flush=True)


if __name__ == "__main__":
    main()
