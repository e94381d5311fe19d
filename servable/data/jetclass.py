"""JetClass ROOT files read with uproot into the `Jets` container, particle-level.

Particles fill the `tracks` array (n, 16 + 7, max_particles), channels-first, zero-padded in
the file's order (JetClass stores them by decreasing pT): the raw branches, then the derived
features of `servable.data.particles`; the jet observables of `servable.data.jetobservables`
follow the jet branches. JetClass has no secondary-vertex collection, so `vertices` has no
features and no slots. Labels are the ten one-hot JetClass classes.
"""

from __future__ import annotations

import numpy as np

from servable.data import schema
from servable.data.jets import Jets
from servable.data.particles import complete
from servable.errors import ServableError
from servable.files import regular_file

PARTICLE_BRANCHES = schema.names(schema.JETCLASS_PARTICLE_FEATURES)
JET_BRANCHES = schema.names(schema.JETCLASS_JET_FEATURES)
CLASS_NAMES = schema.JETCLASS_CLASSES
LABEL_BRANCHES = tuple(f"label_{c}" for c in CLASS_NAMES)

def _open_tree(path, tree: str):
    import uproot

    try:
        f = uproot.open(path)
    except Exception as exc:
        raise ServableError(f"{path}: not a readable ROOT file ({exc})") from None
    if tree not in f:
        f.close()
        raise ServableError(f"{path}: no TTree '{tree}' (JetClass files keep jets in 'tree')")
    return f


def count_jets(path, tree: str = "tree") -> int:
    """How many jets (entries of `tree`) a JetClass ROOT file holds."""
    with _open_tree(regular_file(path), tree) as f:
        return int(f[tree].num_entries)


def iter_jetclass(path, chunk_size: int, tree: str = "tree", max_particles: int = 128):
    """The jets of a JetClass ROOT file, `chunk_size` at a time."""
    path = regular_file(path)
    for start in range(0, count_jets(path, tree), chunk_size):
        yield read_jetclass(path, max_particles, tree, start, start + chunk_size)


def read_jetclass(path, max_particles: int = 128, tree: str = "tree",
                  entry_start: int = 0, entry_stop: int | None = None) -> Jets:
    """Read a JetClass ROOT file into `Jets` (particles as the track collection)."""
    import awkward as ak

    path = regular_file(path)
    with _open_tree(path, tree) as f:
        t = f[tree]
        missing = [b for b in (*PARTICLE_BRANCHES, *JET_BRANCHES, *LABEL_BRANCHES)
                   if b not in t.keys()]
        if missing:
            raise ServableError(f"{path}: missing JetClass branches {', '.join(missing)}")
        arrays = t.arrays([*PARTICLE_BRANCHES, *JET_BRANCHES, *LABEL_BRANCHES],
                          entry_start=entry_start, entry_stop=entry_stop)
    n = len(arrays)
    particles = np.zeros((n, len(PARTICLE_BRANCHES), max_particles), np.float32)
    for i, branch in enumerate(PARTICLE_BRANCHES):
        padded = ak.fill_none(ak.pad_none(arrays[branch], max_particles, clip=True), 0.0)
        particles[:, i, :] = ak.to_numpy(padded)
    jet = np.stack([ak.to_numpy(arrays[b]) for b in JET_BRANCHES], axis=1).astype(np.float32)
    labels = np.stack([ak.to_numpy(arrays[b]) for b in LABEL_BRANCHES], 1).astype(np.float32)
    jets = Jets(
        tracks=particles, vertices=np.zeros((n, 0, 0), np.float32), jet_features=jet,
        labels=labels, track_names=PARTICLE_BRANCHES, vertex_names=(),
        jet_feature_names=JET_BRANCHES, class_names=CLASS_NAMES,
    )
    return complete(jets)
