"""docs/guidelines.md quotes the committed benchmark runs only through generated blocks: each
block is what its generator writes from the committed results today, so no sentence there can
drift from the numbers (a rerun that changes a verdict fails this until the page is
regenerated)."""

import json
from pathlib import Path

from servable.study.xai import classes, findings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_cms_findings_are_those_of_the_committed_cms_run():
    text = (DOCS / "guidelines.md").read_text()
    results = json.loads((DOCS / "results" / "xai-benchmark-cms" / "results.json").read_text())
    assert findings.BEGIN in text
    assert findings.update(text, results) == text


def test_the_jetclass_findings_are_those_of_the_committed_jetclass_run():
    text = (DOCS / "guidelines.md").read_text()
    summary = json.loads((DOCS / "results" / "xai-benchmark-jetclass" / "summary.json")
                         .read_text())
    assert classes.BEGIN in text
    assert findings.replace_block(text, classes.BEGIN, classes.END, classes.findings(summary),
                                  "the class findings") == text
