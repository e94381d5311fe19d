"""Result combination: the answers of many tasks as the answer of one call.

Per-jet arrays are concatenated in input order; jet-averaged summaries are weighted by the
jets of each task; every task's worker report is kept (`workers`), so a caller can see which
process ran what.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np

from servable.errors import ServableError


def _concat(parts: list[dict], key: str):
    values = [p.get(key) for p in parts]
    return None if any(v is None for v in values) else np.concatenate(values)


def _workers(parts: list[dict]) -> list[dict]:
    return [w for p in parts for w in p.get("workers", [p["worker"]])]


def _tasks(parts: list[dict]) -> int:
    return sum(p.get("tasks", 1) for p in parts)


def combine_predictions(parts: list[dict]) -> dict:
    """The predictions of many tasks as one answer: probabilities concatenated in input order
    (None if any task has none), the other fields of the first task, the task count and every
    task's worker report (`workers`)."""
    return {**parts[0], "probabilities": _concat(parts, "probabilities"),
            "tasks": _tasks(parts), "workers": _workers(parts)}


def combine_explanations(parts: list[dict]) -> dict:
    """Per-jet relevance concatenated; jet-averaged summaries weighted by jets per task.
    One task's answer passes unchanged (the same numbers as a local explanation)."""
    if len(parts) == 1:
        return {**parts[0], "tasks": _tasks(parts), "workers": _workers(parts)}
    n = np.array([p["n_jets"] for p in parts], float)
    first = parts[0]["explanation"]
    summary = dict(first)
    names = first["feature_relevance"].keys()
    summary["feature_relevance"] = {
        k: float(np.dot(n, [p["explanation"]["feature_relevance"][k] for p in parts]) / n.sum())
        for k in names}
    summary["top_features"] = sorted(summary["feature_relevance"],
                                     key=lambda k: -summary["feature_relevance"][k])[:10]
    # method-specific statistics stay as each task computed them
    summary["extras"] = {"per_task": [p["explanation"]["extras"] for p in parts]}
    if "output_mean" in first:
        summary["output_mean"] = float(np.dot(n, [p["explanation"]["output_mean"]
                                                  for p in parts]) / n.sum())
    out = {"explanation": summary, "n_jets": int(n.sum()), "worker": parts[0]["worker"],
           "tasks": _tasks(parts), "workers": _workers(parts)}
    for key in (*first["feature_names"], "output"):  # per-jet relevance per field, output
        out[key] = _concat(parts, key)
    return out


def as_explanation(result: dict):
    """The `Explanation` a remote explain result describes: its summary and per-jet arrays
    (relevance per field, output)."""
    from servable.explain import Explanation

    keys = (*result["explanation"]["feature_names"], "output")
    return Explanation.from_dict({**result["explanation"],
                                  **{k: result[k] for k in keys if k in result}})


def gather(futures: list[Future], combine) -> Future:
    """One future for many: resolves in input order once all have finished."""
    out: Future = Future()
    if not futures:
        out.set_exception(ServableError("no jets to send"))
        return out
    remaining = [len(futures)]
    lock = threading.Lock()

    def done(_):
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            try:
                out.set_result(combine([f.result() for f in futures]))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                out.set_exception(exc)

    for f in futures:
        f.add_done_callback(done)
    return out
