"""Jets of similar multiplicity together: the groups in which explanation methods run a model.

The slotted models cost what their widest jet costs (ParT trims each batch to its widest jet
and pays for attention over every pair of slots; the IN buckets by track count), so methods
that evaluate many points per jet (path points, samples, masked copies) sort them by multiplicity
and cut them into groups of a bounded number of track pairs. Grouping is exact: no result
depends on which jets share a group.
"""

from __future__ import annotations

import numpy as np

from servable.data.jets import filled_slots
from servable.models.batching import bucket_chunks
from servable.models.spec import leading_slotted

# track pairs per group of points: large enough that the model's own batching is efficient,
# small enough that a group's activations and gradients stay near the cache (measured on 2
# cores: 2^16 is the fastest for ParT, within noise of 2^17 for the IN)
GROUP_PAIRS = 1 << 16


def similar_multiplicity_groups(inputs: dict, copies: int = 1,
                                budget: int = GROUP_PAIRS) -> list[np.ndarray]:
    """Indices of the jets sorted by track multiplicity (filled slots come first, so it is
    the width ParT trims to), cut into groups of at most `budget` track pairs once every jet
    is evaluated `copies` times (at least one jet per group). Without a slotted input
    (tracks, particles) every jet costs one pair."""
    slotted = leading_slotted(inputs)
    n = len(next(iter(inputs.values())))
    counts = np.asarray(filled_slots(slotted)) if slotted is not None else np.ones(n, np.int64)
    return [idx for idx, _ in bucket_chunks(counts, max(budget // max(copies, 1), 1))]
