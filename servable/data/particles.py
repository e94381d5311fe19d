"""JetClass particle features: the derived inputs of the public JetClass data configurations.

JetClass files store raw particle branches (four-momenta, angles to the jet axis, impact
parameters, charge, particle-ID flags). The models of the Particle Transformer paper read
derived features computed from them (jet-universe/particle_transformer, data/JetClass/
JetClass_{kin,kinpid,full}.yaml, as weaver-core evaluates them):

    part_pt_log   = ln pT                 part_logptrel = ln(pT / jet_pt)
    part_e_log    = ln E                  part_logerel  = ln(E / jet_energy)
    part_deltaR   = hypot(deta, dphi)     part_d0, part_dz = tanh(d0val), tanh(dzval)

and standardise them as (x - a) * b clipped to [-5, 5]; d0err and dzerr are clipped to [0, 1];
deta, dphi, charge, the flags and tanh d0/dz pass unchanged. `derive` appends the derived
channels to the `particles` group of `Jets` (so every model selects its inputs by name, as it does
on the CMS layout); `preprocessing` expresses the standardisation in the declared form that
`servable.models.preprocessing.Standardize` applies inside the network (centre a, scale 1/b,
clip 5), so ONNX exports carry it. Padded slots stay exactly zero throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from servable.data import jetobservables, schema
from servable.data.jets import InvalidJetsError, Jets

RAW = schema.names(schema.JETCLASS_PARTICLE_FEATURES)
DERIVED = schema.names(schema.JETCLASS_DERIVED_FEATURES)
JET = schema.names(schema.JETCLASS_JET_FEATURES)
VECTORS = ("part_px", "part_py", "part_pz", "part_energy")
POINTS = ("part_deta", "part_dphi")

_KIN = ("part_pt_log", "part_e_log", "part_logptrel", "part_logerel", "part_deltaR")
_PID = ("part_charge", "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
        "part_isElectron", "part_isMuon")
_DISPLACEMENT = ("part_d0", "part_d0err", "part_dz", "part_dzerr")
# the particle features of each public configuration, in the order its models read them
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "kin": (*_KIN, *POINTS),
    "kinpid": (*_KIN, *_PID, *POINTS),
    "full": (*_KIN, *_PID, *_DISPLACEMENT, *POINTS),
}
# (x - subtract) * multiply, clipped to [-limit, limit]; features absent pass unchanged
_STANDARDISE = {"part_pt_log": (1.7, 0.7), "part_e_log": (2.0, 0.7),
                "part_logptrel": (-4.7, 0.7), "part_logerel": (-4.7, 0.7),
                "part_deltaR": (0.2, 4.0)}
_LIMIT = 5.0
_UNIT_CLIP = ("part_d0err", "part_dzerr")  # clipped to [0, 1]; both are never negative


def derived_features(raw: Mapping[str, np.ndarray], jet_pt, jet_energy) -> dict[str, np.ndarray]:
    """The derived channels from raw particle arrays (n, slots) and per-jet pT and energy.

    Padded slots (energy 0) give 0 in every derived channel."""
    px, py = (np.asarray(raw[k], np.float32) for k in ("part_px", "part_py"))
    energy = np.asarray(raw["part_energy"], np.float32)
    filled = energy > 0
    pt = np.hypot(px, py)
    jet_pt = np.asarray(jet_pt, np.float32)[:, None]
    jet_energy = np.asarray(jet_energy, np.float32)[:, None]

    def log(x):
        return np.where(filled, np.log(np.where(filled, x, 1.0)), 0.0).astype(np.float32)

    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "part_pt_log": log(pt),
            "part_e_log": log(energy),
            "part_logptrel": log(pt / jet_pt),
            "part_logerel": log(energy / jet_energy),
        }
    out["part_deltaR"] = np.hypot(np.asarray(raw["part_deta"], np.float32),
                                  np.asarray(raw["part_dphi"], np.float32))
    out["part_d0"] = np.tanh(np.asarray(raw["part_d0val"], np.float32))
    out["part_dz"] = np.tanh(np.asarray(raw["part_dzval"], np.float32))
    for key in ("part_deltaR", "part_d0", "part_dz"):
        out[key] = np.where(filled, out[key], 0.0).astype(np.float32)
    return out


def derive(jets: Jets) -> Jets:
    """JetClass-layout jets with the derived channels appended to the `particles` group (a
    no-op when they are there already)."""
    if not jets.has("particles"):
        raise InvalidJetsError(
            f"cannot compute the JetClass particle features: these jets have no 'particles' "
            f"group (they hold {', '.join(jets.groups)}); read the file with "
            "servable.data.jetclass.read_jetclass")
    part = jets.group("particles")
    names = list(part.features)
    if all(d in names for d in DERIVED):
        return jets
    missing = [n for n in (*VECTORS, "part_deta", "part_dphi", "part_d0val", "part_dzval")
               if n not in names]
    missing += [n for n in ("jet_pt", "jet_energy") if n not in jets.jet_feature_names]
    if missing:
        raise InvalidJetsError(
            f"cannot compute the JetClass particle features: missing {', '.join(missing)} "
            "(read the file with servable.data.jetclass.read_jetclass)")
    raw = {n: part.column(n) for n in names}
    jet = jets.group("jet_features")
    new = derived_features(raw, jet.column("jet_pt"), jet.column("jet_energy"))
    add = [d for d in DERIVED if d not in names]
    return jets.replace(part.with_features(add, np.stack([new[d] for d in add], axis=1)))


def preprocessing(names: Sequence[str]) -> dict:
    """The JetClass standardisation of `names`, as a `Standardize` spec."""
    centre, scale, clip = [], [], []
    for name in names:
        a, b = _STANDARDISE.get(name, (0.0, 1.0))
        centre.append(a)
        scale.append(1.0 / b)
        clip.append(_LIMIT if name in _STANDARDISE else 1.0 if name in _UNIT_CLIP else 0.0)
    return {"features": list(names), "centre": centre, "scale": scale, "clip": clip}


def complete(jets: Jets) -> Jets:
    """JetClass-layout jets with every derived quantity: the particle channels (`derive`) and
    the jet observables (`servable.data.jetobservables.derive`); a no-op when present."""
    return jetobservables.derive(derive(jets))


def jets_from_arrays(arrays: Mapping[str, np.ndarray], labels=None,
                     class_names: Sequence[str] = schema.JETCLASS_CLASSES) -> Jets:
    """JetClass-layout `Jets` (derived channels and jet observables included) from raw branch
    arrays: the 16
    `part_*` arrays (n, slots), zero-padded after the filled slots, and the `jet_*` arrays (n,)
    of `schema.JETCLASS_JET_FEATURES`."""
    missing = [k for k in (*RAW, *JET) if k not in arrays]
    if missing:
        raise InvalidJetsError(f"missing JetClass arrays {', '.join(missing)}")
    particles = np.stack([np.asarray(arrays[k], np.float32) for k in RAW], axis=1)
    jet = np.stack([np.asarray(arrays[k], np.float32) for k in JET], axis=1)
    jets = Jets({"particles": (particles, RAW), "jet_features": (jet, JET)}, labels,
                class_names=tuple(class_names))
    return complete(jets)
