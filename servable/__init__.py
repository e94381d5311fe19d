"""servable: FAIR, deployable HEP jet-tagger servables with an explainability bench.

Layers import one way: data -> models -> runtimes -> bundle -> explain -> remote -> cli.
"""

from servable.data.h5io import iter_jets, read_jets, write_jets
from servable.data.jets import InvalidJetsError, Jets, validate_jets
from servable.errors import ServableError
from servable.version import __version__


def load(path):
    """Verify and load a servable bundle: `predict`, `logits`, `explain`."""
    from servable.explain import load as _load

    return _load(path)


__all__ = [
    "InvalidJetsError", "Jets", "ServableError", "__version__", "iter_jets", "load", "read_jets",
    "validate_jets", "write_jets",
]
