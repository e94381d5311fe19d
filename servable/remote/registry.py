"""The function registry: which shipped functions are registered with the Globus Compute
service, under which id, for which source.

The registry file ($SERVABLE_FUNCTION_REGISTRY, default ~/.servable/functions.json) maps each
shipped function's name to its source digest, serialized size and function id. A call reuses a
registered id only while the function's source digest still matches, so a changed function is
sent by source (or registered again) instead of run stale.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

from servable.errors import ServableError
from servable.files import read_text, write_json

REGISTRY_ENV = "SERVABLE_FUNCTION_REGISTRY"


def function_digest(fn) -> str:
    """SHA-256 of a function's source: what a registration is valid for."""
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


def registry_path() -> Path:
    """The registry file: $SERVABLE_FUNCTION_REGISTRY, else ~/.servable/functions.json."""
    return Path(os.environ.get(REGISTRY_ENV) or Path.home() / ".servable" / "functions.json")


def read_registry() -> dict:
    """The registry (function name -> source digest, size, function id); empty when the file
    does not exist, ServableError when it is not valid JSON."""
    path = registry_path()
    if not path.exists():
        return {}
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError:
        raise ServableError(f"{path}: not valid JSON; delete it and run `servable remote "
                            "register` again") from None


def registered_id(registry: dict, fn) -> str | None:
    """The function id recorded for `fn`, or None when absent or recorded for other source."""
    entry = registry.get(fn.__name__) or {}
    if entry.get("sha256") == function_digest(fn) and entry.get("function_id"):
        return entry["function_id"]
    return None


def register_functions(functions: dict, serde, register_function=None) -> Path:
    """Record every shipped function (registering it first when `register_function` is
    given: the SDK executor's `register_function`); returns the registry's path."""
    registry = {}
    for name, fn in functions.items():
        registry[name] = {"sha256": function_digest(fn),
                          "serialized_bytes": len(serde.serialize(fn)),
                          "function_id": (str(register_function(fn)) if register_function
                                          else None)}
    return write_json(registry_path(), registry, force=True)
