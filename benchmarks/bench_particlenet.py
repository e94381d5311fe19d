"""ParticleNet inference jets/s: PyTorch Geometric (messages along real particles only) against
the plain dense PyTorch formulation (every slot gathers its neighbours, upstream style), same
official weights, same jets, one run each, after one warm-up batch.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_particlenet.py --threads 2 --copies 8

The jets are the 256 oracle jets of ../shared/fixtures/jetclass-particlenet (already
standardised), repeated `--copies` times; both models trim each batch to its fullest jet.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from servable.models.particlenet import DenseParticleNet, ParticleNet, from_upstream

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "jetclass-particlenet"

parser = argparse.ArgumentParser()
parser.add_argument("--feature-set", default="full", choices=["kin", "kinpid", "full"])
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--copies", type=int, default=8, help="repeat the 256 jets this often")
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--fixtures", type=Path, default=FIXTURES)
args = parser.parse_args()

torch.set_num_threads(args.threads)
ref = np.load(args.fixtures / f"ParticleNet_{args.feature_set}_reference.npz")
state = from_upstream(torch.load(args.fixtures / f"ParticleNet_{args.feature_set}.pt",
                                 weights_only=True, map_location="cpu"))
inputs = [torch.from_numpy(np.concatenate([ref[k]] * args.copies))
          for k in ("points", "features", "mask")]
n = len(inputs[0])
print(f"{n} jets ({args.copies} x 256 oracle jets, mean {ref['n_particles'].mean():.1f} "
      f"particles of 128 slots), batch {args.batch_size}, {args.threads} threads, "
      f"feature set {args.feature_set}")
results = {}
for cls in (ParticleNet, DenseParticleNet):
    net = cls(inputs[1].shape[1], 10)
    net.load_state_dict(state)
    net.eval()
    with torch.inference_mode():
        net(*(t[:args.batch_size] for t in inputs))  # warm-up
        t0 = time.perf_counter()
        out = [net(*(t[s:s + args.batch_size] for t in inputs))
               for s in range(0, n, args.batch_size)]
        seconds = time.perf_counter() - t0
    results[cls.__name__] = (seconds, torch.cat(out).numpy())
    print(f"  {cls.__name__:17s} {n / seconds:8.1f} jets/s ({seconds:.2f} s)")
(g_s, g), (d_s, d) = results["ParticleNet"], results["DenseParticleNet"]
print(f"  PyG / dense speed-up: {d_s / g_s:.2f}x; max |logit difference| {np.abs(g - d).max():.2g}")
