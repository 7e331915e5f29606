#!/usr/bin/env python3
"""torch_forward.py -- the PyTorch peer of `npm run bench -- forward`.

Times the forward pass of one T-token sequence through the same model folder, with PyTorch eager
on the CPU in float32 (weights widened from their file dtype once, before timing), using the
reference implementation in test/reference/qwen2_ref.py (transformers' Qwen2 semantics).
Prints one JSON object: {"torch", "threads", "tokens", "seconds" (median), "runs"}.

  /usr/bin/python3 bench/peers/torch_forward.py --model DIR --tokens 64 --threads 2 --runs 3
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "reference"))

import torch  # noqa: E402

import qwen2_ref  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec, weights = qwen2_ref.load_model(args.model)
    weights = {k: v.to(torch.float32) for k, v in weights.items()}
    tokens = torch.tensor([(i * 7919) % spec.vocab for i in range(args.tokens)], dtype=torch.long)
    times = []
    with torch.no_grad():
        qwen2_ref.forward_sequence(spec, weights, tokens, dtype=torch.float32)  # warm-up
        for _ in range(args.runs):
            t0 = time.perf_counter()
            qwen2_ref.forward_sequence(spec, weights, tokens, dtype=torch.float32)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "tokens": args.tokens,
                      "seconds": statistics.median(times), "runs": times}))


if __name__ == "__main__":
    main()
