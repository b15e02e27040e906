#!/usr/bin/env python3
"""A tiny random Qwen3 model for politune's qwen3 tests, written in both formats, with the
logits transformers computes for a fixed id sequence.

  make_qwen3_fixture.py OUT_DIR

writes OUT_DIR/hf/ (config.json + model.safetensors, save_pretrained), OUT_DIR/qwen3.gguf
(the same weights under llama.cpp's qwen3 names and metadata keys, F32, no tokenizer) and
OUT_DIR/expected.json ({"ids": [...], "logits": [[...], ...]} from Qwen3ForCausalLM in
float32). head_dim (32) differs from hidden / heads (16), and the per-head q_norm / k_norm
weights are random, so both features are exercised. Seeded: the output is deterministic.
tests/test_qwen3.c runs it into a temporary directory when the oracle venv has torch,
transformers and gguf; nothing it writes is committed.
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM
import gguf

ROPE_THETA = 10000.0
IDS = [1, 17, 250, 3, 99, 42, 311, 7, 128, 64, 5, 200]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6,
                      rope_theta=ROPE_THETA, max_position_embeddings=256, tie_word_embeddings=False,
                      attention_bias=False, bos_token_id=1, eos_token_id=2)
    model = Qwen3ForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    model.save_pretrained(os.path.join(out, "hf"), safe_serialization=True)
    with torch.no_grad():
        logits = model(torch.tensor([IDS])).logits[0].float()
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"ids": IDS, "logits": logits.tolist()}, f)

    w = gguf.GGUFWriter(os.path.join(out, "qwen3.gguf"), "qwen3")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_vocab_size(cfg.vocab_size)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    for name, t in model.state_dict().items():
        if name in names:
            g = names[name]
        else:
            parts = name.split(".")
            g = "blk.%s.%s" % (parts[2], layer[".".join(parts[3:])])
        w.add_tensor(g, t.detach().float().numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    sys.exit(main())
