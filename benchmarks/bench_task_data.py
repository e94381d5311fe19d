"""Task data as JSON (servable's pickle-free tasks) against dill + base64 (the SDK's default).

    .venv/bin/python benchmarks/bench_task_data.py --data FILE [--jets 1000]

One predict task's arguments (the first JETS jets of FILE in compact form): serialized size
and the time to serialize and to deserialize, each averaged over 5 repetitions.
"""

from __future__ import annotations

import argparse
import time

from globus_compute_sdk.serialize import AllCodeStrategies, ComputeSerializer

from servable import read_jets
from servable.remote.encoding import compact_arrays, jets_to_arrays
from servable.remote.endpoints import serializer
from servable.remote.jsondata import from_json_safe, to_json_safe


def _mean_s(fn, repeats: int = 5) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    """Print one line per format: bytes, serialize and deserialize seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--jets", type=int, default=1000)
    args = parser.parse_args()
    arrays = compact_arrays(jets_to_arrays(read_jets(args.data)[:args.jets]))
    task = ("bundle", arrays, "auto", None)
    dill = ComputeSerializer(strategy_code=AllCodeStrategies())
    json_serde = serializer()
    formats = {
        "dill+base64": (lambda: dill.serialize(task), dill.deserialize),
        "JSON": (lambda: json_serde.serialize(to_json_safe(task)),
                 lambda blob: from_json_safe(json_serde.deserialize(blob))),
    }
    for name, (dump, load) in formats.items():
        blob = dump()
        print(f"{name:12s} {len(blob):>10,d} bytes  serialize {_mean_s(dump):.4f} s  "
              f"deserialize {_mean_s(lambda b=blob, f=load: f(b)):.4f} s")


if __name__ == "__main__":
    main()
