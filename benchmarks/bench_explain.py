"""Explanation speed: jets/s for each method on the IN and ParT (default parameters).

    .venv/bin/python benchmarks/bench_explain.py --in-bundle DIR --part-bundle DIR --data FILE
"""

import argparse
import time

import servable
from servable.explain import METHODS

parser = argparse.ArgumentParser()
parser.add_argument("--in-bundle", required=True)
parser.add_argument("--part-bundle", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--jets", type=int, default=300)
args = parser.parse_args()

jets = servable.read_jets(args.data)[: args.jets]
print(f"{len(jets)} jets per method; default parameters; rate = jets / wall time")
for label, path in (("IN", args.in_bundle), ("ParT", args.part_bundle)):
    model = servable.load(path)
    for name, method in METHODS.items():
        if model.kind not in method.applies_to:
            continue
        n = 2000 if name == "lrp" else len(jets)  # LRP is fast: time it on more jets
        sample = servable.read_jets(args.data)[:n] if n != len(jets) else jets
        if name == "lrp":
            model.explain(sample[:200], method=name)  # warm-up
        t0 = time.perf_counter()
        model.explain(sample, method=name)
        seconds = time.perf_counter() - t0
        print(f"{label:5s} {name:10s} {len(sample) / seconds:9.1f} jets/s  ({seconds:6.1f} s)")
