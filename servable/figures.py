"""One way to make a figure file: headless backend, tight layout, saved atomically, closed."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from servable.files import atomic_output


def save(fig, path, dpi: int = 120, force: bool = False) -> Path:
    """Write `fig` to `path` (PNG or PDF by its suffix) through `servable.files`: never over
    an existing file without `force`, never inside a bundle."""
    path = Path(path)
    with atomic_output(path, force=force) as f:
        fig.savefig(f, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    return path


@contextmanager
def figure(path, figsize=(5, 4), dpi: int = 120, nrows: int = 1, ncols: int = 1, *,
           force: bool = False, **kw):
    """Yield (fig, axes) and write `path` (PNG or PDF by its suffix) when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kw)
    try:
        yield fig, axes
        if not kw.get("layout"):
            fig.tight_layout()
        save(fig, path, dpi, force)
    finally:
        plt.close(fig)
