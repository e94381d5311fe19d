"""Pickle-free tasks: JSON-safe task data, and an engine that admits only source-text code
and JSON data running the shipped functions through its own deserialising path."""

import json
import uuid

import numpy as np
import pytest

from servable.remote import functions
from servable.remote.endpoints import PICKLE_FREE, RESULT_SERIALIZERS, serializer
from servable.remote.jsondata import InvalidTaskData, from_json_safe, to_json_safe


def test_arrays_round_trip_through_json_exactly():
    rng = np.random.default_rng(3)
    data = {"f32": rng.normal(size=(5, 3, 7)).astype(np.float32),
            "f64": np.array([np.nan, np.inf, -0.0, 1e-300]),
            "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
            "bool": np.array([True, False]), "empty": np.zeros((0, 4), np.float32),
            "names": ("a", "b"), "scalar": np.float32(0.25), "nested": [{"n": np.int64(7)}]}
    text = json.dumps(to_json_safe(data))
    back = from_json_safe(json.loads(text))
    for key in ("f32", "f64", "bool", "empty"):
        assert back[key].dtype == data[key].dtype and back[key].shape == data[key].shape
        assert np.array_equal(back[key], data[key], equal_nan=True)
        assert back[key].flags.writeable
    assert np.signbit(back["f64"][2])
    assert back["big_endian"].dtype == np.int32 and back["big_endian"].tolist() == [
        [0, 1, 2], [3, 4, 5]]
    assert back["names"] == ["a", "b"] and back["scalar"] == 0.25
    assert back["nested"] == [{"n": 7}] and type(back["nested"][0]["n"]) is int


@pytest.mark.parametrize("value, message", [
    (np.array([object()]), "dtype object"),
    ({"p": b"bytes"}, "p: a bytes"),
    ({1: 2}, "key 1 is not a string"),
])
def test_what_json_cannot_carry_is_named(value, message):
    with pytest.raises(TypeError, match=message):
        to_json_safe(value)


GOOD = {"__ndarray__": "AACAPwAAAEA=", "dtype": "<f4", "shape": [2]}  # [1.0, 2.0]


@pytest.mark.parametrize("change, message", [
    ({"dtype": "|O"}, "dtype '|O' is not one of"),
    ({"dtype": "<U4"}, "is not one of"),
    ({"shape": [3]}, r"needs 12 bytes"),
    ({"shape": [10 ** 12, 10 ** 6]}, "needs"),  # refused before decoding anything
    ({"shape": [-2]}, "non-negative integers"),
    ({"shape": "2"}, "non-negative integers"),
    ({"__ndarray__": "AACAPwAAAE!="}, "not valid base64"),
    ({"extra": 1}, "an array record has the keys"),
])
def test_hostile_array_records_are_one_clear_error(change, message):
    assert from_json_safe(GOOD).tolist() == [1.0, 2.0]
    with pytest.raises(InvalidTaskData, match=message):
        from_json_safe({"jets": {"tracks": {**GOOD, **change}}})


def _engine_result(engine, task_buffer: str):
    """Run one packed task through the engine as the endpoint does, and return the result
    message (unpacked)."""
    from globus_compute_common import messagepack
    from globus_compute_common.messagepack.message_types import Task
    from globus_compute_endpoint.engines import GCFuture

    task_id = uuid.uuid4()
    future = GCFuture(gc_task_id=task_id)
    engine.submit(future, messagepack.pack(Task(task_id=task_id, task_buffer=task_buffer)),
                  resource_specification={}, result_serializers=RESULT_SERIALIZERS)
    return messagepack.unpack(future.result(timeout=300))


@pytest.fixture(scope="module")
def restricted_engine(tmp_path_factory):
    """The engine an endpoint runs with `allowed_serializers` = source text and JSON only."""
    from globus_compute_endpoint.engines import ThreadPoolEngine

    engine = ThreadPoolEngine(max_workers=1, allowed_serializers=list(PICKLE_FREE))
    engine.start(endpoint_id=uuid.uuid4(), run_dir=str(tmp_path_factory.mktemp("ep")))
    yield engine
    engine.shutdown()


def test_restricted_endpoint_runs_predict_and_refuses_pickle(restricted_engine,
                                                              published_bundle, test_file):
    from globus_compute_sdk.serialize import ComputeSerializer, DillCode, DillDataBase64

    from servable import read_jets
    from servable.remote.encoding import compact_arrays, jets_to_arrays

    jets = read_jets(test_file)[:50]
    arrays = compact_arrays(jets_to_arrays(jets))
    serde = serializer()
    args = to_json_safe((str(published_bundle), arrays), "args")
    buffers = [serde.serialize(functions.predict), serde.serialize(args), serde.serialize({})]
    # source text and JSON, as the SDK's identifiers say
    assert [b[:3] for b in buffers] == ["st\n", "11\n", "11\n"]
    result = _engine_result(restricted_engine, serde.pack_buffers(buffers))
    assert not result.is_error, result.data
    assert result.data.startswith("11\n")  # the result came back as JSON, not dill
    out = from_json_safe(serde.deserialize(result.data))
    import servable

    expected = servable.load(published_bundle).predict(jets, runtime="torch")
    assert out["probabilities"].shape == expected.shape
    assert np.abs(out["probabilities"] - expected).max() <= 1e-6

    # the same task with pickled arguments, or a pickled function, is refused by the engine
    dill = ComputeSerializer(strategy_code=DillCode(), strategy_data=DillDataBase64())
    for bad in ([buffers[0], dill.serialize(args), buffers[2]],
                [dill.serialize(functions.predict), buffers[1], buffers[2]]):
        refused = _engine_result(restricted_engine, serde.pack_buffers(bad))
        assert refused.is_error
        assert "disabled by current configuration" in refused.data, refused.data[-500:]
        assert ("DillDataBase64" if bad[1] is not buffers[1] else "DillCode") in refused.data


def test_local_endpoint_engines_use_the_restriction():
    from servable.remote.endpoints import LocalEndpoint

    endpoint = LocalEndpoint("process", workers=1)
    try:
        allowed = {t.__name__ for t in endpoint.engine.serde.allowed_deserializer_types}
        assert allowed == {"PureSourceTextInspect", "JSONData"}
    finally:
        endpoint.close()
