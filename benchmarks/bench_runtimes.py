"""PyTorch (fast exact path) vs ONNX Runtime vs OpenVINO on the same jets, float32 and the
opt-in bf16, timed interleaved (one call of each per round, rounds repeated, best of N) so a
loaded machine slows every variant alike; the load average is printed with every row.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_runtimes.py \
        --bundle DIR --data FILE --n-jets 4096 --batch-sizes 128,512,1024 --rounds 5

Rates are jets/s through `Bundle.logits` (the path `servable predict` takes: input selection,
multiplicity buckets, batching); ratios are against torch float32 in the same round.
"""

import argparse
import os
import time

import torch

from servable import load
from servable.data.io import read_jets
from servable.models.precision import cpu_has_bf16

parser = argparse.ArgumentParser()
parser.add_argument("--bundle", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--n-jets", type=int, default=4096)
parser.add_argument("--batch-sizes", default="128,512,1024")
parser.add_argument("--rounds", type=int, default=5)
args = parser.parse_args()

bundle = load(args.bundle)
jets = read_jets(args.data, 0, args.n_jets)
variants = [("torch", "f32"), ("onnx", "f32"), ("openvino", "f32")]
if cpu_has_bf16():
    variants += [("torch", "bf16"), ("openvino", "bf16")]
print(f"{bundle.name}: {len(jets)} jets, torch threads {torch.get_num_threads()}, "
      f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
for bs in (int(b) for b in args.batch_sizes.split(",")):
    best = {v: float("inf") for v in variants}
    for v in variants:  # warm-up: sessions, compiled models, allocations
        bundle.logits(jets[:bs], v[0], bs, v[1])
    for _ in range(args.rounds):
        for v in variants:
            t0 = time.perf_counter()
            bundle.logits(jets, v[0], bs, v[1])
            best[v] = min(best[v], time.perf_counter() - t0)
    ref = best[("torch", "f32")]
    cells = ", ".join(f"{n}-{p} {len(jets) / t:.0f}/s ({ref / t:.2f}x)"
                      for (n, p), t in best.items())
    print(f"batch {bs}: {cells}; load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
