"""Run the shipped functions on an endpoint: this machine's engines or a Globus Compute one.

`Client(endpoint="local")` runs tasks through the real `globus_compute_endpoint.engines`
(`ProcessPoolEngine`, or `GlobusComputeEngine` over Parsl's `LocalProvider`) with the task
packing the service uses (function serialized by source, arguments by the SDK's data
strategy, a messagepack `Task`), so what passes here passes on a real endpoint.
`Client(endpoint=UUID)` uses `globus_compute_sdk.Executor` (credentials from
GLOBUS_COMPUTE_CLIENT_ID / GLOBUS_COMPUTE_CLIENT_SECRET).

Both enforce the service's limits: every task's serialized arguments stay under 10 MB
(inputs are split into as many tasks as needed; results come back in input order), and a
result over the limit is split again. A worker that dies is retried with exponential
backoff; an exception raised by the function on the worker becomes one `RemoteTaskError`
carrying the remote message.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from servable.errors import ServableError
from servable.remote import functions

PAYLOAD_LIMIT = 10 * 1000 * 1000  # the service's limit on a task's serialized arguments
# methods whose results describe the jet set as a whole (dAUC, R^2, RNA, attention maps):
# one task for all jets, never split
GLOBAL_METHODS = ("masking", "probes", "rna", "attention")
REGISTRY_ENV = "SERVABLE_FUNCTION_REGISTRY"


class RemoteTaskError(ServableError):
    """The shipped function raised on the worker; `remote_traceback` holds the whole trace."""

    def __init__(self, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.remote_traceback = remote_traceback


class PayloadTooLarge(ServableError):
    """A task that cannot be split under the service's payload limit."""


class _WorkerLost(Exception):
    """The task did not finish for a reason outside the function: retried."""


class _ResultTooLarge(Exception):
    """The worker refused a result over the limit: the task is split and sent again."""


def serializer():
    """The SDK serializer with functions serialized by source (works across Pythons)."""
    from globus_compute_sdk.serialize import AllCodeStrategies, ComputeSerializer

    return ComputeSerializer(strategy_code=AllCodeStrategies())


def _init_worker(path: str, threads: int) -> None:
    """Worker processes log to the endpoint's run directory, not to the caller's terminal,
    and share the cores instead of each taking all of them (oversubscribed OpenMP threads
    made two parallel tasks ten times slower than one)."""
    import logging

    os.environ["OMP_NUM_THREADS"] = str(threads)

    handler = logging.FileHandler(path)
    for name in ("globus_compute_endpoint", "globus_compute_sdk"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False


def scripts_on_path() -> None:
    """Parsl launches its interchange and workers as scripts of this Python environment:
    put the environment's bin directory on PATH when it is not (an unactivated venv)."""
    import sys

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _remote_message(trace: str) -> str:
    """The last line of a remote traceback, its exception class without the module path."""
    lines = [ln.strip() for ln in str(trace).strip().splitlines() if ln.strip()]
    if not lines:
        return "the remote task failed without a message"
    match = re.match(r"^([\w.]+)(: .*)?$", lines[-1])
    if match:
        return match.group(1).rsplit(".", 1)[-1] + (match.group(2) or "")
    return lines[-1]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


class LocalEndpoint:
    """An endpoint engine in this process: `process` (ProcessPoolEngine) or `parsl`
    (GlobusComputeEngine over a LocalProvider; `worker_init` runs before its workers start,
    e.g. activating another Python's environment)."""

    def __init__(self, engine: str = "process", workers: int | None = None,
                 worker_init: str = "", run_dir: str | None = None):
        if engine not in ("process", "parsl"):
            raise ServableError(f"engine must be 'process' or 'parsl', not {engine!r}")
        self.engine_name, self.workers, self.worker_init = engine, workers, worker_init
        self._tmp = None if run_dir else tempfile.TemporaryDirectory(prefix="servable-ep-")
        self.run_dir = Path(run_dir or self._tmp.name)
        self.endpoint_id = uuid.uuid4()
        self.serde = serializer()
        self._lock = threading.Lock()
        self._generation = 0
        self.engine = self._start()

    def _start(self):
        from globus_compute_endpoint.engines import GlobusComputeEngine, ProcessPoolEngine

        workers = self.workers or max(1, min(4, os.cpu_count() or 1))
        threads = max(1, (os.cpu_count() or 1) // workers)
        if self.engine_name == "process":
            import multiprocessing

            # spawn: a forked copy of a process with threads (torch, the dispatcher) can hang
            engine = ProcessPoolEngine(max_workers=workers,
                                       mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker,
                                       initargs=(str(self.run_dir / "worker.log"), threads))
        else:
            from parsl.providers import LocalProvider

            scripts_on_path()
            provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1,
                                     worker_init=f"export OMP_NUM_THREADS={threads}; "
                                                 + self.worker_init)
            engine = GlobusComputeEngine(provider=provider, max_workers_per_node=workers,
                                         address="127.0.0.1", encrypted=False,
                                         heartbeat_period=2, heartbeat_threshold=10,
                                         label=f"servable-{self.endpoint_id.hex[:8]}")
        engine.start(endpoint_id=self.endpoint_id, run_dir=str(self.run_dir))
        return engine

    def restart(self, generation: int) -> None:
        """A fresh engine after a lost worker (once per loss, whoever asks first)."""
        with self._lock:
            if generation != self._generation:
                return
            old, self._generation = self.engine, self._generation + 1
            try:
                old.shutdown(block=False)
            except Exception:  # noqa: BLE001 - a broken pool may fail to shut down cleanly
                pass
            self.engine = self._start()

    def submit(self, function_buffer: str, payload: str) -> tuple[Future, int]:
        """Submit a packed task; the future resolves to the function's return value."""
        from globus_compute_common import messagepack
        from globus_compute_common.messagepack.message_types import Task
        from globus_compute_endpoint.engines import GCFuture

        task_id = uuid.uuid4()
        task = Task(task_id=task_id,
                    task_buffer=self.serde.pack_buffers([function_buffer]) + payload)
        generation = self._generation
        gc_future = GCFuture(gc_task_id=task_id)
        out: Future = Future()

        def done(f: Future) -> None:
            try:
                out.set_result(self._unpack(f.result()))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                out.set_exception(exc)

        gc_future.add_done_callback(done)
        self.engine.submit(gc_future, messagepack.pack(task), resource_specification={})
        return out, generation

    def _unpack(self, packed: bytes):
        from globus_compute_common import messagepack
        from globus_compute_common.tasks import ActorName

        result = messagepack.unpack(packed)
        if not result.is_error:
            return self.serde.deserialize(result.data)
        code = result.error_details.code if result.error_details else ""
        if code == "MaxResultSizeExceeded":
            raise _ResultTooLarge(result.data)
        statuses = result.task_statuses or []
        if statuses and statuses[0].actor == ActorName.WORKER:
            raise RemoteTaskError(f"remote task failed: {_remote_message(result.data)}",
                                  result.data)
        raise _WorkerLost(_remote_message(result.data))

    def close(self) -> None:
        try:
            self.engine.shutdown(block=True)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()


class GlobusEndpoint:
    """A Globus Compute endpoint through `globus_compute_sdk.Executor`."""

    def __init__(self, endpoint_id: str, registry: dict | None = None):
        missing = [v for v in ("GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET")
                   if not os.environ.get(v)]
        if missing:
            raise ServableError(f"endpoint {endpoint_id}: set {' and '.join(missing)} (a "
                                "Globus confidential client's id and secret) to use a Globus "
                                "Compute endpoint, or use --endpoint local")
        from globus_compute_sdk import Executor

        self.executor = Executor(endpoint_id=endpoint_id, serializer=serializer())
        self.registry = registry or {}

    def submit_call(self, fn, args, kwargs) -> Future:
        from globus_compute_sdk.errors import TaskExecutionFailed

        entry = self.registry.get(fn.__name__)
        if entry and entry.get("sha256") == function_digest(fn) and entry.get("function_id"):
            inner = self.executor.submit_to_registered_function(entry["function_id"], args,
                                                                kwargs)
        else:
            inner = self.executor.submit(fn, *args, **kwargs)
        out: Future = Future()

        def done(f: Future) -> None:
            try:
                out.set_result(f.result())
            except TaskExecutionFailed as exc:
                worker_lost = bool(exc.WORKER_LOST_REGEX.search(exc.remote_data))
                message = _remote_message(exc.remote_data)
                out.set_exception(_WorkerLost(message) if worker_lost else RemoteTaskError(
                    f"remote task failed: {message}", exc.remote_data))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                out.set_exception(exc)

        inner.add_done_callback(done)
        return out

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def function_digest(fn) -> str:
    """SHA-256 of a function's source: what a registration is valid for."""
    import hashlib
    import inspect

    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


def registry_path() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or Path.home() / ".servable" / "functions.json")


def read_registry() -> dict:
    path = registry_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ServableError(f"{path}: not valid JSON; delete it and run `servable remote "
                            "register` again") from None


def _concat(parts: list[dict], key: str):
    values = [p[key] for p in parts]
    return None if any(v is None for v in values) else np.concatenate(values)


def combine_predictions(parts: list[dict]) -> dict:
    return {**parts[0], "probabilities": _concat(parts, "probabilities"),
            "tasks": sum(p.get("tasks", 1) for p in parts)}


def combine_explanations(parts: list[dict]) -> dict:
    """Per-jet relevance concatenated; jet-averaged summaries weighted by jets per task."""
    n = np.array([p["n_jets"] for p in parts], float)
    first = parts[0]["explanation"]
    summary = dict(first)
    names = first["feature_relevance"].keys()
    summary["feature_relevance"] = {
        k: float(np.dot(n, [p["explanation"]["feature_relevance"][k] for p in parts]) / n.sum())
        for k in names}
    summary["top_features"] = sorted(summary["feature_relevance"],
                                     key=lambda k: -summary["feature_relevance"][k])[:10]
    if len(parts) > 1:  # method-specific statistics stay as each task computed them
        summary["extras"] = {"per_task": [p["explanation"]["extras"] for p in parts]}
    if "output_mean" in first:
        summary["output_mean"] = float(np.dot(n, [p["explanation"]["output_mean"]
                                                  for p in parts]) / n.sum())
    out = {"explanation": summary, "n_jets": int(n.sum()), "worker": parts[0]["worker"],
           "tasks": sum(p.get("tasks", 1) for p in parts)}
    for key in ("tracks", "vertices", "jet", "output"):
        out[key] = _concat(parts, key)
    return out


def _gather(futures: list[Future], combine) -> Future:
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


class Client:
    """Submit the shipped functions to an endpoint; `.predict`/`.explain` return futures."""

    def __init__(self, endpoint: str = "local", *, engine: str = "process",
                 workers: int | None = None, worker_init: str = "", retries: int = 3,
                 backoff: float = 0.5, payload_limit: int = PAYLOAD_LIMIT,
                 run_dir: str | None = None):
        self.endpoint_name, self.retries, self.backoff = str(endpoint), retries, backoff
        self.payload_limit = payload_limit
        self.serde = serializer()
        self._function_buffers: dict[str, str] = {}
        if endpoint == "local":
            self._endpoint = LocalEndpoint(engine, workers, worker_init, run_dir)
        elif _is_uuid(endpoint):
            self._endpoint = GlobusEndpoint(str(endpoint), read_registry())
        else:
            raise ServableError(f"endpoint must be 'local' or a Globus Compute endpoint UUID, "
                                f"not {endpoint!r}")
        self._dispatch = ThreadPoolExecutor(max_workers=8, thread_name_prefix="servable-remote")
        self.tasks_sent = 0
        self.largest_payload = 0
        self._count_lock = threading.Lock()

    # -- one task ------------------------------------------------------------------------
    def payload(self, args: tuple, kwargs: dict) -> str:
        """The serialized arguments exactly as the service receives them."""
        return self.serde.pack_buffers([self.serde.serialize(tuple(args)),
                                        self.serde.serialize(dict(kwargs))])

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
                if isinstance(self._endpoint, LocalEndpoint):
                    future, generation = self._endpoint.submit(self._function_buffer(fn),
                                                               payload)
                else:
                    future, generation = self._endpoint.submit_call(fn, args, kwargs), 0
                return future.result()
            except _WorkerLost as exc:
                if attempt == self.retries:
                    raise ServableError(f"{fn.__name__}: the worker was lost "
                                        f"{self.retries + 1} times ({exc}); check the "
                                        "endpoint's resources (memory, wall time)") from None
                time.sleep(self.backoff * 2 ** attempt)
                if isinstance(self._endpoint, LocalEndpoint):
                    self._endpoint.restart(generation)

    def _function_buffer(self, fn) -> str:
        if fn.__name__ not in self._function_buffers:
            self._function_buffers[fn.__name__] = self.serde.serialize(fn)
        return self._function_buffers[fn.__name__]

    # -- jets, split under the limit -----------------------------------------------------
    def _jets_per_task(self, arrays: dict, fixed: tuple) -> int:
        """How many jets fit one task: padded arrays make the size per jet constant."""
        n = len(arrays["tracks"])
        k = min(n, 32)
        one = len(self.payload((*fixed[:1], _take(arrays, 0, k), *fixed[1:]), {}))
        two = len(self.payload((*fixed[:1], _take(arrays, 0, 2 * k), *fixed[1:]), {}))
        per_jet = max((two - one) / k, 1.0) if n > k else one / max(k, 1)
        overhead = max(one - per_jet * k, 0)
        return max(1, int((0.95 * self.payload_limit - overhead) / per_jet))

    def _run_jets(self, fn, bundle_ref, arrays: dict, rest: tuple, kwargs: dict, combine,
                  split: bool = True) -> Future:
        from servable.remote.worker import jets_to_arrays

        if not isinstance(arrays, dict):
            arrays = jets_to_arrays(arrays)
        n = len(arrays["tracks"])
        per_task = self._jets_per_task(arrays, (bundle_ref, *rest)) if split else n
        futures = [self._dispatch.submit(self._run_split, fn, bundle_ref,
                                         _take(arrays, start, start + per_task), rest, kwargs,
                                         combine, split)
                   for start in range(0, n, per_task)]
        return _gather(futures, combine)

    def _run_split(self, fn, bundle_ref, arrays, rest, kwargs, combine, split):
        try:
            return self._run(fn, (bundle_ref, arrays, *rest), kwargs)
        except _ResultTooLarge:
            n = len(arrays["tracks"])
            if not split or n < 2:
                raise PayloadTooLarge(f"{fn.__name__}: the result for {n} jets is over the "
                                      "service's 10 MB limit; send fewer jets") from None
            half = n // 2
            return combine([
                self._run_split(fn, bundle_ref, _take(arrays, a, b), rest, kwargs, combine,
                                split) for a, b in ((0, half), (half, n))])

    # -- the servable API ----------------------------------------------------------------
    def predict(self, bundle_ref, jets, runtime: str = "auto",
                batch_size: int | None = None) -> Future:
        """Future of {"probabilities", "runtime", "bundle", "worker", "tasks"} for `jets`
        (Jets or a dict of arrays) with the bundle at `bundle_ref` on the endpoint.
        Labels and spectators stay here: a prediction needs the model inputs only."""
        from servable.remote.worker import jets_to_arrays

        arrays = jets if isinstance(jets, dict) else jets_to_arrays(jets)
        arrays = {k: v for k, v in arrays.items() if k not in ("labels", "spectators")}
        return self._run_jets(functions.predict, str(bundle_ref), arrays,
                              (runtime, batch_size), {}, combine_predictions)

    def explain(self, bundle_ref, jets, method: str, target: int = 1, **params) -> Future:
        """Future of {"explanation", "tracks", "vertices", "jet", "output", "n_jets", ...}."""
        return self._run_jets(functions.explain, str(bundle_ref), jets, (method, target),
                              params, combine_explanations,
                              split=method not in GLOBAL_METHODS)

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
        return self.explain(*args, **kwargs).result()

    def close(self) -> None:
        self._dispatch.shutdown(wait=True)
        self._endpoint.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _take(arrays: dict, start: int, stop: int) -> dict:
    return {k: (v[start:stop] if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
