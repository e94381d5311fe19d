"""The committed 'what transfers to the graph network' result: its report is what its numbers
say (docs/results/jetclass-gnn-transfer, made by benchmarks/jetclass_gnn_transfer.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from servable.study import gnn_transfer

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "jetclass-gnn-transfer"


@pytest.fixture(scope="module")
def results():
    return json.loads((RESULTS / "results.json").read_text())


@pytest.fixture(scope="module")
def report():
    return (RESULTS / "report.md").read_text()


def test_the_report_is_generated_from_the_results(results, report):
    command = re.search(r"```bash\n(.*?)\n```", report, re.S).group(1)
    assert report == gnn_transfer.render(results, command) + "\n"


def test_the_completeness_sentence_states_the_median_of_the_per_jet_errors(results, report):
    """Recomputed from the per-jet errors, not from the stored medians."""
    steps = [str(s) for s in results["ig_steps"]]
    for name, model in results["models"].items():
        rows = model["ig"]["rebuilt"]
        first = np.median(rows[steps[0]]["per_jet"])
        last = np.median(rows[steps[-1]]["per_jet"])
        sentence = re.search(rf"^{re.escape(name)}: the median completeness error goes from "
                             r"(\S+) at (\d+) steps to (\S+) at (\d+); (.*)$", report, re.M)
        assert sentence, name
        assert float(sentence.group(1)) == pytest.approx(first, rel=0.01, abs=1e-4)
        assert float(sentence.group(3)) == pytest.approx(last, rel=0.01, abs=1e-4)
        falls = rows[steps[-1]]["high"] < rows[steps[0]]["low"]
        assert sentence.group(5).startswith("it falls" if falls else "it does not fall")


def test_padded_particles_are_silent_for_every_method_that_ran(results):
    for model in results["models"].values():
        for method, r in model["methods"].items():
            if r["ran"] and "padded_nonzero" in r:
                assert r["padded_nonzero"] == 0, method
