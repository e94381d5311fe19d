"""JSON-safe task data: NumPy arrays as tagged base64 records, so no task needs pickle.

The shipped functions travel as source text and their arguments and results as JSON
(`globus_compute_sdk.serialize.JSONData`), so an endpoint whose `allowed_serializers` admits
only source-text code and JSON data runs them (`servable.remote.endpoints.PICKLE_FREE`).
An array becomes {"__ndarray__": base64 of its little-endian bytes, "dtype": "<f4",
"shape": [n, ...]}; NumPy scalars become Python numbers, tuples lists. Decoding accepts only
plain numeric dtypes and checks that the bytes match the shape, so a hostile record is one
clear error, never an object.
"""

from __future__ import annotations

import base64
import binascii
import math
import numbers

import numpy as np

from servable.errors import ServableError

TAG = "__ndarray__"
# the dtypes a record may name: numbers and booleans only (never object or structured)
DTYPES = frozenset(np.dtype(t).newbyteorder("<").str for t in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64"))


class InvalidTaskData(ServableError):
    """A task's JSON data that cannot be turned back into arrays."""


def to_json_safe(value, where: str = "value"):
    """`value` with every NumPy array and scalar replaced by JSON types.

    Raises
    ------
    TypeError
        naming the path of a value JSON cannot carry (an object, a path, bytes).
    """
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype.str not in DTYPES:
            raise TypeError(f"{where}: arrays of dtype {array.dtype} cannot be sent as task "
                            "data; convert to a numeric dtype")
        array = array.astype(dtype.newbyteorder("<"), copy=False)
        return {TAG: base64.b64encode(array.tobytes()).decode("ascii"),
                "dtype": array.dtype.str, "shape": list(array.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string; JSON keys are strings")
            out[key] = to_json_safe(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{where}: a {type(value).__name__} cannot be sent as task data (JSON "
                    "types and NumPy arrays only)")


def _array(record: dict, where: str) -> np.ndarray:
    if set(record) != {TAG, "dtype", "shape"}:
        raise InvalidTaskData(f"{where}: an array record has the keys {TAG!r}, 'dtype' and "
                              f"'shape', not {sorted(record)}")
    dtype, shape, data = record["dtype"], record["shape"], record[TAG]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InvalidTaskData(f"{where}: dtype {dtype!r} is not one of {sorted(DTYPES)}")
    if not isinstance(shape, list) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0
            for d in shape):
        raise InvalidTaskData(f"{where}: shape must be a list of non-negative integers, "
                              f"not {shape!r}")
    if not isinstance(data, str):
        raise InvalidTaskData(f"{where}: the array's data must be a base64 string")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    # the decoded size, known before decoding: a huge shape cannot make us allocate
    if len(data) != 4 * math.ceil(expected / 3):
        raise InvalidTaskData(f"{where}: shape {shape} of {dtype} needs {expected} bytes; "
                              f"the data holds about {len(data) * 3 // 4}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidTaskData(f"{where}: the array's data is not valid base64") from None
    if len(raw) != expected:
        raise InvalidTaskData(f"{where}: shape {shape} of {dtype} needs {expected} bytes, "
                              f"the data holds {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.dtype(dtype).newbyteorder(
        "="), copy=True)


def from_json_safe(value, where: str = "value"):
    """The inverse of `to_json_safe`: array records back to arrays (native byte order,
    writable); anything else returned as it is.

    Raises
    ------
    InvalidTaskData
        for an array record with an unknown dtype, a bad shape or bytes that do not match.
    """
    if isinstance(value, dict):
        if TAG in value:
            return _array(value, where)
        return {k: from_json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
