"""Options that choose what a model is trained on and how big it is: `--drop-features`,
`--track-features`, `--vertex-features` (names, comma-separated) and the size options
(`--hidden`, `--De`, `--Do`), shared by `servable train` and `servable ablate`."""

from __future__ import annotations

from pathlib import Path

SIZE_OPTIONS = ("hidden", "De", "Do")


def names(text: str | None, option: str) -> list[str] | None:
    """A comma-separated list of feature names (None when the option is not given)."""
    from servable.cli.common import fail

    if text is None:
        return None
    out = [n.strip() for n in text.split(",") if n.strip()]
    if not out:
        fail(f"--{option} must list feature names separated by commas, not {text!r}")
    return out


def sizes(model: str, given: dict[str, str | None]) -> dict:
    """The hyperparameters the size options set, typed like the model's defaults (an
    integer, or for the MLP's `hidden` a list of widths such as 128,64)."""
    from servable.cli.common import fail
    from servable.models.taggers import TAGGERS

    defaults = TAGGERS[model].defaults
    out = {}
    for key, text in given.items():
        if text is None:
            continue
        if key not in defaults:
            having = sorted(k for k, t in TAGGERS.items() if key in t.defaults)
            fail(f"--{key} is a size of the {', '.join(having)} model, not of {model}")
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        wants_list = isinstance(defaults[key], list)
        if not values or min(values) < 1 or (len(values) > 1 and not wants_list):
            shape = "positive integers separated by commas" if wants_list else \
                "a positive integer"
            fail(f"--{key} must be {shape}, not {text!r}")
        out[key] = values if wants_list else values[0]
    return out


def check_features(data: Path, model: str, feature_set: str,
                   keep: dict[str, list[str] | None], drop: list[str]) -> None:
    """Refuse, before any training, feature names a `model` on this data does not read (one
    line)."""
    from servable.data.io import read_jets
    from servable.models.spec import chosen_features
    from servable.models.taggers import FEATURE_KEYS, feature_config

    if not drop and not any(keep.values()):
        return
    base = feature_config(model, read_jets(data, 0, 1), feature_set)
    chosen_features({group: base[key] for group, key in FEATURE_KEYS.items()}, keep, drop)
