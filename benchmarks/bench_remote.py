"""Remote prediction through the local endpoint engines vs in-process prediction.

    .venv/bin/python benchmarks/bench_remote.py --bundle DIR --data FILE [--copies 10]

The jets of FILE are repeated `--copies` times; the same run measures the in-process
baseline (`servable.load(...).predict`) and the Client over ProcessPoolEngine (2 workers) and
GlobusComputeEngine (Parsl HTEX, 2 workers), each timed on its second pass (the first starts
and warms the workers), and prints jets/s, tasks, largest task payload and the ratio to the
baseline. The `user script` line is the ProcessPoolEngine case run from a script that starts
with `import torch`, as most PyTorch users' scripts do (its spawned workers import torch
before any code of ours runs), as a program of its own.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import servable
from servable.data.jets import Jets
from servable.remote import Client

USER_SCRIPT = """import torch  # first, as most PyTorch users' scripts start

import json
import sys
import time

import servable
from servable.data.jets import Jets
from servable.remote import Client

if __name__ == "__main__":
    bundle, data, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    jets = Jets.concatenate([servable.read_jets(data)] * copies)
    with Client("local", engine="process", workers=2) as client:
        client.predict(bundle, jets).result()  # start and warm every worker
        client.tasks_sent = 0
        t0 = time.perf_counter()
        result = client.predict(bundle, jets).result()
        seconds = time.perf_counter() - t0
    print(json.dumps({"rate": len(jets.tracks) / seconds, "tasks": client.tasks_sent,
                      "threads": sorted({w["torch_threads"] for w in result["workers"]})}))
"""


def user_script(bundle: str, data: str, copies: int) -> dict:
    """Run USER_SCRIPT as a program of its own (its own __main__); what it printed."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "user_script.py"
        script.write_text(USER_SCRIPT)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
        out = subprocess.run([sys.executable, str(script), bundle, data, str(copies)],
                             capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()

    base = servable.read_jets(args.data)
    jets = Jets.concatenate([base] * args.copies)
    n = len(jets.tracks)
    model = servable.load(args.bundle)
    model.predict(jets[:500])
    t0 = time.perf_counter()
    local = model.predict(jets)
    baseline = n / (time.perf_counter() - t0)
    print(f"{n} jets ({(jets.tracks.nbytes + jets.vertices.nbytes) / 1e6:.0f} MB of arrays)")
    print(f"in-process predict      {baseline:9.0f} jets/s  (baseline)")
    for engine in ("process", "parsl"):
        with Client("local", engine=engine, workers=2) as client:
            client.predict(args.bundle, jets).result()  # start and warm every worker
            client.tasks_sent = 0
            t0 = time.perf_counter()
            result = client.predict(args.bundle, jets).result()
            rate = n / (time.perf_counter() - t0)
            diff = float(np.abs(result["probabilities"] - local).max())
            threads = sorted({w["torch_threads"] for w in result["workers"]})
            print(f"remote local/{engine:7s}  {rate:9.0f} jets/s  {rate / baseline:5.2f}x  "
                  f"{client.tasks_sent} tasks, largest payload "
                  f"{client.largest_payload / 1e6:.1f} MB, max |dp| {diff:.1e}, "
                  f"worker torch threads {threads}")
    user = user_script(args.bundle, args.data, args.copies)
    print(f"user script, process    {user['rate']:9.0f} jets/s  {user['rate'] / baseline:5.2f}x  "
          f"{user['tasks']} tasks, worker torch threads {user['threads']} (import torch first)")


if __name__ == "__main__":
    main()
