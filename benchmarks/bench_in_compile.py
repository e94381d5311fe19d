"""Does torch.compile fuse the IN's forward into something faster? The fast exact path
(`_forward_explicit`, eager) against the same function compiled by Inductor with dynamic
shapes (one compile for every multiplicity bucket), on the same jets, batches and buckets,
timed interleaved (best of `--rounds`); prints the compile time, the largest relative
difference and the load average.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_in_compile.py \
        --bundle DIR --data FILE --batch-size 512 [--freezing]

`--freezing` turns on Inductor's freezing (weights as constants, prepacked for oneDNN).
"""

import argparse
import os
import time

import torch

from servable import load
from servable.data.io import read_jets
from servable.data.jets import filled_slots
from servable.models.batching import bucket_chunks

parser = argparse.ArgumentParser()
parser.add_argument("--bundle", required=True, help="an IN bundle")
parser.add_argument("--data", required=True)
parser.add_argument("--n-jets", type=int, default=None)
parser.add_argument("--batch-size", type=int, default=512)
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--freezing", action="store_true")
args = parser.parse_args()
if args.freezing:
    import torch._inductor.config

    torch._inductor.config.freezing = True

bundle = load(args.bundle)
net = bundle.tagger.net
inputs = bundle.inputs(read_jets(args.data, 0, args.n_jets))
chunks = [(torch.from_numpy(idx), k) for idx, k in bucket_chunks(filled_slots(inputs["tracks"]))]
with torch.inference_mode():
    tracks = net.track_norm(torch.from_numpy(inputs["tracks"]))
    vertices = net.vertex_norm(torch.from_numpy(inputs["vertices"]))
    eager = net.core._forward_explicit
    compiled = torch.compile(eager, dynamic=True)

    def run(forward):
        out = torch.empty(len(tracks), net.core.n_classes)
        for idx, k in chunks:
            for i in range(0, len(idx), args.batch_size):
                j = idx[i:i + args.batch_size]
                out[j] = forward(tracks[j], vertices[j], k)
        return out

    reference = run(eager)
    t0 = time.perf_counter()
    got = run(compiled)
    print(f"compile and first pass: {time.perf_counter() - t0:.1f} s; max relative difference "
          f"{float((got - reference).abs().max() / reference.abs().max()):.1e}")
    best = {"eager": float("inf"), "compiled": float("inf")}
    for _ in range(args.rounds):
        for name, forward in (("eager", eager), ("compiled", compiled)):
            t0 = time.perf_counter()
            run(forward)
            best[name] = min(best[name], time.perf_counter() - t0)
print(f"{len(tracks)} jets, batch {args.batch_size}: eager {len(tracks) / best['eager']:.0f}/s, "
      f"compiled {len(tracks) / best['compiled']:.0f}/s, compiled/eager "
      f"{best['eager'] / best['compiled']:.2f}x; load "
      f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
