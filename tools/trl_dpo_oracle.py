#!/usr/bin/env python3
"""TRL as the oracle for politune's DPO step (issue #11 item 6).

On a small random Llama (default: the reference fixture ../shared/fixtures/reference/llama3
and its PEFT LoRA adapter) this builds a trl.DPOTrainer, lets it tokenize a few seeded
preference pairs, collates them into one batch with the trainer's own collator, and runs the
trainer's own loss (DPOTrainer.compute_loss: the concatenated chosen+rejected forward, the
summed completion log-probs, the sigmoid DPO loss) and its backward pass. It writes:

  OUT/adapter/             the starting adapter (the given one without lm_head, which TRL
                           refuses to train), for `politune train --init-adapter`
  OUT/pairs.jsonl          the pairs exactly as TRL tokenized them (prompt_ids, chosen_ids with
                           TRL's EOS, rejected_ids), for `politune train` to take verbatim
  OUT/trl.json             loss, rewards/chosen, rewards/rejected, rewards/margins,
                           rewards/accuracies, logps/chosen, logps/rejected (means over pairs)
  OUT/trl_grads.safetensors  d loss / d (each LoRA A and B), flat, under PEFT's key names

The reference model is the base model with the adapter disabled, as the PoliTune paper and
politune define it. TRL, given a PEFT model that already holds an adapter, uses a frozen
copy of that adapter (the "ref" adapter) as the reference; its LoRA B matrices are zeroed here,
which makes that copy the identity, i.e. the base model. The arithmetic runs in float64
(--dtype float32 to see float32's own error).

usage: trl_dpo_oracle.py --out DIR [--model DIR] [--adapter DIR] [--pairs N] [--beta B] [--seed S]
"""
import argparse
import json
import os
import random
import sys
import warnings


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("POLITUNE_SHARED", os.path.join(here, "..", "..", "shared"))
    ref = os.path.join(shared, "fixtures", "reference", "llama3")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=ref)
    ap.add_argument("--adapter", default=os.path.join(ref, "adapter"))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    a = ap.parse_args()

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(a.seed)
    dtype = getattr(torch, a.dtype)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype)
    cfg = model.config
    V = cfg.vocab_size
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else 2

    # The fixture has no tokenizer: one word per token id ("t17" <-> 17) lets TRL tokenize
    # text and gives back exactly the ids the text was written from.
    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(V)}, unk_token="t0"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=f"t{eos}", pad_token=f"t{eos}")

    rng = random.Random(a.seed)
    def words(n):
        # ids 3.. (clear of BOS/EOS), each preceded by a space so the text splits per token
        return "".join(f" t{rng.randrange(3, V)}" for _ in range(n))
    rows = []
    for i in range(a.pairs):
        rows.append({"prompt": words(rng.randrange(4, 10)), "chosen": words(rng.randrange(2, 8)), "rejected": words(rng.randrange(2, 8))})

    # TRL computes log-probs from lm_head.weight directly and refuses an adapter on lm_head, so
    # the adapter both sides start from is the given one without its lm_head pair
    os.makedirs(a.out, exist_ok=True)
    adapter = os.path.join(a.out, "adapter")
    os.makedirs(adapter, exist_ok=True)
    from safetensors.torch import load_file
    with open(os.path.join(a.adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    acfg["target_modules"] = [t for t in acfg["target_modules"] if t != "lm_head"]
    with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
        json.dump(acfg, f, indent=1)
    weights = {k: v for k, v in load_file(os.path.join(a.adapter, "adapter_model.safetensors")).items() if "lm_head" not in k}
    save_file(weights, os.path.join(adapter, "adapter_model.safetensors"), metadata={"format": "pt"})
    model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
    args = DPOConfig(output_dir=os.path.join(a.out, "trl-run"), beta=a.beta, loss_type=["sigmoid"], per_device_train_batch_size=a.pairs,
                     max_length=None, report_to=[], use_cpu=True, bf16=False, fp16=False, dataset_num_proc=None,
                     gradient_checkpointing=False, seed=a.seed)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    m = trainer.model
    n_ref = 0
    for name, p in m.named_parameters():
        if ".ref." in name and "lora_B" in name:
            p.data.zero_()
            n_ref += 1
    if n_ref == 0:
        sys.exit("trl_dpo_oracle: TRL made no 'ref' adapter; cannot pin the reference to the base model")
    m.eval()  # LoRA dropout off (the fixture's is 0 anyway); gradients still flow
    m.zero_grad()
    ds = trainer.train_dataset
    examples = [ds[i] for i in range(len(ds))]
    batch = trainer.data_collator(examples)
    batch = {k: v.to(m.device) if hasattr(v, "to") else v for k, v in batch.items()}
    trainer.model.training = True  # metrics are filed under "train"
    loss = trainer.compute_loss(m, batch)
    loss.backward()
    met = {k: (sum(v) / len(v) if isinstance(v, list) else float(v)) for k, v in trainer._metrics["train"].items()}

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "pairs.jsonl"), "w") as f:
        for e in examples:
            f.write(json.dumps({"prompt_ids": list(e["prompt_ids"]), "chosen_ids": list(e["chosen_ids"]), "rejected_ids": list(e["rejected_ids"])}) + "\n")
    keys = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"]
    out = {"loss": float(loss.detach()), "beta": a.beta, "pairs": len(examples), "dtype": a.dtype,
           "trl_metrics": {k: met.get(k) for k in keys}}
    grads = {}
    for name, p in m.named_parameters():
        if ".default." in name and p.grad is not None:
            grads[name.replace(".default.", ".")] = p.grad.detach().to(torch.float32).reshape(-1).contiguous()
    if not grads:
        sys.exit("trl_dpo_oracle: no LoRA gradients")
    save_file(grads, os.path.join(a.out, "trl_grads.safetensors"))
    import trl, peft, transformers
    out["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "trl": trl.__version__}
    out["n_grad_tensors"] = len(grads)
    with open(os.path.join(a.out, "trl.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
