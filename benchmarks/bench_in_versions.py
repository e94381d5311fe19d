"""The IN's fast path now against the same file at an earlier commit: same weights, same jets,
same batches, timed alternately in one run (best of `--repeats`), at 1 and at 2 torch threads.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_in_versions.py --bundle DIR --data FILE \
        --before 20ad57a

`--before` is any git revision of this repository; its servable/models/interaction_network.py
is loaded beside the current one (it imports the rest of servable from this checkout). The
jets are shuffled once (seed 0), as a user's file would come, before cutting them into
batches.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import servable

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser()
parser.add_argument("--bundle", required=True, help="an IN bundle (e.g. the published one)")
parser.add_argument("--data", required=True)
parser.add_argument("--before", default="20ad57a", help="git revision of the baseline")
parser.add_argument("--batch-sizes", default="128,512,1024")
parser.add_argument("--threads", default="1,2")
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

source = subprocess.run(["git", "-C", str(ROOT), "show",
                         f"{args.before}:servable/models/interaction_network.py"],
                        capture_output=True, text=True, check=True).stdout
with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
    f.write(source)
spec = importlib.util.spec_from_file_location("in_before", f.name)
before_module = importlib.util.module_from_spec(spec)
sys.modules["in_before"] = before_module
spec.loader.exec_module(before_module)

bundle = servable.load(args.bundle)
net = bundle.tagger.net
now = net.core.eval()
cfg = {k: getattr(now, k) for k in ("hidden", "De", "Do", "n_classes")}
before = before_module.InteractionNetwork(n_track_features=now.P, n_tracks=now.N,
                                          n_vertex_features=now.S, n_vertices=now.Nv, **cfg)
before.load_state_dict(now.state_dict())
before.eval()
inputs = bundle.tagger.inputs(servable.read_jets(args.data))
order = torch.randperm(len(inputs["tracks"]), generator=torch.Generator().manual_seed(0))
tracks = torch.from_numpy(inputs["tracks"])[order]
vertices = torch.from_numpy(inputs["vertices"])[order]
n = len(tracks)
with torch.inference_mode():
    tracks, vertices = net.track_norm(tracks), net.vertex_norm(vertices)
    diff = (now(tracks, vertices) - before(tracks, vertices)).abs().max().item()
    print(f"{n} jets, {bundle.name}; before = {args.before}; max |logit now - before| "
          f"{diff:.2e}")
    print(f"{'threads':>7s} {'batch':>6s} {'before':>9s} {'now':>9s} {'now/before':>11s}")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            best = {"before": float("inf"), "now": float("inf")}
            for _ in range(args.repeats + 1):  # the first round warms up
                for name, model in (("before", before), ("now", now)):
                    t0 = time.perf_counter()
                    for i in range(0, n, bs):
                        model(tracks[i:i + bs], vertices[i:i + bs])
                    best[name] = min(best[name], time.perf_counter() - t0)
            rate = {k: n / v for k, v in best.items()}
            print(f"{threads:7d} {bs:6d} {rate['before']:9.0f} {rate['now']:9.0f} "
                  f"{rate['now'] / rate['before']:10.2f}x", flush=True)
