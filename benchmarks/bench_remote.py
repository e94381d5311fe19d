"""Remote prediction through the local endpoint engines vs in-process prediction.

    .venv/bin/python benchmarks/bench_remote.py --bundle DIR --data FILE [--copies 10]

The jets of FILE are repeated `--copies` times; the same run measures the in-process
baseline (`servable.load(...).predict`) and the Client over ProcessPoolEngine (2 workers) and
GlobusComputeEngine (Parsl HTEX, 2 workers), each timed on its second pass (the first starts
and warms the workers), and prints jets/s, tasks, largest task payload and the ratio to the
baseline.
"""

import argparse
import time

import numpy as np

import servable
from servable.data.jets import Jets
from servable.remote import Client


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
            print(f"remote local/{engine:7s}  {rate:9.0f} jets/s  {rate / baseline:5.2f}x  "
                  f"{client.tasks_sent} tasks, largest payload "
                  f"{client.largest_payload / 1e6:.1f} MB, max |dp| {diff:.1e}")


if __name__ == "__main__":
    main()
