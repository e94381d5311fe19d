"""Remote inference, explanation and training.

`predict`, `explain` and `train` are the shipped functions (self-contained, serialized by
source; `functions`) that run `worker` on the endpoint; `Client` (`client`) submits them to
an endpoint (`endpoints`: this machine's engines or a Globus Compute endpoint), sends jets
in compact form (`encoding`: only filled slots), splits them under the payload limit and
joins the answers (`combine`); `registry` records registered function ids; `executor`
(`fanout`) picks the runner for fanned-out work (`local`, `parsl:CONFIG.py` or a UUID).
"""

from servable.remote.client import Client, PayloadTooLarge, RemoteTaskError
from servable.remote.fanout import executor
from servable.remote.functions import explain, predict, train

__all__ = ["Client", "PayloadTooLarge", "RemoteTaskError", "executor", "explain", "predict",
           "train"]
