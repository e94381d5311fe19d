"""servable: FAIR, deployable HEP jet-tagger servables with an explainability bench.

Layers import one way: data -> models -> runtimes -> bundle -> explain -> publish -> remote
-> cli (docs/architecture.md).
"""

from servable.data.h5io import iter_jets, write_jets
from servable.data.io import read_jets
from servable.data.jets import InvalidJetsError, Jets, validate_jets
from servable.errors import ServableError
from servable.version import __version__


def load(ref, native: bool = True, digest: str | None = None):
    """Verify and open a servable bundle by path, name, DOI (retrieved and cached) or Zenodo
    record URL: `predict`, `logits`, `explain`. The native model (torch or XGBoost) loads on
    first use; predicting with `runtime="onnx"` needs neither it nor torch. `native=False`
    forbids it. `digest`: the content digest (sha256:...) the bundle must have."""
    from servable.bundle.bundle import open_bundle
    from servable.explain import Servable

    return open_bundle(ref, native, cls=Servable, digest=digest)


__all__ = [
    "InvalidJetsError", "Jets", "ServableError", "__version__", "iter_jets", "load", "read_jets",
    "validate_jets", "write_jets",
]
