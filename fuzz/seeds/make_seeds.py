"""Writes the seed inputs of the loader fuzz targets (fuzz_model_gguf, fuzz_model_hf,
fuzz_adapter, fuzz_tokenizer_encode): tiny but valid files, so the fuzzer starts past the
parsers' first checks. Run with the oracle venv's Python (it needs gguf and numpy):
    python fuzz/seeds/make_seeds.py
"""
import json
import os
import struct

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
D, F, V, HEADS, KV, HD = 8, 16, 16, 2, 1, 4


def out(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tiny_gguf(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(64)
    w.add_embedding_length(D)
    w.add_block_count(1)
    w.add_feed_forward_length(F)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(HD)
    rng = np.random.default_rng(0)
    t = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.1
    w.add_tensor("token_embd.weight", t(V, D))
    w.add_tensor("output_norm.weight", np.ones(D, np.float32))
    for n, s in [("attn_norm", (D,)), ("ffn_norm", (D,)), ("attn_q", (HEADS * HD, D)), ("attn_k", (KV * HD, D)),
                 ("attn_v", (KV * HD, D)), ("attn_output", (D, HEADS * HD)), ("ffn_gate", (F, D)), ("ffn_up", (F, D)),
                 ("ffn_down", (D, F))]:
        w.add_tensor(f"blk.0.{n}.weight", t(*s) if len(s) == 2 else np.ones(s, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def safetensors(tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = a.astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def main():
    tmp = os.path.join(HERE, "tiny.gguf.tmp")
    tiny_gguf(tmp)
    with open(tmp, "rb") as f:
        out("fuzz_model_gguf", "tiny_llama.gguf", f.read())
    os.remove(tmp)

    rng = np.random.default_rng(1)
    t = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.1
    hf = {"model.embed_tokens.weight": t(V, D), "model.norm.weight": np.ones(D), "lm_head.weight": t(V, D)}
    for n, s in [("input_layernorm", (D,)), ("post_attention_layernorm", (D,)), ("self_attn.q_proj", (HEADS * HD, D)),
                 ("self_attn.k_proj", (KV * HD, D)), ("self_attn.v_proj", (KV * HD, D)), ("self_attn.o_proj", (D, HEADS * HD)),
                 ("mlp.gate_proj", (F, D)), ("mlp.up_proj", (F, D)), ("mlp.down_proj", (D, F))]:
        hf[f"model.layers.0.{n}.weight"] = t(*s) if len(s) == 2 else np.ones(s)
    cfg = {"model_type": "llama", "hidden_size": D, "num_hidden_layers": 1, "num_attention_heads": HEADS,
           "num_key_value_heads": KV, "intermediate_size": F, "vocab_size": V, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
    out("fuzz_model_hf", "tiny_llama", json.dumps(cfg).encode() + b"\n#--\n" + safetensors(hf))

    # fuzz_adapter's base model: hidden 32, 2 layers, heads 2 x 16, kv 1, ffn 64, vocab 16
    r = 2
    ad = {}
    for l in range(2):
        for mod, (i, o) in {"self_attn.q_proj": (32, 32), "self_attn.v_proj": (32, 16)}.items():
            ad[f"base_model.model.model.layers.{l}.{mod}.lora_A.weight"] = t(r, i)
            ad[f"base_model.model.model.layers.{l}.{mod}.lora_B.weight"] = t(o, r)
    acfg = {"peft_type": "LORA", "r": r, "lora_alpha": 4, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
            "bias": "none", "use_rslora": False, "use_dora": False}
    out("fuzz_adapter", "qv_rank2", json.dumps(acfg).encode() + b"\n#--\n" + safetensors(ad))

    tok = {"model": {"type": "BPE", "vocab": {c: i for i, c in enumerate("abcdefgh")} | {"ab": 8}, "merges": [["a", "b"]]},
           "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"},
                          {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               {"type": "Split", "pattern": {"Regex": "\\d"}, "behavior": "Isolated", "invert": False},
               {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True, "trim_offsets": True}]},
           "decoder": {"type": "ByteLevel"},
           "added_tokens": [{"id": 9, "content": "<s>", "special": True, "single_word": False, "lstrip": False,
                             "rstrip": False, "normalized": False}]}
    out("fuzz_tokenizer_encode", "bytelevel_seq", b"abc ab<s> d\xc3\xa9f 12\n#--\n" + json.dumps(tok).encode())


if __name__ == "__main__":
    main()
