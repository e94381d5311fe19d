"""The JetClass ladder: every model family trained on one generated JetClass-like sample, the
official ParticleNet checkpoints imported, all evaluated on an independent file.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/jetclass_ladder.py \\
        --train /work/data/jc-train.root --test /work/data/jc-test.root --out /work/data/ladder

Each rung is one `servable` command (printed, timed, logged in OUT/ladder.json with the machine
load); `--only` runs some rungs (two processes can share the work), `--table` only gathers the
finished rungs' evaluations into OUT/ladder.json and prints the markdown table of
docs/models.md. A rung whose bundle exists is evaluated, not retrained (`--force` retrains).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "jetclass-particlenet"

# rung name -> (what it is, the servable arguments that make its bundle in OUT/<name>)
RUNGS = {
    "bdt": ("BDT (multi:softprob on the 23 jet observables)",
            ["train", "--model", "bdt"]),
    "mlp": ("MLP (23 jet observables + 10 leading particles x 17 full features; 128, 64)",
            ["train", "--model", "mlp"]),
    "part-kin": ("ParT (kin features)", ["train", "--model", "part", "--feature-set", "kin"]),
    "part-full": ("ParT (full features)", ["train", "--model", "part", "--feature-set", "full"]),
    "pnet-full": ("ParticleNet trained here (full features)",
                  ["train", "--model", "particlenet", "--feature-set", "full"]),
    "pnet-official-kin": ("official ParticleNet kin (JetClass 100M, imported)",
                          ["bundle", "import-checkpoint", "ParticleNet_kin.pt"]),
    "pnet-official-kinpid": ("official ParticleNet kinpid (imported)",
                             ["bundle", "import-checkpoint", "ParticleNet_kinpid.pt"]),
    "pnet-official-full": ("official ParticleNet full (imported)",
                           ["bundle", "import-checkpoint", "ParticleNet_full.pt"]),
}
CLASSES = ("Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")


def servable(*args: str) -> list[str]:
    return [sys.executable, "-m", "servable", *args]


def command(name: str, args: argparse.Namespace) -> list[str]:
    """The command that makes the rung's bundle."""
    _, base = RUNGS[name]
    if base[0] == "bundle":
        return servable(*base[:2], str(args.fixtures / base[2]), "-o", str(args.out / name))
    return servable(*base, "--data", str(args.train), "--epochs", str(args.epochs),
                    "--seed", str(args.seed), "--quiet", "-o", str(args.out / name))


def timed(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_rung(name: str, args: argparse.Namespace) -> dict:
    out = args.out / name
    record = {"name": name, "model": RUNGS[name][0]}
    earlier = args.out / f"{name}.json"
    if earlier.exists():  # an existing bundle keeps the record of how it was made
        record.update({k: v for k, v in json.loads(earlier.read_text()).items()
                       if k.startswith("make_")})
    if args.force or not (out / "servable.yaml").exists():
        cmd = command(name, args)
        if args.force:
            cmd.append("--force")
        print("$", " ".join(cmd), flush=True)
        record["make_command"] = " ".join(cmd[2:])
        record["make_seconds"] = round(timed(cmd, args.out / f"{name}.log"), 1)
        record["make_load"] = load()
    while not args.test.exists():  # the test file may still be being generated
        time.sleep(10)
    cmd = servable("evaluate", str(out), "--data", str(args.test), "--json")
    start = time.perf_counter()
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    record["evaluate_command"] = " ".join(cmd[2:])
    record["evaluate_seconds"] = round(time.perf_counter() - start, 1)
    record["metrics"] = json.loads(result.stdout.strip().splitlines()[-1])
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1))
    print(f"{name}: {record.get('make_seconds', 'existing bundle')} s, "
          f"{record['metrics']}", flush=True)
    return record


def table(out: Path) -> str:
    """The markdown ladder of every finished rung, in RUNGS order."""
    records = [json.loads((out / f"{n}.json").read_text()) for n in RUNGS
               if (out / f"{n}.json").exists()]
    (out / "ladder.json").write_text(json.dumps(records, indent=1))
    if not records:
        return "no finished rungs"
    points = records[0]["metrics"].get("working_point", {})
    head = [f"{c} ({points[c]:.1%})" if c in points else c for c in CLASSES]
    lines = ["| model | accuracy | macro AUC | " + " | ".join(head) + " | time |",
             "| --- " * (len(CLASSES) + 4) + "|"]
    for r in records:
        m = r["metrics"]
        rej = m.get("rejection", {})
        cells = ["inf" if rej.get(c) is None else f"{rej[c]:.0f}" for c in CLASSES]
        made = f"{r['make_seconds']:.0f} s" if "make_seconds" in r else ""
        lines.append(f"| {RUNGS[r['name']][0]} | {m['accuracy']:.3f} | {m['macro_auc']:.4f} | "
                     + " | ".join(cells) + f" | {made} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path("/work/data/jc-train.root"))
    parser.add_argument("--test", type=Path, default=Path("/work/data/jc-test.root"))
    parser.add_argument("--out", type=Path, default=Path("/work/data/ladder"))
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default=",".join(RUNGS), help="comma-separated rungs")
    parser.add_argument("--table", action="store_true", help="only gather and print the table")
    parser.add_argument("--force", action="store_true", help="remake existing bundles")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.table:
        for name in args.only.split(","):
            if name not in RUNGS:
                parser.error(f"unknown rung {name!r}; choose from {', '.join(RUNGS)}")
            run_rung(name, args)
    print(table(args.out))


if __name__ == "__main__":
    main()
