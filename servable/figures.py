"""One way to make a figure file: headless backend, tight layout, saved, closed."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def figure(path, figsize=(5, 4), dpi: int = 120, nrows: int = 1, ncols: int = 1, **kw):
    """Yield (fig, axes) and write `path` (PNG or PDF by its suffix) when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kw)
    try:
        yield fig, axes
        if not kw.get("layout"):
            fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
