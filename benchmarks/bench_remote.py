"""Remote prediction through the local endpoint engines vs in-process prediction.

    .venv/bin/python benchmarks/bench_remote.py --bundle DIR --data FILE [--copies 10] [--threads N]

The jets of FILE are repeated `--copies` times; the same run measures the in-process
baseline (`servable.load(...).predict`, before and after the remote lines) and the Client
over ProcessPoolEngine (2 workers) and GlobusComputeEngine (Parsl HTEX, 2 workers), each
timed after a pass that starts and warms the workers, and prints jets/s, tasks, largest task
payload and the ratio to the first baseline. Each engine runs twice: `padded` sends the
padded arrays as the client did before the compact encoding (the baseline, kept here only),
`compact` is the client as it is. The first lines give the serialized payload per jet of both
forms. The `user script` line is the ProcessPoolEngine case run from a script that starts
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
from servable.remote import client as client_module
from servable.remote.client import serializer
from servable.remote.encoding import compact_arrays

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


def timed_predict(client: Client, bundle: str, jets: Jets, form: str) -> tuple[float, dict]:
    """Jets/s of one `client.predict` of `jets`, sent `compact` (as the client does) or
    `padded` (as it did before: the baseline), and its result."""
    if form == "padded":
        client_module.compact_arrays = dict  # the arrays as they are
    try:
        client.tasks_sent = client.largest_payload = 0
        t0 = time.perf_counter()
        result = client.predict(bundle, jets).result()
        return len(jets) / (time.perf_counter() - t0), result
    finally:
        client_module.compact_arrays = compact_arrays


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the in-process baseline (default: torch's "
                             "own, the cores); on a loaded machine 1 does not spin-wait")
    args = parser.parse_args()

    base = servable.read_jets(args.data)
    jets = Jets.concatenate([base] * args.copies)
    n = len(jets.tracks)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = servable.load(args.bundle)
    model.predict(jets[:500])
    t0 = time.perf_counter()
    local = model.predict(jets)
    baseline = n / (time.perf_counter() - t0)
    print(f"{n} jets ({(jets.tracks.nbytes + jets.vertices.nbytes) / 1e6:.0f} MB of arrays)")
    arrays = {k: getattr(jets, k) for k in ("tracks", "vertices", "jet_features")}
    serde = serializer()
    padded_bytes = len(serde.serialize(arrays)) / n
    compact_bytes = len(serde.serialize(compact_arrays(arrays))) / n
    print(f"payload per jet: padded {padded_bytes:.0f} B, compact {compact_bytes:.0f} B "
          f"({padded_bytes / compact_bytes:.2f}x smaller)")
    print(f"in-process predict             {baseline:9.0f} jets/s  (baseline)")
    for engine in ("process", "parsl"):
        with Client("local", engine=engine, workers=2) as client:
            client.predict(args.bundle, jets).result()  # start and warm every worker
            for form in ("padded", "compact"):
                rate, result = timed_predict(client, args.bundle, jets, form)
                diff = float(np.abs(result["probabilities"] - local).max())
                threads = sorted({w["torch_threads"] for w in result["workers"]})
                print(f"remote local/{engine:7s} {form:7s} {rate:9.0f} jets/s  "
                      f"{rate / baseline:5.2f}x  {client.tasks_sent} tasks, largest payload "
                      f"{client.largest_payload / 1e6:.1f} MB, max |dp| {diff:.1e}, "
                      f"worker torch threads {threads}")
    t0 = time.perf_counter()
    model.predict(jets)
    again = n / (time.perf_counter() - t0)
    print(f"in-process predict, again      {again:9.0f} jets/s  {again / baseline:5.2f}x")
    user = user_script(args.bundle, args.data, args.copies)
    print(f"user script, process, compact  {user['rate']:9.0f} jets/s  "
          f"{user['rate'] / baseline:5.2f}x  "
          f"{user['tasks']} tasks, worker torch threads {user['threads']} (import torch first)")


if __name__ == "__main__":
    main()
