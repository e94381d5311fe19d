"""One summary over target classes from several `servable xai-benchmark --target A,B,...`
runs on the same jets and classes (run side by side, one per core, or with different method
sets): the per-class results of every run joined by model, written as OUT/summary.json,
report.md and report.html (`servable.study.xai_report.write_class_summary`), and each run's
per-class report again in OUT/<run folder name>/<class>/. The verdicts are recomputed from
the stored measurements by this code (`verdicts.verdicts`), so that runs made by earlier
code are read by today's rules; what they measured is unchanged.

    PYTHONPATH=. .venv/bin/python benchmarks/merge_class_runs.py RUN1 RUN2 ... -o OUT \\
        [--rename RUN2:part=part-kin]

Each RUN is an output folder of a multi-class run (its summary.json and <class>/results.json).
A model label met in two runs must be renamed in one of them (`--rename RUN:OLD=NEW`): the
merge refuses to let one model hide another. The runs must have explained the same classes on
the same jets (their `n_jets` and class lists are checked).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def merge(runs: list[Path], renames: dict[tuple[str, str], str], out: Path | None = None,
          force: bool = False) -> tuple[dict, str, float]:
    """Per class, the models of every run (renamed where asked, verdicts recomputed); the
    joined command and the summed wall time. With `out`, each run's per-class results and
    report are written again in out/<run name>/<class>/."""
    from servable.study.xai import verdicts as V
    from servable.study.xai_report import write_benchmark

    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    classes = summaries[0]["classes"]
    per_class: dict[str, dict] = {c: {"models": {}} for c in classes}
    n_jets = None
    for run, summary in zip(runs, summaries, strict=True):
        if summary["classes"] != classes:
            sys.exit(f"{run}: explains {summary['classes']}, not {classes}")
        for c in classes:
            results = json.loads((run / c / "results.json").read_text())
            if n_jets is not None and results["n_jets"] != n_jets:
                sys.exit(f"{run}/{c}: {results['n_jets']} jets, the others {n_jets}")
            n_jets = results["n_jets"]
            for model in results["models"].values():
                model["verdicts"] = V.verdicts(model)
            results["models"] = {renames.get((str(run), label), label): model
                                 for label, model in results["models"].items()}
            for label, model in results["models"].items():
                if label in per_class[c]["models"]:
                    sys.exit(f"{run}: model {label} is in another run too: rename it with "
                             f"--rename {run}:{label}=NEW")
                per_class[c]["models"][label] = model
            if out is not None:
                write_benchmark(results, out / run.name / c, force)
    command = " ; ".join(s["command"] for s in summaries)
    return per_class, command, sum(s["seconds"] for s in summaries)


def main() -> None:
    from servable.study.xai_report import write_class_summary

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--rename", action="append", default=[],
                        help="RUN:OLD=NEW, a model label of one run renamed")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    renames = {}
    for r in args.rename:
        run, _, pair = r.rpartition(":")
        old, _, new = pair.partition("=")
        if not (run and old and new):
            sys.exit(f"--rename {r}: expected RUN:OLD=NEW")
        renames[(str(Path(run)), old)] = new
    per_class, command, seconds = merge([Path(r) for r in args.runs], renames, args.output,
                                        args.force)
    for path in write_class_summary(per_class, args.output, command, seconds, args.force):
        print(path)


if __name__ == "__main__":
    main()
