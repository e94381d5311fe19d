"""Tasks that read untrusted files run in a child process, so that a crash of the reader ends
that task and not the worker.

libhdf5 is C code, and a malformed HDF5 file can crash it (heap overflows found by fuzzing;
see docs/security.md): a segfault is not an exception Python can catch. `run_isolated` runs a
function of this package in a fresh Python process and turns the child's death by a signal
into a `ReaderCrashed` error for that task. The payload goes in and the answer comes back as
JSON: nothing the child sends is unpickled, so a child subverted by a file cannot reach into
the worker through its answer.
"""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from servable.errors import ServableError


class ReaderCrashed(ServableError):
    """The child process of a task died (a signal, not an error it could report)."""


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def run_isolated(function: str, payload: dict, what: str = "files") -> dict:
    """`function(payload)` run in a child Python process; `function` is "module:name" of
    this package, taking and returning JSON-able data. A `ServableError` in the child is
    raised here with the same message; a child killed by a signal raises `ReaderCrashed`."""
    with tempfile.TemporaryDirectory(prefix="servable-task-") as tmp:
        answer = Path(tmp) / "answer.json"
        proc = subprocess.run([sys.executable, "-m", __name__, function, str(answer)],
                              input=json.dumps(payload), capture_output=True, text=True)
        if proc.returncode < 0:
            raise ReaderCrashed(
                f"the task's process died of {_signal_name(proc.returncode)} (its input: "
                f"{what}); a malformed HDF5 file can crash the HDF5 library that reads it: "
                "check the files (`servable data inspect`) or fetch them again")
        if proc.returncode != 0 or not answer.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
            raise RuntimeError(f"{function} failed in its child process (exit code "
                               f"{proc.returncode}):\n{tail}")
        reply = json.loads(answer.read_text())
    if "error" in reply:
        raise ServableError(reply["error"])
    return reply["result"]


def _child(function: str, answer: str) -> None:
    module, _, name = function.partition(":")
    if module.split(".")[0] != "servable":
        raise ValueError(f"run_isolated runs functions of servable, not {function!r}")
    target = getattr(importlib.import_module(module), name)
    payload = json.loads(sys.stdin.read())
    try:
        reply = {"result": target(payload)}
    except ServableError as exc:
        reply = {"error": str(exc)}
    Path(answer).write_text(json.dumps(reply))


if __name__ == "__main__":
    _child(*sys.argv[1:])
