"""The one exception type for user mistakes (the CLI prints its message as one line, exit 2),
and the one check of a count given as an argument (batch size, number of jets, repeats)."""

from __future__ import annotations

import numbers


class ServableError(Exception):
    """A user-facing error: bad input, a missing file, a tampered bundle. One clear line."""


def check_int(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """`value` when it is an integer in [minimum, maximum]; a ServableError naming the
    argument, the range and what was given otherwise (never a silent reinterpretation)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ServableError(f"{name} must be an integer {bounds}, not {value!r}")
    return int(value)
