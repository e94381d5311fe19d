"""Markdown helpers of the reproduction report: table cells, tables, figure links and the
block that states a finding of the paper with its verdicts (report.py and report_training.py
share them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servable.study import paper
from servable.study.verdicts import verdict

PARTS = {"trained": "IN trained here", "published": "published checkpoints"}


def fmt(value, digits: int = 4) -> str:
    """A table cell: floats with `digits` decimals ("n/a" when NaN or infinite), None as "not
    reported" (a paper value neither the paper nor its repository gives), anything else as
    str."""
    if value is None:
        return "not reported"
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; cells that are not strings are written with `fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |"
              for r in rows]
    return "\n".join(lines)


def finding_block(key: str, results: dict) -> str:
    """The paper's finding `key` (claim, source, criterion) and its verdict on each part of
    the study (trained here, published checkpoints), with the numbers behind it (Markdown)."""
    f = paper.FINDINGS[key]
    lines = [f"*Paper's finding*: {f.claim} (source: {f.source})", "",
             f"*Criterion*: {f.criterion}", "", f"*Why this threshold*: {f.why}", ""]
    for part, label in PARTS.items():
        v = verdict(key, results.get(part), results)
        lines.append(f"- {label}: **{v.word}** ({v.numbers})")
    return "\n".join(lines) + "\n"


def figure_links(stems: list[str]) -> str:
    """Markdown image links to each figure's PNG, with its PDF beside it."""
    return " ".join(f"![{Path(s).name}]({s}.png) ([PDF]({s}.pdf))" for s in stems)
