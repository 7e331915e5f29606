#!/usr/bin/env python3
"""torch_train.py -- the PyTorch peer of `npm run bench -- train`.

One LoRA-GRPO training step = the GRPO loss (TRL semantics) and its gradients with autograd + a
torch.optim.AdamW step, on the same model folder, with the LoRA model of
test/reference/grpo_ref.py in float32 (PEFT-style unmerged LoRA on the chosen projections).
With --full: one full-parameter SFT step instead (every weight a float32 parameter, the batch's
mean NLL, AdamW over all of them, decay on matrices only), as `sft --full` does.
Timed over --runs steps after one warm-up; prints one JSON object with the median seconds,
tokens per step and peak RSS of this process.

  /usr/bin/python3 bench/peers/torch_train.py --model DIR --batch B.json --rank 64 --alpha 64 --threads 2 --runs 2
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "reference"))

import torch  # noqa: E402

import grpo_ref  # noqa: E402
import qwen2_ref  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="full-parameter SFT step instead of LoRA-GRPO")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec, weights = qwen2_ref.load_model(args.model)
    w = grpo_ref.weights_in(weights, torch.float32)
    with open(args.batch) as f:
        batch = grpo_ref.parse_batch(json.load(f), spec.vocab)
    if args.full:
        for t in w.values():
            t.requires_grad_(True)
        params = list(w.values())
        groups = [{"params": [p for p in params if p.dim() == 2], "weight_decay": 0.1},
                  {"params": [p for p in params if p.dim() != 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=5e-6, betas=(0.9, 0.99))
        trainable = None
    else:
        adapter = grpo_ref.init_adapter(spec, args.rank, args.alpha, False, list(grpo_ref.ALL_TARGETS), 1, 0.0)
        trainable = adapter.to(torch.float32, requires_grad=True)
        params = list(trainable.peft_tensors().values())
        opt = torch.optim.AdamW(params, lr=5e-6, betas=(0.9, 0.99), weight_decay=0.1)
    tokens = sum(len(p) + len(c) for p, c in zip(batch.prompts, batch.completions))

    def step() -> float:
        t0 = time.perf_counter()
        logps = grpo_ref.sequence_logps(lambda t: grpo_ref.lora_forward_sequence(spec, w, trainable, t, torch.float32), batch)
        if args.full:
            result = grpo_ref.sft_loss(logps, torch.float32)
        else:
            result = grpo_ref.grpo_loss(logps, batch, None, torch.float32)
        opt.zero_grad()
        result.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        opt.step()
        return time.perf_counter() - t0

    step()  # warm-up
    times = [step() for _ in range(args.runs)]
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "seconds": statistics.median(times),
                      "runs": times, "tokens": tokens,
                      "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
