"""Generator throughput per core, and where the time goes (Pythia, FastJet, own feature code).

    .venv/bin/python benchmarks/bench_generator.py --jets 400
    .venv/bin/python benchmarks/bench_generator.py --jets 100 --pileup 20
"""

import argparse

from servable.data.generator import GeneratorSettings, generate

parser = argparse.ArgumentParser()
parser.add_argument("--jets", type=int, default=400, help="jets per class")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--pileup", type=float, default=0.0, help="mean pileup interactions")
args = parser.parse_args()

settings = GeneratorSettings(pileup_mu=args.pileup)
jets, prov = generate(args.jets, args.jets, seed=args.seed, workers=1, progress=False,
                      settings=settings)
sec = prov["cpu_seconds"]
total = sum(sec.values())
print(f"one worker (one core), MPI on, pileup {args.pileup:g}: {len(jets)} jets in "
      f"{prov['wall_seconds']:.1f} s wall = {prov['jets_per_second']:.1f} jets/s/core "
      f"({prov['events_generated']} events)")
for key, value in sec.items():
    print(f"  {key:9s} {value:7.2f} s  {100 * value / total:5.1f}%")
print(f"  own feature code per jet: {1000 * sec['features'] / len(jets):.2f} ms")
