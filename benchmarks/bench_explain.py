"""Explanation speed: jets/s for each method on the IN and ParT (default parameters), before
and after the speed-ups of issue 20 in one run (before: `explain_baseline.py`, the method
bodies as they were).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_explain.py --in-bundle DIR \\
        --part-bundle DIR --data FILE
"""

import argparse
import os
import sys
import time
from pathlib import Path

import torch

import servable
from servable.explain import METHODS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explain_baseline import BASELINES  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--in-bundle", required=True)
parser.add_argument("--part-bundle", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--jets", type=int, default=300, help="jets per method (masking, lime, ...)")
parser.add_argument("--gradient-jets", type=int, default=100,
                    help="jets for IG and SHAP (the baselines are slow)")
parser.add_argument("--lrp-jets", type=int, default=2000)
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()
torch.set_num_threads(args.threads)

all_jets = servable.read_jets(args.data)
sizes = {"lrp": args.lrp_jets, "ig": args.gradient_jets, "shap": args.gradient_jets}


def rates(runs, jets, budget_s: float = 20.0, repeats: int = 3) -> list[float]:
    """Jets/s of each run: the best of up to `repeats` alternating rounds (the machine is
    shared: the best round is the least disturbed), fewer once `budget_s` is spent."""
    for run in runs:
        run(jets[:8])  # warm-up: imports, first allocations
    best, start = [0.0] * len(runs), time.perf_counter()
    for _ in range(repeats):
        for i, run in enumerate(runs):
            t0 = time.perf_counter()
            run(jets)
            best[i] = max(best[i], len(jets) / (time.perf_counter() - t0))
        if time.perf_counter() - start > budget_s:
            break
    return best


print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
      f"{os.environ.get('OMP_NUM_THREADS')}, load average {os.getloadavg()[0]:.2f} "
      "(1 min) at start; default parameters; rate = jets / wall time, best of up to 3 "
      "alternating rounds")
print("| model | method | jets | before (jets/s) | after (jets/s) | after / before |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for label, path in (("IN", args.in_bundle), ("ParT", args.part_bundle)):
    model = servable.load(path)
    for name, cls in METHODS.items():
        if model.kind not in cls.applies_to:
            continue
        jets = all_jets[: sizes.get(name, args.jets)]
        method = cls(model)
        runs = [lambda j, m=method: m.attribute(j)]
        if name in BASELINES:
            runs.append(lambda j, m=method, f=BASELINES[name]: f(m, j))
        after, *old = rates(runs, jets)
        before, ratio = (f"{old[0]:.1f}", f"{after / old[0]:.1f}x") if old else \
            ("-", "- (code unchanged)")
        if model.kind == "part" and name == "lime":
            ratio = "- (predicts in sorted ParT batches now)"
        print(f"| {label} | {name} | {len(jets)} | {before} | {after:.1f} | {ratio} |",
              flush=True)
print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
