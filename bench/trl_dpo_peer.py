#!/usr/bin/env python3
"""The TRL + PEFT peer of one LoRA DPO step on the CPU (issue #11, "DPO step against TRL+PEFT").

The same step bench/bench_train times in politune: P preference pairs, each side SEQ tokens of
which the first PROMPT are the prompt; a fresh LoRA adapter (rank 16, alpha 32, dropout 0) on
q_proj, v_proj, gate_proj, up_proj and down_proj (TRL refuses lm_head); the reference pass with
the adapter disabled; TRL's sigmoid DPO loss (beta 0.1) through DPOTrainer.compute_loss on a
batch from its own collator; backward; torch.optim.AdamW. The model is a random-weight float32
Llama of SmolLM2-135M's shape (D 576, 30 layers, 9 heads / 3 KV heads, FFN 1536, vocab 49152,
tied embeddings): time does not depend on the values. Prints one JSON line: the median step
time over STEPS steps after one warm-up step, tokens/s, peak RSS.

usage: trl_dpo_peer.py [--threads 2] [--pairs 4] [--seq 256] [--prompt 64] [--steps 3] [--json OUT]
"""
import argparse
import json
import os
import resource
import statistics
import time
import warnings


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    torch.set_num_threads(a.threads)
    from datasets import Dataset
    from peft import LoraConfig
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer
    import peft, transformers, trl

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                      head_dim=64, vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    V = cfg.vocab_size
    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(V)}, unk_token="t0"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="t2", pad_token="t2")
    import random
    rng = random.Random(0)
    words = lambda n: "".join(f" t{rng.randrange(3, V)}" for _ in range(n))
    resp = a.seq - a.prompt - 1  # TRL appends EOS to each answer
    rows = [{"prompt": words(a.prompt), "chosen": words(resp), "rejected": words(resp)} for _ in range(a.pairs)]
    lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
                      task_type="CAUSAL_LM")
    args = DPOConfig(output_dir="/tmp/trl-dpo-peer", beta=0.1, loss_type=["sigmoid"], per_device_train_batch_size=a.pairs, max_length=None,
                     report_to=[], use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, seed=0)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=lcfg)
    m = trainer.model
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.05)
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    n_tokens = int(batch["attention_mask"].sum())
    times = []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        loss = trainer.compute_loss(m, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step > 0:
            times.append(dt)
    step_s = statistics.median(times)
    out = {"impl": "trl+peft", "threads": a.threads, "pairs": a.pairs, "seq": a.seq, "tokens": n_tokens,
           "trainable_m": sum(p.numel() for p in params) / 1e6, "dpo_step_s": round(step_s, 3), "dpo_tok_s": round(n_tokens / step_s, 1),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "loss": float(loss.detach()),
           "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "trl": trl.__version__}
    line = json.dumps(out)
    print(line)
    if a.json:
        with open(a.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
