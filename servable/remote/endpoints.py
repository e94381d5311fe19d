"""Endpoints: where a packed task runs.

`LocalEndpoint` runs tasks through the real `globus_compute_endpoint.engines`
(`ProcessPoolEngine`, or `GlobusComputeEngine` over Parsl's `LocalProvider`) with the task
packing the service uses (function serialized by source, arguments by the SDK's data
strategy, a messagepack `Task`), so what passes here passes on a real endpoint.
`GlobusEndpoint` uses `globus_compute_sdk.Executor` (credentials from
GLOBUS_COMPUTE_CLIENT_ID / GLOBUS_COMPUTE_CLIENT_SECRET).

Both turn an exception raised by the function on the worker into one `RemoteTaskError`
carrying the remote message, and a task lost outside the function into `WorkerLost` (the
client retries it).

Each local worker gets its share of the cores (cores / workers threads). The limit is in the
environment before a worker process starts (a spawned worker re-imports the caller's main
module, and a script that starts with `import torch` sizes torch's pool then), and the worker
sizes torch's and ONNX Runtime's pools explicitly (`servable.remote.worker.limit_threads`).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import uuid
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from servable.errors import ServableError
from servable.remote.registry import read_registry, registered_id

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_ENVIRONMENT_LOCK = threading.Lock()


class RemoteTaskError(ServableError):
    """The shipped function raised on the worker; `remote_traceback` holds the whole trace."""

    def __init__(self, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.remote_traceback = remote_traceback


class PayloadTooLarge(ServableError):
    """A task that cannot be split under the service's payload limit."""


class WorkerLost(Exception):
    """The task did not finish for a reason outside the function: retried."""


class ResultTooLarge(Exception):
    """The worker refused a result over the limit: the task is split and sent again."""


# what an endpoint needs to accept servable's tasks: code as source text, data as JSON (an
# endpoint's `allowed_serializers`; the local engines run with exactly this list)
PICKLE_FREE = ("globus_compute_sdk.serialize.PureSourceTextInspect",
               "globus_compute_sdk.serialize.JSONData")
RESULT_SERIALIZERS = ["globus_compute_sdk.serialize.JSONData"]


def serializer():
    """The SDK serializer servable's tasks use: functions by their source text (works across
    Pythons, no pickle), arguments as JSON (`servable.remote.jsondata` makes them JSON-safe)."""
    from globus_compute_sdk.serialize import ComputeSerializer, JSONData, PureSourceTextInspect

    return ComputeSerializer(strategy_code=PureSourceTextInspect(), strategy_data=JSONData())


def thread_share(workers: int) -> int:
    """Threads per worker: the cores shared out (oversubscribed thread pools made two
    parallel tasks ten times slower than one)."""
    return max(1, (os.cpu_count() or 1) // workers)


@contextmanager
def worker_environment(threads: int):
    """This process's environment carries the thread limit while workers are started, so a
    worker has it from its first instruction (before it imports the caller's main module);
    the caller's own environment is restored afterwards."""
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _init_worker(path: str, threads: int) -> None:
    """A worker process logs to the endpoint's run directory, not to the caller's terminal,
    and sizes its thread pools to its share (torch may already be imported by the caller's
    main module, which a spawned worker imports before this runs)."""
    import logging

    from servable.remote.worker import limit_threads

    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    limit_threads()
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
        self._function_buffers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self.engine = self._start()

    def _start(self):
        from globus_compute_endpoint.engines import GlobusComputeEngine, ProcessPoolEngine

        workers = self.workers or max(1, min(4, os.cpu_count() or 1))
        self.threads = threads = thread_share(workers)
        if self.engine_name == "process":
            import multiprocessing

            # spawn: a forked copy of a process with threads (torch, the dispatcher) can hang
            engine = ProcessPoolEngine(max_workers=workers, allowed_serializers=PICKLE_FREE,
                                       mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker,
                                       initargs=(str(self.run_dir / "worker.log"), threads))
        else:
            from parsl.providers import LocalProvider

            scripts_on_path()
            exports = "".join(f"export {name}={threads}; " for name in THREAD_VARIABLES)
            provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1,
                                     worker_init=exports + self.worker_init)
            engine = GlobusComputeEngine(provider=provider, max_workers_per_node=workers,
                                         allowed_serializers=PICKLE_FREE,
                                         address="127.0.0.1", encrypted=False,
                                         heartbeat_period=2, heartbeat_threshold=10,
                                         label=f"servable-{self.endpoint_id.hex[:8]}")
        with worker_environment(threads):
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

    def submit(self, fn, args, kwargs, payload: str) -> tuple[Future, int]:
        """Submit `fn` with its serialized arguments `payload` as a packed task; the future
        resolves to the function's return value, the int names the engine it went to."""
        from globus_compute_common import messagepack
        from globus_compute_common.messagepack.message_types import Task
        from globus_compute_endpoint.engines import GCFuture

        task_id = uuid.uuid4()
        task = Task(task_id=task_id,
                    task_buffer=self.serde.pack_buffers([self._function_buffer(fn)]) + payload)
        generation = self._generation
        gc_future = GCFuture(gc_task_id=task_id)
        out: Future = Future()

        def done(f: Future) -> None:
            try:
                out.set_result(self._unpack(f.result()))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                out.set_exception(exc)

        gc_future.add_done_callback(done)
        with worker_environment(self.threads):  # the process pool starts workers on submit
            self.engine.submit(gc_future, messagepack.pack(task), resource_specification={},
                               result_serializers=RESULT_SERIALIZERS)
        return out, generation

    def _function_buffer(self, fn) -> str:
        if fn.__name__ not in self._function_buffers:
            self._function_buffers[fn.__name__] = self.serde.serialize(fn)
        return self._function_buffers[fn.__name__]

    def _unpack(self, packed: bytes):
        from globus_compute_common import messagepack
        from globus_compute_common.tasks import ActorName

        result = messagepack.unpack(packed)
        if not result.is_error:
            return self.serde.deserialize(result.data)
        code = result.error_details.code if result.error_details else ""
        if code == "MaxResultSizeExceeded":
            raise ResultTooLarge(result.data)
        statuses = result.task_statuses or []
        if statuses and statuses[0].actor == ActorName.WORKER:
            raise RemoteTaskError(f"remote task failed: {_remote_message(result.data)}",
                                  result.data)
        raise WorkerLost(_remote_message(result.data))

    def close(self) -> None:
        """Shut the engine down, waiting for its workers, and remove the run directory when
        this endpoint made a temporary one."""
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

        self.executor = Executor(endpoint_id=endpoint_id, serializer=serializer(),
                                 result_serializers=RESULT_SERIALIZERS)
        self.registry = registry or {}

    def submit(self, fn, args, kwargs, payload: str) -> tuple[Future, int]:
        """Submit `fn(*args, **kwargs)` (by registered id while its source matches); the SDK
        serializes the arguments itself, as `payload` shows."""
        from globus_compute_sdk.errors import TaskExecutionFailed

        function_id = registered_id(self.registry, fn)
        if function_id:
            inner = self.executor.submit_to_registered_function(function_id, args, kwargs)
        else:
            inner = self.executor.submit(fn, *args, **kwargs)
        out: Future = Future()

        def done(f: Future) -> None:
            try:
                out.set_result(f.result())
            except TaskExecutionFailed as exc:
                worker_lost = bool(exc.WORKER_LOST_REGEX.search(exc.remote_data))
                message = _remote_message(exc.remote_data)
                out.set_exception(WorkerLost(message) if worker_lost else RemoteTaskError(
                    f"remote task failed: {message}", exc.remote_data))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                out.set_exception(exc)

        inner.add_done_callback(done)
        return out, 0

    def restart(self, generation: int) -> None:
        """Nothing to restart here: the service replaces lost workers."""

    def close(self) -> None:
        """Shut the SDK's executor down without waiting; its pending futures are cancelled."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def open_endpoint(endpoint: str, engine: str = "process", workers: int | None = None,
                  worker_init: str = "", run_dir: str | None = None):
    """`local`: this machine's engine; a UUID: that Globus Compute endpoint."""
    if endpoint == "local":
        return LocalEndpoint(engine, workers, worker_init, run_dir)
    try:
        uuid.UUID(str(endpoint))
    except ValueError:
        raise ServableError(f"endpoint must be 'local' or a Globus Compute endpoint UUID, "
                            f"not {endpoint!r}") from None
    return GlobusEndpoint(str(endpoint), read_registry())


