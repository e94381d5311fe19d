"""Remote inference, explanation and training (DESIGN 8).

`predict` and `explain` are the shipped functions (self-contained, serialized by source);
`Client` submits them to this machine's endpoint engines or to a Globus Compute endpoint;
`executor` picks the runner for fanned-out work (`local`, `parsl:CONFIG.py` or a UUID).
"""

from servable.remote.client import Client, PayloadTooLarge, RemoteTaskError
from servable.remote.fanout import executor
from servable.remote.functions import explain, predict, train

__all__ = ["Client", "PayloadTooLarge", "RemoteTaskError", "executor", "explain", "predict",
           "train"]
