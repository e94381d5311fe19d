"""The client: the shipped functions run on an endpoint, jets split under the service's limits.

`Client(endpoint="local")` runs tasks on this machine's endpoint engines, `Client(UUID)` on a
Globus Compute endpoint (`servable.remote.endpoints`). Jets travel in compact form, only their
filled slots (`servable.remote.encoding`). Every task's serialized arguments stay under 10 MB
(inputs are split into as many tasks as needed; results come back in input order,
`servable.remote.combine`), and a task or a result over the limit is split again. A worker
that dies is retried with exponential backoff; an exception raised by the function on the
worker becomes one `RemoteTaskError` carrying the remote message.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from servable.errors import ServableError, check_int
from servable.remote import functions
from servable.remote.combine import combine_explanations, combine_predictions, gather
from servable.remote.encoding import (
    MAX_EXPANDED_BYTES,
    bytes_per_jet,
    compact_arrays,
    jet_count,
    jets_to_arrays,
    padded_bytes_per_jet,
    take,
)
from servable.remote.endpoints import (
    PayloadTooLarge,
    RemoteTaskError,
    ResultTooLarge,
    WorkerLost,
    open_endpoint,
    serializer,
)
from servable.remote.jsondata import from_json_safe, to_json_safe

__all__ = ["PAYLOAD_LIMIT", "Client", "PayloadTooLarge", "RemoteTaskError", "serializer"]

PAYLOAD_LIMIT = 10 * 1000 * 1000  # the service's limit on a task's serialized arguments


def _splittable(method: str, params: dict) -> bool:
    """Check the method's name and parameters here, before anything is sent, and say whether
    it may be split across tasks: the method's own declaration (`Method.splittable`; results
    over the whole set, such as dAUC, R^2, RNA or attention maps, are not). A client without
    the explanation libraries installed cannot read the method; the worker checks it then,
    and the jets go as one task, which is always correct."""
    from servable.explain import method_class

    try:
        cls = method_class(method)
    except ImportError:
        return False
    cls.check_params(params)
    return cls.splittable


class Client:
    """Submit the shipped functions to an endpoint; `.predict`/`.explain` return futures."""

    def __init__(self, endpoint: str = "local", *, engine: str = "process",
                 workers: int | None = None, worker_init: str = "", retries: int = 3,
                 backoff: float = 0.5, payload_limit: int = PAYLOAD_LIMIT,
                 run_dir: str | None = None):
        if workers is not None:
            check_int(workers, "workers")
        check_int(retries, "retries", minimum=0)
        check_int(payload_limit, "payload_limit")
        self.endpoint_name, self.retries, self.backoff = str(endpoint), retries, backoff
        self.payload_limit = payload_limit
        self.serde = serializer()
        self._endpoint = open_endpoint(str(endpoint), engine, workers, worker_init, run_dir)
        self._dispatch = ThreadPoolExecutor(max_workers=8, thread_name_prefix="servable-remote")
        self.tasks_sent = 0
        self.largest_payload = 0
        self._count_lock = threading.Lock()

    # -- one task ------------------------------------------------------------------------
    def payload(self, args: tuple, kwargs: dict) -> str:
        """The serialized arguments exactly as the service receives them."""
        return self.serde.pack_buffers([self.serde.serialize(to_json_safe(tuple(args), "args")),
                                        self.serde.serialize(to_json_safe(dict(kwargs),
                                                                          "kwargs"))])

    def submit(self, fn, *args, **kwargs) -> Future:
        """Run `fn(*args, **kwargs)` on the endpoint (one task, retried if a worker dies)."""
        return self._dispatch.submit(self._run, fn, args, kwargs)

    def _run(self, fn, args, kwargs):
        payload = self.payload(args, kwargs)
        if len(payload) > self.payload_limit:
            raise PayloadTooLarge(f"{fn.__name__}: the task's arguments serialize to "
                                  f"{len(payload) / 1e6:.1f} MB, over the service's limit of "
                                  f"{self.payload_limit / 1e6:.0f} MB; send fewer jets")
        with self._count_lock:
            self.largest_payload = max(self.largest_payload, len(payload))
        for attempt in range(self.retries + 1):
            try:
                with self._count_lock:
                    self.tasks_sent += 1
                future, generation = self._endpoint.submit(
                    fn, to_json_safe(tuple(args), "args"), to_json_safe(dict(kwargs), "kwargs"),
                    payload)
                return from_json_safe(future.result(), "result")
            except WorkerLost as exc:
                if attempt == self.retries:
                    raise ServableError(f"{fn.__name__}: the worker was lost "
                                        f"{self.retries + 1} times ({exc}); check the "
                                        "endpoint's resources (memory, wall time)") from None
                time.sleep(self.backoff * 2 ** attempt)
                self._endpoint.restart(generation)

    # -- jets, split under the limit -----------------------------------------------------
    def _task_bounds(self, arrays: dict, fixed: tuple) -> list[tuple[int, int]]:
        """Consecutive jet ranges whose tasks fit the limit. A compact jet's size depends on
        its filled slots: the serialized size is measured for no jets and for the first
        jets, and each task takes jets while their bytes, so scaled, fit 95% of the limit
        (and while the worker may expand them, `MAX_EXPANDED_BYTES`)."""
        n = jet_count(arrays)
        sizes = np.cumsum(bytes_per_jet(arrays))
        k = min(n, 64)
        empty = len(self.payload((*fixed[:1], take(arrays, 0, 0), *fixed[1:]), {}))
        some = len(self.payload((*fixed[:1], take(arrays, 0, k), *fixed[1:]), {}))
        scale = max((some - empty) / max(int(sizes[k - 1]), 1), 1.0) if k else 1.0
        budget = max((0.95 * self.payload_limit - empty) / scale, 1.0)
        most = max(1, MAX_EXPANDED_BYTES // max(padded_bytes_per_jet(arrays), 1))
        bounds, start = [], 0
        while start < n:
            before = int(sizes[start - 1]) if start else 0
            stop = int(np.searchsorted(sizes, before + budget, side="right"))
            stop = min(max(stop, start + 1), start + most)
            bounds.append((start, stop))
            start = stop
        return bounds

    def _run_jets(self, fn, bundle_ref, arrays, rest: tuple, kwargs: dict, combine,
                  split: bool = True) -> Future:
        """`fn` on `arrays` (Jets, or a padded or compact dict), in as many tasks as the
        limit needs when `split`; one future of the combined answer, in input order."""
        arrays = compact_arrays(arrays if isinstance(arrays, dict) else jets_to_arrays(arrays))
        bounds = (self._task_bounds(arrays, (bundle_ref, *rest)) if split
                  else [(0, jet_count(arrays))])
        futures = [self._dispatch.submit(self._run_split, fn, bundle_ref,
                                         take(arrays, start, stop), rest, kwargs, combine,
                                         split)
                   for start, stop in bounds]
        return gather(futures, combine)

    def _run_split(self, fn, bundle_ref, arrays, rest, kwargs, combine, split):
        """One task, split in two while its arguments or its result are over the limit."""
        try:
            return self._run(fn, (bundle_ref, arrays, *rest), kwargs)
        except (PayloadTooLarge, ResultTooLarge) as exc:
            n = jet_count(arrays)
            if not split or n < 2:
                if isinstance(exc, PayloadTooLarge):
                    raise
                raise PayloadTooLarge(f"{fn.__name__}: the result for {n} jets is over the "
                                      "service's 10 MB limit; send fewer jets") from None
            half = n // 2
            return combine([
                self._run_split(fn, bundle_ref, take(arrays, a, b), rest, kwargs, combine,
                                split) for a, b in ((0, half), (half, n))])

    # -- the servable API ----------------------------------------------------------------
    def predict(self, bundle_ref, jets, runtime: str = "auto",
                batch_size: int | None = None) -> Future:
        """Future of {"probabilities", "runtime", "bundle", "worker", "workers", "tasks"}
        for `jets` (Jets or a dict of arrays) with the bundle at `bundle_ref` on the endpoint;
        `workers` holds each task's worker report (process, threads, bundle loads).
        Labels and spectators stay here: a prediction needs the model inputs only."""
        if batch_size is not None:
            check_int(batch_size, "batch_size")
        arrays = jets if isinstance(jets, dict) else jets_to_arrays(jets)
        arrays = {k: v for k, v in arrays.items() if k not in ("labels", "spectators")}
        return self._run_jets(functions.predict, str(bundle_ref), arrays,
                              (runtime, batch_size), {}, combine_predictions)

    def explain(self, bundle_ref, jets, method: str, target: int = 1, **params) -> Future:
        """Future of {"explanation", per-jet relevance per field ("tracks", "vertices", "jet"),
        "output", "n_jets", ...} (`servable.remote.combine.as_explanation` makes it an
        Explanation).
        The target's upper bound (the bundle's classes) is checked on the endpoint."""
        check_int(target, "target", minimum=0)
        if (jet_count(jets) if isinstance(jets, dict) else len(jets)) == 0:
            raise ServableError("no jets to explain: give at least one jet")
        return self._run_jets(functions.explain, str(bundle_ref), jets, (method, target),
                              params, combine_explanations,
                              split=_splittable(method, params))

    def scorer(self, bundle_ref, runtime: str = "auto"):
        """`score(jets) -> (probabilities, info)` for `servable.bundle.predict.stream_scores`."""
        def score(jets):
            result = self.predict(bundle_ref, jets, runtime=runtime).result()
            return result["probabilities"], {**result["bundle"], "runtime": result["runtime"]}

        return score

    def predict_sync(self, *args, **kwargs) -> np.ndarray:
        """Blocking convenience: the probabilities array."""
        return self.predict(*args, **kwargs).result()["probabilities"]

    def explain_sync(self, *args, **kwargs) -> dict:
        """Blocking convenience: the combined explanation result."""
        return self.explain(*args, **kwargs).result()

    def close(self) -> None:
        """Wait for the submitted tasks and stop the endpoint's engine."""
        self._dispatch.shutdown(wait=True)
        self._endpoint.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
