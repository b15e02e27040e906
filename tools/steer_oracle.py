"""Oracle for politune's steering vectors (tests/test_dial_steer.c), with PyTorch and
transformers: the mean residual-stream activation over each response's tokens at every
layer's output (forward hooks on the decoder layers), chosen minus rejected, averaged over
the pairs; and the logits of a prompt with scale * direction added at one layer's output.

usage: steer_oracle.py MODEL_DIR PAIRS.jsonl (prompt_ids/chosen_ids/rejected_ids) LAYER SCALE
                       PROMPT_IDS(comma-separated) OUT.json
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    model_dir, pairs_path, layer, scale, prompt, out_path = sys.argv[1:7]
    layer, scale = int(layer), float(scale)
    prompt = [int(x) for x in prompt.split(",")]
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    layers = model.model.layers
    captured = {}
    steer = {}

    def hook(i):
        def f(_module, _inputs, output):
            h = output[0] if isinstance(output, tuple) else output
            if i in steer:
                h = h + steer[i]
                output = (h,) + tuple(output[1:]) if isinstance(output, tuple) else h
            captured[i] = h.detach().clone()
            return output
        return f

    for i, lay in enumerate(layers):
        lay.register_forward_hook(hook(i))
    n_layers, dim = len(layers), model.config.hidden_size
    total = torch.zeros(n_layers, dim, dtype=torch.float64)
    pairs = [json.loads(line) for line in open(pairs_path) if line.strip()]
    with torch.no_grad():
        for p in pairs:
            means = []
            for side in ("chosen_ids", "rejected_ids"):
                ids = p["prompt_ids"] + p[side]
                model(torch.tensor([ids]))
                n = len(p[side])
                means.append(torch.stack([captured[i][0, -n:].double().mean(0) for i in range(n_layers)]))
            total += means[0] - means[1]
        vec = total / len(pairs)
        steer[layer] = scale * vec[layer].float()
        logits = model(torch.tensor([prompt])).logits[0]
    json.dump({"vector": vec.tolist(), "logits": logits.tolist()}, open(out_path, "w"))


if __name__ == "__main__":
    main()
