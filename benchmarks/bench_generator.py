"""Generator throughput per core, and where the time goes (Pythia, FastJet, own code).

    .venv/bin/python benchmarks/bench_generator.py --jets 400
    .venv/bin/python benchmarks/bench_generator.py --jets 100 --pileup 20
    .venv/bin/python benchmarks/bench_generator.py --dataset jetclass --jets 200

One worker (one core). For JetClass, per class: jets per second of wall time and per CPU
second of the process (the second is what a shared machine disturbs least), and the shares
of Pythia (nextBatch), FastJet (clustering, soft drop, kT axes) and servable's own code
(`tables`: Pythia's batches into flat tables; `features`: detector model, matching, truth,
particle arrays).
"""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", choices=("cms", "jetclass"), default="cms")
parser.add_argument("--jets", type=int, default=400, help="jets per class")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--pileup", type=float, default=0.0, help="mean pileup interactions (cms)")
parser.add_argument("--classes", default=None, help="comma-separated JetClass classes")
args = parser.parse_args()


def shares(seconds: dict) -> str:
    total = sum(seconds.values())
    return "  ".join(f"{k} {100 * v / total:5.1f}%" for k, v in seconds.items())


if args.dataset == "cms":
    from servable.data.generator import GeneratorSettings, generate

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
else:
    from servable.data.jetclass_generator import CLASSES, generate

    classes = CLASSES if args.classes is None else tuple(args.classes.split(","))
    jets, prov = generate(classes, args.jets, seed=args.seed, workers=1, progress=False)
    print(f"one worker (one core), load average {os.getloadavg()[0]:.1f}: {len(jets)} jets "
          f"in {prov['wall_seconds']:.1f} s wall")
    print(f"{'class':6s} {'events':>6s} {'jets/s':>7s} {'jets/cpu-s':>10s}   time shares")
    for name, row in prov["per_class"].items():
        print(f"{name:6s} {row['events']:6d} {row['jets_per_second_per_core']:7.1f} "
              f"{row['jets_per_cpu_second']:10.1f}   {shares(row['cpu_seconds'])}")
    sec = prov["cpu_seconds"]
    print(f"all    {sum(r['events'] for r in prov['per_class'].values()):6d} "
          f"{len(jets) / sum(r['seconds'] for r in prov['per_class'].values()):7.1f} "
          f"{len(jets) / sum(r['process_cpu_seconds'] for r in prov['per_class'].values()):10.1f}"
          f"   {shares(sec)}")
    own = sec["tables"] + sec["features"]
    print(f"  own code (tables + features): {100 * own / sum(sec.values()):.1f}%, "
          f"{1000 * own / len(jets):.2f} ms per jet")
