"""YAML from files a user did not write: plain data only, no tags, no aliases, bounded size.

`yaml.safe_load` already refuses Python tags; aliases are refused too, since a few lines of
nested aliases ("billion laughs") expand to more objects than memory holds as soon as the
data is walked or dumped. Manifests and metadata records never need them.
"""

from __future__ import annotations

import yaml

from servable.errors import ServableError

MAX_YAML_BYTES = 16 << 20


def load(text: str, where: str):
    """The plain data in `text` (from `where`, named in errors)."""
    if len(text) > MAX_YAML_BYTES:
        raise ServableError(f"{where}: {len(text)} characters, more than the "
                            f"{MAX_YAML_BYTES >> 20} MiB a manifest or record may have")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ServableError(f"{where}: YAML aliases (*name) are not accepted; write "
                                    "the values out")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ServableError(f"{where}: not valid YAML{at} ({exc.__class__.__name__})") from None


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:
        return True


def dump(data) -> str:
    """YAML that `load` reads back: shared objects are written out, never aliased."""
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, width=100,
                     allow_unicode=True)
