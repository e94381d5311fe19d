"""Generator throughput per core, and where the time goes (Pythia, FastJet, own feature code).

    .venv/bin/python benchmarks/bench_generator.py --jets 400
"""

import argparse

from servable.data.generator import generate

parser = argparse.ArgumentParser()
parser.add_argument("--jets", type=int, default=400, help="jets per class")
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

for mpi in (True,):
    jets, prov = generate(args.jets, args.jets, seed=args.seed, workers=1, progress=False)
    sec = prov["cpu_seconds"]
    total = sum(sec.values())
    print(f"one worker (one core), MPI {'on' if mpi else 'off'}: {len(jets)} jets in "
          f"{prov['wall_seconds']:.1f} s wall = {prov['jets_per_second']:.1f} jets/s/core "
          f"({prov['events_generated']} events)")
    for key, value in sec.items():
        print(f"  {key:9s} {value:7.2f} s  {100 * value / total:5.1f}%")
    print(f"  own feature code per jet: {1000 * sec['features'] / len(jets):.2f} ms")
