"""The per-model findings of docs/guidelines.md, generated from a benchmark's results.json:
the decision table and, per model, which method passes, fails or is inconclusive on each
criterion, with value and interval. Nothing here is written by hand, so the text cannot
contradict the numbers."""

from __future__ import annotations

import re
from pathlib import Path

from servable.errors import ServableError
from servable.study.report import table
from servable.study.xai import verdicts as V

BEGIN = "<!-- findings: generated from results.json by servable.study.xai.findings; " \
    "do not edit -->"
END = "<!-- end of generated findings -->"


def decision_table(results: dict) -> str:
    """Question x model: the method that passes the question's criterion, with its value and
    interval, or none qualifies with the best value seen."""
    models = results["models"]
    questions = list(V.QUESTIONS)
    return table(["question", *models],
                 [[q, *[V.cell_text(m["verdicts"]["use"][q]) if q in m["verdicts"]["use"]
                        else "n/a" for m in models.values()]] for q in questions])


def _listing(per_method: dict, criterion: str) -> dict[str, list[str]]:
    out = {V.PASSES: [], V.FAILS: [], V.INCONCLUSIVE: []}
    for m, v in per_method.items():
        d = v.get(criterion)
        if d is not None:
            out[d["status"]].append(f"{m} {V.verdict_text(d).split(' ', 1)[1]}")
    return out


def model_findings(label: str, model: dict) -> list[str]:
    """Per criterion, which methods pass, fail and are inconclusive on one model."""
    per_method = model["verdicts"]["per_method"]
    lines = [f"**{label}** ({model['kind']}, {model['stability']['n_seeds']} training "
             "seeds):", ""]
    for criterion, name in V.CRITERIA.items():
        listing = _listing(per_method, criterion)
        if not any(listing.values()):
            continue
        parts = [f"{status}: {'; '.join(ms)}" for status, ms in listing.items() if ms]
        lines.append(f"- {name}: " + " | ".join(parts))
    best = model["physics"].get("best_baseline")
    if best is not None:
        lines.append(f"- best model-free score of the decay tracks: {best['name']} "
                     f"(pooled AUC {best['value']:.3f})")
    return [*lines, ""]


def findings(results: dict) -> str:
    """The generated block: the run it comes from, the decision table, per-model findings."""
    s = results["settings"]
    lines = [f"From `{results.get('command', 'servable xai-benchmark')}` ({results['n_jets']} "
             f"jets, target {results['target']}, {s['bootstraps']} bootstrap resamples, "
             f"{s['random_orders']} random orders). A method is named only where its 95% "
             "interval clears the criterion; an interval across the threshold reads "
             "inconclusive.", "", decision_table(results), ""]
    for label, model in results["models"].items():
        lines += model_findings(label, model)
    return "\n".join(lines).rstrip() + "\n"


def update(text: str, results: dict) -> str:
    """`text` (docs/guidelines.md) with its generated block replaced by `findings(results)`.

    Raises
    ------
    ServableError
        when the text has no generated block (the two marker comments).
    """
    return replace_block(text, BEGIN, END, findings(results), "the findings")


def replace_block(text: str, begin: str, end: str, body: str, what: str) -> str:
    """`text` with everything between the marker lines `begin` and `end` replaced by `body`
    (the one way generated text enters a hand-written page); a ServableError naming the
    markers when the text has none."""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ServableError(f"no generated block in the text: add the lines {begin} and "
                            f"{end} where {what} go")
    body = body if body.endswith("\n") else body + "\n"
    return pattern.sub(lambda _: f"{begin}\n{body}{end}", text)


def update_file(path: Path, results: dict) -> Path:
    """Rewrite the generated block of the guidelines file at `path` in place."""
    from servable.files import write_bytes

    path = Path(path)
    return write_bytes(path, update(path.read_text(), results).encode(), force=True)
