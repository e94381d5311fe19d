"""What transfers to the graph network (issue 32, item 3): every explanation method on
ParticleNet and ParT, on the same jets, IG completeness against path steps (ParticleNet with
its kNN graph rebuilt, as the model computes, and frozen at the input's graph), and the graph
changes along the IG path. Writes OUT/results.json and OUT/report.md (generated from it).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/jetclass_gnn_transfer.py \\
        --model pnet-official-full=/work/data/ladder/pnet-official-full \\
        --model pnet-full=/work/data/ladder/pnet-full \\
        --model part-full=/work/data/ladder/part-full \\
        --data /work/data/jc-test.root --out docs/results/jetclass-gnn-transfer

The jets: the first `--per-class` jets of each class of the file. A model already in
OUT/results.json with the same jets, target and steps is replaced, others kept, so models can
be measured in separate runs; `--render` only rewrites report.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import servable
from servable.study import gnn_transfer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=BUNDLE, repeat")
    parser.add_argument("--data", type=Path, default=Path("/work/data/jc-test.root"))
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--target", default="Hbb")
    parser.add_argument("--out", type=Path, default=Path("docs/results/jetclass-gnn-transfer"))
    parser.add_argument("--render", action="store_true", help="only rewrite report.md")
    parser.add_argument("--removal-only", action="store_true",
                        help="only (re)measure the particle-removal check of measured models")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else None
    if not args.render:
        jets = servable.read_jets(args.data)
        idx = np.concatenate([np.flatnonzero(jets.class_index == c)[: args.per_class]
                              for c in range(len(jets.class_names))])
        jets = jets[idx]
        target = jets.class_names.index(args.target)
        head = gnn_transfer.header(jets, target)
        head["data"] = f"{args.data.name}, first {args.per_class} jets of each class"
        if results is None or any(results[k] != head[k] for k in ("n_jets", "target",
                                                                  "ig_steps", "data")):
            results = head
        for spec in args.model:
            name, bundle = spec.split("=", 1)
            print(f"{name}: measuring", flush=True)
            if args.removal_only:
                t0 = time.perf_counter()
                results["models"][name]["removal"] = gnn_transfer.removal(
                    servable.load(bundle), jets, target)
                results["models"][name]["removal_seconds"] = round(time.perf_counter() - t0, 1)
                path.write_text(json.dumps(results, indent=1))
                continue
            entry = gnn_transfer.measure_model(servable.load(bundle), jets, target)
            entry["load"] = subprocess.run(["uptime"], capture_output=True,
                                           text=True).stdout.strip()
            entry["date"] = time.strftime("%Y-%m-%d")
            entry["path"] = bundle
            results["models"][name] = entry
            results["models"] = dict(sorted(results["models"].items()))
            path.write_text(json.dumps(results, indent=1))
            print(f"{name}: {entry['seconds']} s", flush=True)
    command = ("PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python "
               "benchmarks/jetclass_gnn_transfer.py "
               + " ".join(f"--model {n}={m['path']}" for n, m in results["models"].items())
               + f" --data {args.data} --out {args.out}")
    (args.out / "report.md").write_text(gnn_transfer.render(results, command) + "\n")


if __name__ == "__main__":
    main()
