"""weaver's `preprocess.json` (what CMSSW's ONNX taggers read): parsed, checked and written.

weaver-core writes it when it exports a model (`DataConfig.export_json`) and CMSSW reads it
(`RecoBTag/FeatureTools`, `ParticleNetConstructor`, `center_norm_pad`): `input_names` (the
ONNX inputs, in order), `output_names` (the class labels), and per input `var_names`,
`var_length` (or `min_length` and `max_length`) and `var_infos`, per variable `median`,
`norm_factor`, `replace_inf_value`, `lower_bound`, `upper_bound` and `pad`. CMSSW fills an
input of n particles to clamp(n, min_length, max_length) slots: slot i < n holds
clamp((x_i - median) * norm_factor, lower_bound, upper_bound), x_i replaced by
replace_inf_value when it is not finite or beyond 1e32; the other slots hold `pad`.

Every refusal is one line that names the input, the variable and the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from servable.errors import ServableError
from servable.files import read_text, regular_file

NO_BOUND = 1e32  # weaver's bounds for an unbounded variable
VAR_KEYS = ("median", "norm_factor", "replace_inf_value", "lower_bound", "upper_bound")
GROUP_KEYS = ("var_names", "var_infos", "var_length", "min_length", "max_length")
MASK_SUFFIX = "_mask"  # a variable named *_mask is 1 for every real particle (part_mask)


class PreprocessError(ServableError):
    """A preprocess.json that CMSSW would not read, or would read differently from us."""


@dataclass(frozen=True)
class VarInfo:
    """One variable's transform: clamp((x - median) * norm_factor, lower, upper), pad."""

    median: float = 0.0
    norm_factor: float = 1.0
    replace_inf_value: float = 0.0
    lower_bound: float = -NO_BOUND
    upper_bound: float = NO_BOUND
    pad: float = 0.0

    def to_json(self) -> dict:
        """The entry as weaver writes it."""
        return {"median": self.median, "norm_factor": self.norm_factor,
                "replace_inf_value": self.replace_inf_value, "lower_bound": self.lower_bound,
                "upper_bound": self.upper_bound, "pad": self.pad}


@dataclass(frozen=True)
class InputBlock:
    """One ONNX input: its variables in order, their transforms and its length range."""

    name: str
    var_names: tuple[str, ...]
    infos: dict
    min_length: int
    max_length: int

    def to_json(self) -> dict:
        """The input's entry: var_length when the length is fixed, else min/max_length."""
        entry: dict = {"var_names": list(self.var_names),
                       "var_infos": {v: self.infos[v].to_json() for v in self.var_names}}
        if self.min_length == self.max_length:
            entry["var_length"] = self.max_length
        else:
            entry["min_length"], entry["max_length"] = self.min_length, self.max_length
        return entry


@dataclass(frozen=True)
class Preprocess:
    """A whole preprocess.json: the inputs in ONNX order and the output (class) names."""

    inputs: tuple[InputBlock, ...]
    output_names: tuple[str, ...]

    def __getitem__(self, name: str) -> InputBlock:
        return next(b for b in self.inputs if b.name == name)

    def to_json(self) -> dict:
        """The document, keys in weaver's order."""
        out: dict = {"output_names": list(self.output_names),
                     "input_names": [b.name for b in self.inputs]}
        out.update({b.name: b.to_json() for b in self.inputs})
        return out


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PreprocessError(f"{where} must be a finite number, not "
                              f"{type(value).__name__} {json.dumps(value)[:40]}")
    return float(value)


def _length(value, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PreprocessError(f"{where} must be an integer >= {low}, not "
                              f"{type(value).__name__} {json.dumps(value)[:40]}")
    return value


def _names(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v
                                                           for v in value):
        raise PreprocessError(f"{where} must be a non-empty list of names, not "
                              f"{json.dumps(value)[:60]}")
    doubled = sorted({v for v in value if value.count(v) > 1})
    if doubled:
        raise PreprocessError(f"{where} names {doubled[0]!r} twice")
    return tuple(value)


def _var_info(entry, where: str) -> VarInfo:
    if not isinstance(entry, dict):
        raise PreprocessError(f"{where} must be an object of {', '.join(VAR_KEYS)}, pad; not "
                              f"{type(entry).__name__}")
    unknown = [k for k in entry if k not in (*VAR_KEYS, "pad")]
    if unknown:
        raise PreprocessError(f"{where}: unknown key {unknown[0]!r} (CMSSW reads "
                              f"{', '.join(VAR_KEYS)} and pad)")
    missing = [k for k in VAR_KEYS if k not in entry]
    if missing:
        raise PreprocessError(f"{where}: missing key {missing[0]!r} (CMSSW requires it)")
    info = VarInfo(**{k: _number(entry[k], f"{where}.{k}") for k in VAR_KEYS},
                   pad=_number(entry.get("pad", 0), f"{where}.pad"))
    if not info.lower_bound <= info.pad <= info.upper_bound:
        raise PreprocessError(f"{where}: pad {info.pad:g} must lie within [lower_bound, "
                              f"upper_bound] = [{info.lower_bound:g}, {info.upper_bound:g}] "
                              "(CMSSW asserts it)")
    return info


def _block(name: str, entry, where: str) -> InputBlock:
    here = f"{where}: {name}"
    if not isinstance(entry, dict):
        raise PreprocessError(f"{here} must be an object with var_names, var_infos and "
                              f"var_length, not {type(entry).__name__}")
    unknown = [k for k in entry if k not in GROUP_KEYS]
    if unknown:
        raise PreprocessError(f"{here}: unknown key {unknown[0]!r} (an input has "
                              f"{', '.join(GROUP_KEYS)})")
    var_names = _names(entry.get("var_names"), f"{here}.var_names")
    infos = entry.get("var_infos")
    if not isinstance(infos, dict):
        raise PreprocessError(f"{here}.var_infos must be an object keyed by variable, not "
                              f"{type(infos).__name__}")
    missing = [v for v in var_names if v not in infos]
    if missing:
        raise PreprocessError(f"{here}: variable {missing[0]!r} is in var_names but has no "
                              "entry in var_infos")
    if "var_length" in entry:
        if "min_length" in entry or "max_length" in entry:
            raise PreprocessError(f"{here}: give var_length or min_length/max_length, not both")
        low = high = _length(entry["var_length"], f"{here}.var_length", 1)
    elif "min_length" in entry and "max_length" in entry:
        low = _length(entry["min_length"], f"{here}.min_length", 0)
        high = _length(entry["max_length"], f"{here}.max_length", 1)
        if low > high:
            raise PreprocessError(f"{here}: min_length {low} exceeds max_length {high}")
    else:
        raise PreprocessError(f"{here}: missing var_length (or min_length and max_length)")
    return InputBlock(name, var_names,
                      {v: _var_info(infos[v], f"{here}.var_infos.{v}") for v in var_names},
                      low, high)


def parse_preprocess(data, where: str) -> Preprocess:
    """The preprocess.json document `data` (parsed JSON), checked as CMSSW reads it."""
    if not isinstance(data, dict):
        raise PreprocessError(f"{where}: expected a JSON object with input_names, not "
                              f"{type(data).__name__}")
    for key in ("input_names", "output_names"):
        if key not in data:
            raise PreprocessError(f"{where}: missing {key}")
    names = _names(data["input_names"], f"{where}: input_names")
    outputs = _names(data["output_names"], f"{where}: output_names")
    absent = [n for n in names if n not in data]
    if absent:
        raise PreprocessError(f"{where}: input {absent[0]!r} is in input_names but has no "
                              "entry")
    return Preprocess(tuple(_block(n, data[n], where) for n in names), outputs)


def read_preprocess(path) -> Preprocess:
    """A preprocess.json file, read and checked (one line naming what is wrong)."""
    path = Path(path)
    regular_file(path)
    try:
        data = json.loads(read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PreprocessError(f"{path}: not valid JSON ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0][:80]})") from None
    return parse_preprocess(data, str(path))


def bounds(clip: float) -> tuple[float, float]:
    """servable's symmetric clip (0: none) as weaver's (lower_bound, upper_bound)."""
    return (-clip, clip) if clip > 0 else (-NO_BOUND, NO_BOUND)
