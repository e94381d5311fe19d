"""Taggers: one interface over the IN, MLP, ParT, ParticleNet and BDT.

A tagger is built from a plain config dict (what the bundle manifest stores): its kind,
hyperparameters, the names of the features it reads and its preprocessing. It declares
what it reads (`input_spec()`), its framework (`torch` or `xgboost`: which training loop,
ONNX exporter and native runtime serve it), and saves and loads its own weights
(`weights_file`, `weights_bytes`, `load_weights`). `inputs(jets)` picks the model's
features by name from full-layout jets and returns the arrays the network consumes, in ONNX
input order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn

from servable.data import jetobservables, particles, schema
from servable.data.jets import JETCLASS, Jets, filled_slots
from servable.errors import ServableError
from servable.models.batching import bucket_chunks, probabilities
from servable.models.interaction_network import InteractionNetwork
from servable.models.nets import INNet, MLPNet, ParTNet, PNNet
from servable.models.particle_transformer import ParticleTransformer
from servable.models.preprocessing import Standardize, fit_standardization, identity
from servable.models.spec import InputGroup, InputSpec

DEFAULT_BATCH = 4096
# ParT's slot pairs per batch (jets x width^2) when jets are batched by multiplicity (the
# fastest measured on 2 cores: 2^16; 2^19 is three times slower)
PART_PAIR_BUDGET = 1 << 16
# the config key holding each input group's feature names
FEATURE_KEYS = {"tracks": "track_features", "vertices": "vertex_features",
                "jet_features": "jet_features", "particles": "particle_features"}
# the slotted groups a particle-level model (ParT, the MLP's leading slots) can read
PARTICLE_GROUPS = ("tracks", "particles")


class Tagger(ABC):
    """Base: config handling and feature selection; subclasses define the model."""

    kind: str = ""
    framework: str = ""  # torch | xgboost
    # cost grows with the track count: runtimes feed jets of similar multiplicity together
    bucket_by_multiplicity: bool = False
    weights_file: str = ""
    input_names: tuple[str, ...] = ()
    defaults: dict = {}

    def __init__(self, config: dict):
        config = dict(config)
        config.setdefault("kind", self.kind)
        config.setdefault("n_classes", 2)
        config.setdefault("class_names", list(schema.LABELS))
        config.setdefault("track_features", list(schema.TRACK_NAMES))
        config.setdefault("vertex_features", list(schema.VERTEX_NAMES))
        config.setdefault("jet_features", list(schema.JET_NAMES))
        config.setdefault("particle_features", [])
        if any(str(n).startswith("part_") for n in config["track_features"] or ()):
            raise ConfigError(
                "track_features names JetClass particle features: JetClass particles are the "
                "'particles' input group (particle_features); re-import or retrain a bundle "
                "made when they were 'tracks'")
        if not isinstance(config.get("hyperparameters", {}), dict):
            raise ConfigError("hyperparameters must be a mapping")
        config["hyperparameters"] = {**self.defaults, **config.get("hyperparameters", {})}
        config.setdefault("preprocessing", {})
        _check_config(config, self.defaults)
        self.config = config
        if not self.input_names:
            raise ConfigError(f"the {self.kind} reads at least one input group; give "
                              f"{' or '.join(FEATURE_KEYS.values())}")
        for group in self.input_names:
            if not config[FEATURE_KEYS[group]]:
                raise ConfigError(f"{FEATURE_KEYS[group]} must name at least one feature: the "
                                  f"{self.kind} reads {group}")

    @classmethod
    def jetclass_particles(cls, names: list[str]) -> list[str]:
        """The particle features a model of this kind reads on JetClass data, given a feature
        set's names (ParT adds the four-vectors its pair features need)."""
        return list(names)

    @property
    def hyper(self) -> dict:
        """The hyperparameters, defaults filled in."""
        return self.config["hyperparameters"]

    def input_spec(self) -> InputSpec:
        """What the model reads: per input group its features, slots and preprocessing."""
        n_tracks = self.hyper.get("n_tracks", schema.TRACK_SLOTS)
        slots = {"tracks": n_tracks, "particles": n_tracks,
                 "vertices": self.hyper.get("n_vertices", schema.VERTEX_SLOTS)}
        return InputSpec(tuple(
            InputGroup(name, tuple(self.config[FEATURE_KEYS[name]]), slots.get(name),
                       self.config["preprocessing"].get(name))
            for name in self.input_names))

    def inputs(self, jets: Jets) -> dict[str, np.ndarray]:
        """The arrays the network consumes, picked by feature name from full-layout jets."""
        return self.input_spec().select(jets)

    def fit_preprocessing(self, inputs: dict[str, np.ndarray]) -> dict:
        """The preprocessing to declare for a model trained on such inputs (none here)."""
        return {}

    def n_parameters(self) -> int | None:
        """The number of trainable parameters (None where it is not defined, e.g. the BDT)."""
        return None

    @abstractmethod
    def weights_bytes(self) -> bytes:
        """The weights, serialised for `weights_file` (never pickle)."""

    @abstractmethod
    def load_weights(self, raw: bytes) -> None:
        """Load weights serialised by `weights_bytes`."""

    def logits(self, jets: Jets, batch_size: int | None = None) -> np.ndarray:
        """Raw outputs (n, classes) for `jets` with the native model."""
        return self.logits_from_inputs(self.inputs(jets), batch_size)

    def predict(self, jets: Jets, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes)."""
        return self.predict_from_inputs(self.inputs(jets), batch_size)

    @abstractmethod
    def logits_from_inputs(self, inputs: dict[str, np.ndarray], batch_size=None) -> np.ndarray:
        """Raw outputs (n, classes) from already selected input arrays."""

    def predict_from_inputs(self, inputs: dict[str, np.ndarray], batch_size=None) -> np.ndarray:
        """Class probabilities from already selected input arrays."""
        return probabilities(self.logits_from_inputs(inputs, batch_size))


class ConfigError(ServableError):
    """A model configuration that cannot build a model (wrong type, impossible value)."""


def _check_config(config: dict, defaults: dict) -> None:
    """Types and ranges of a configuration: each hyperparameter like its default (a positive
    integer, a positive number, or a list of positive integers), the class list consistent,
    feature lists of names. Errors name the field, the expected and the received."""
    def bad(field, wanted, value):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ConfigError(f"{field} must be {wanted}, not {shown}")

    def positive_int(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    for key, default in defaults.items():
        v, field = config["hyperparameters"][key], f"hyperparameters.{key}"
        if isinstance(default, list) and not (isinstance(v, list) and v
                                               and all(positive_int(x) for x in v)):
            bad(field, "a list of positive integers", v)
        if isinstance(default, int) and not positive_int(v):
            bad(field, "a positive integer", v)
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if key == "dropout" and not (number and 0 <= v < 1):
            bad(field, "a probability in [0, 1)", v)
        elif isinstance(default, float) and key != "dropout" and not (
                number and 0 < v < float("inf")):
            bad(field, "a positive number", v)
    if not positive_int(config["n_classes"]) or config["n_classes"] < 2:
        bad("n_classes", "an integer of at least 2", config["n_classes"])
    names = config["class_names"]
    if not (isinstance(names, list) and len(names) == config["n_classes"]
            and all(isinstance(n, str) for n in names)):
        bad("class_names", f"a list of {config['n_classes']} names", names)
    for key in FEATURE_KEYS.values():
        v = config[key]
        if not (isinstance(v, list) and all(isinstance(n, str) for n in v)):
            bad(key, "a list of feature names", v)
    if not isinstance(config["preprocessing"], dict):
        bad("preprocessing", "a mapping", config["preprocessing"])
    for group, spec in config["preprocessing"].items():
        field = f"preprocessing.{group}"
        if group not in FEATURE_KEYS or not isinstance(spec, dict):
            bad(field, f"a mapping for one of {', '.join(FEATURE_KEYS)}", spec)
        if spec.get("features") != config[FEATURE_KEYS[group]]:
            bad(f"{field}.features", f"the {FEATURE_KEYS[group]} list", spec.get("features"))
        n = len(spec["features"])
        for key, low in (("centre", -np.inf), ("scale", 0.0), ("clip", -0.0)):
            v = spec.get(key)
            if not (isinstance(v, list) and len(v) == n and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
                    and (x > low if key == "scale" else x >= low) for x in v)):
                wanted = {"centre": "finite numbers", "scale": "positive finite numbers",
                          "clip": "finite numbers >= 0 (0: no clip)"}[key]
                bad(f"{field}.{key}", f"a list of {n} {wanted}", v)


class TorchTagger(Tagger):
    """A tagger whose model is a torch module taking `input_names` tensors in order."""

    framework = "torch"
    weights_file = "model.safetensors"
    batch_size = DEFAULT_BATCH  # jets per forward of `logits_from_inputs` unless given

    def __init__(self, config: dict):
        super().__init__(config)
        self.net = self.build_net()
        self.net.eval()

    @abstractmethod
    def build_net(self) -> nn.Module:
        """The torch module, preprocessing included, from `self.config`."""

    def _norm(self, group: str) -> nn.Module:
        """The declared preprocessing of an input group, as a module inside the network."""
        g = self.input_spec()[group]
        if g.preprocessing is None or g.preprocessing == identity(g.preprocessing["features"]):
            return nn.Identity()
        return Standardize(g.preprocessing, slotted=g.slots is not None)

    def tensors(self, inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
        """The input arrays as torch tensors, in the network's input order."""
        return [torch.from_numpy(np.ascontiguousarray(inputs[k], dtype=np.float32))
                for k in self.input_names]

    def logits_from_inputs(self, inputs, batch_size=None) -> np.ndarray:
        batch_size = batch_size or self.batch_size
        tensors = self.tensors(inputs)
        n = tensors[0].shape[0]
        self.net.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                out.append(self.net(*(t[start:start + batch_size] for t in tensors)))
        if not out:
            return np.zeros((0, self.config["n_classes"]), np.float32)
        return torch.cat(out).numpy()

    def fit_preprocessing(self, inputs):
        """Standardisation of every input group, fitted on the filled slots of `inputs`."""
        return {g.name: fit_standardization(inputs[g.name], g.features,
                                            slotted=g.slots is not None)
                for g in self.input_spec()}

    def n_parameters(self) -> int:
        """The number of trainable parameters of the network."""
        return int(sum(p.numel() for p in self.net.parameters()))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The network's parameters and buffers."""
        return {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load parameters into the network (strict: every name must match)."""
        self.net.load_state_dict(state)
        self.net.eval()

    def weights_bytes(self) -> bytes:
        from safetensors.torch import save

        return save(self.state_dict(), metadata={"format": "pt"})

    def load_weights(self, raw: bytes) -> None:
        from safetensors.torch import load

        self.load_state_dict(load(raw))


class INTagger(TorchTagger):
    """The Interaction Network (published architecture; fast exact forward)."""

    kind = "in"
    bucket_by_multiplicity = True
    input_names = ("tracks", "vertices")
    defaults = {"hidden": 60, "De": 20, "Do": 24, "n_tracks": schema.TRACK_SLOTS,
                "n_vertices": schema.VERTEX_SLOTS}

    def build_net(self):
        h = self.hyper
        core = InteractionNetwork(
            n_track_features=len(self.config["track_features"]), n_tracks=h["n_tracks"],
            n_vertex_features=len(self.config["vertex_features"]), n_vertices=h["n_vertices"],
            hidden=h["hidden"], De=h["De"], Do=h["Do"], n_classes=self.config["n_classes"])
        return INNet(self._norm("tracks"), self._norm("vertices"), core)


class MLPTagger(TorchTagger):
    """MLP on jet-level features plus the flattened leading tracks and all vertex slots; it
    reads the groups its configuration names features of (JetClass: no vertices)."""

    kind = "mlp"
    defaults = {"hidden": [128, 64], "n_lead_tracks": 10, "n_tracks": schema.TRACK_SLOTS}

    @property
    def input_names(self) -> tuple[str, ...]:
        """The input groups in the order the network takes them: those with configured
        features (a JetClass MLP reads particles and jet features)."""
        return tuple(g for g in ("tracks", "particles", "vertices", "jet_features")
                     if self.config[FEATURE_KEYS[g]])

    def build_net(self):
        h, c = self.hyper, self.config
        n_lead = min(h["n_lead_tracks"], h["n_tracks"])
        width = {"jet_features": 1, "tracks": n_lead, "particles": n_lead,
                 "vertices": schema.VERTEX_SLOTS}
        n_in = sum(len(c[FEATURE_KEYS[g]]) * width[g] for g in self.input_names)
        return MLPNet(self.input_names, {g: self._norm(g) for g in self.input_names},
                      n_lead, n_in, h["hidden"], c["n_classes"])


class ParTTagger(TorchTagger):
    """ParticleTransformer on one particle group, in weaver-core's parameter layout. On
    JetClass `particles` (part_px, part_py, part_pz, part_energy among them) the pair
    features come from the four-vectors and the other features are embedded; on CMS `tracks`
    from (track_ptrel, track_etarel, track_phirel), every feature embedded."""

    kind = "part"
    defaults = {"embed_dims": [64, 64, 64], "pair_embed_dims": [32, 32, 32], "num_heads": 4,
                "num_layers": 3, "num_cls_layers": 2, "dropout": 0.1,
                "n_tracks": schema.TRACK_SLOTS}
    CMS_KINEMATICS = ("track_ptrel", "track_etarel", "track_phirel")

    @property
    def input_names(self) -> tuple[str, ...]:
        """The one particle group: JetClass `particles` when configured, else CMS `tracks`."""
        return ("particles",) if self.config["particle_features"] else ("tracks",)

    @classmethod
    def jetclass_particles(cls, names):
        return [*names, *(v for v in particles.VECTORS if v not in names)]

    def build_net(self):
        (group,) = self.input_names
        h, names = self.hyper, self.config[FEATURE_KEYS[group]]
        four_vectors = all(v in names for v in particles.VECTORS)
        if four_vectors:
            kinematics = [names.index(v) for v in particles.VECTORS]
            embedded = [i for i, n in enumerate(names) if n not in particles.VECTORS]
        else:
            missing = [n for n in self.CMS_KINEMATICS if n not in names]
            if missing:
                raise ConfigError(f"{FEATURE_KEYS[group]} must include the four-vectors "
                                  f"{', '.join(particles.VECTORS)} (JetClass particles) or "
                                  f"the kinematics {', '.join(self.CMS_KINEMATICS)} (CMS "
                                  "tracks) for ParT's pair features")
            kinematics = [names.index(n) for n in self.CMS_KINEMATICS]
            embedded = list(range(len(names)))
        if not embedded:
            raise ConfigError(f"{FEATURE_KEYS[group]} must include particle features to "
                              "embed besides the four-vectors")
        if h["embed_dims"][-1] % h["num_heads"]:
            raise ConfigError(f"hyperparameters.embed_dims must end in a multiple of num_heads "
                              f"({h['num_heads']}), not {h['embed_dims'][-1]}")
        core = ParticleTransformer(
            len(embedded), self.config["n_classes"], tuple(h["embed_dims"]),
            tuple(h["pair_embed_dims"]), h["num_heads"], h["num_layers"], h["num_cls_layers"],
            h["dropout"])
        return ParTNet(self._norm(group), core, embedded, kinematics, four_vectors)

    def logits_from_inputs(self, inputs, batch_size=None) -> np.ndarray:
        """Logits over batches of jets of similar multiplicity, in input order: a batch is
        trimmed to its widest jet and attention costs the square of that width, so each
        batch trims to its own width (exact: padded slots are masked)."""
        filled = filled_slots(inputs[self.input_names[0]])
        out = np.zeros((len(filled), self.config["n_classes"]), np.float32)
        for idx, _ in bucket_chunks(filled, PART_PAIR_BUDGET):
            out[idx] = super().logits_from_inputs({k: v[idx] for k, v in inputs.items()},
                                                  batch_size)
        return out

    def fit_preprocessing(self, inputs):
        """On JetClass particles the standardisation of the public JetClass data
        configuration (declared, not fitted: the published models' own); on CMS tracks
        fitted on the filled slots."""
        if self.net.four_vectors:
            return {"particles": particles.preprocessing(self.config["particle_features"])}
        return super().fit_preprocessing(inputs)


class ParticleNetTagger(TorchTagger):
    """ParticleNet (EdgeConv graph network on PyTorch Geometric) on JetClass particle
    features, neighbours first found in (deta, dphi); the published JetClass configuration by
    default, with the JetClass standardisation declared as its preprocessing."""

    kind = "particlenet"
    bucket_by_multiplicity = True
    # the EdgeConv activations grow as jets x particles x k x channels: the official full
    # model on 1024 JetClass jets peaked at 3.8 GB in one batch (4096: past 15 GB), 1.0 GB
    # in batches of 128, at the same speed (58 vs 51 jets/s, one thread)
    batch_size = 128
    input_names = ("particles",)
    defaults = {"k": 16, "channels": [64, 128, 256], "layers_per_block": 3, "fc_width": 256,
                "dropout": 0.1, "n_tracks": schema.JETCLASS_SLOTS}

    def __init__(self, config: dict):
        config = dict(config)
        config.setdefault("particle_features", list(particles.FEATURE_SETS["full"]))
        config.setdefault("track_features", [])
        config.setdefault("vertex_features", [])
        super().__init__(config)

    def build_net(self):
        from servable.models.particlenet import ParticleNet

        h, names = self.hyper, self.config["particle_features"]
        missing = [n for n in particles.POINTS if n not in names]
        if missing:
            raise ConfigError(f"particle_features must include {', '.join(missing)}: ParticleNet "
                              "finds its first neighbours in (deta, dphi)")
        if h["k"] >= h["n_tracks"]:
            raise ConfigError(f"hyperparameters.k ({h['k']}) must be smaller than n_tracks "
                              f"({h['n_tracks']})")
        core = ParticleNet(len(names), self.config["n_classes"], k=h["k"],
                           channels=h["channels"], layers_per_block=h["layers_per_block"],
                           fc_width=h["fc_width"], dropout=h["dropout"])
        return PNNet(self._norm("particles"), core, [names.index(n) for n in particles.POINTS])

    def fit_preprocessing(self, inputs):
        """The JetClass standardisation (declared, not fitted: the published models' own)."""
        return {"particles": particles.preprocessing(self.config["particle_features"])}


class BDTTagger(Tagger):
    """XGBoost gradient-boosted trees on the jet-level features.

    Two classes (binary:logistic): `logits` are [0, margin] per jet, so their softmax is
    exactly XGBoost's probability and the margin (log-odds of class 1, H->bb) is the second
    column. More classes (multi:softprob): `logits` are XGBoost's K margins, whose softmax is
    its probabilities.
    """

    kind = "bdt"
    framework = "xgboost"
    weights_file = "model.json"
    input_names = ("jet_features",)
    defaults = {"n_estimators": 400, "max_depth": 4, "learning_rate": 0.1, "subsample": 0.8,
                "colsample_bytree": 0.8}

    def __init__(self, config: dict):
        super().__init__(config)
        self.booster = None

    def margin(self, jet_features: np.ndarray) -> np.ndarray:
        """The booster's raw margin (log-odds of H->bb) per jet."""
        import xgboost as xgb

        if self.booster is None:
            raise RuntimeError("the BDT has not been trained or loaded")
        dm = xgb.DMatrix(jet_features, feature_names=list(self.config["jet_features"]))
        return self.booster.predict(dm, output_margin=True).astype(np.float32)

    def logits_from_inputs(self, inputs, batch_size=None) -> np.ndarray:
        m = self.margin(inputs["jet_features"])
        if self.config["n_classes"] > 2:
            return m.reshape(len(m), self.config["n_classes"])
        return np.stack([np.zeros_like(m), m], axis=1)

    def native_importance(self, importance_type: str = "gain") -> dict[str, float]:
        """XGBoost's own feature importance (`gain`, `weight`, `cover`, ...) per jet feature."""
        scores = self.booster.get_score(importance_type=importance_type)
        return {name: float(scores.get(name, 0.0)) for name in self.config["jet_features"]}

    def weights_bytes(self) -> bytes:
        return bytes(self.booster.save_raw(raw_format="json"))

    def load_weights(self, raw: bytes) -> None:
        import xgboost as xgb

        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(raw))


TAGGERS: dict[str, type[Tagger]] = {t.kind: t for t in (INTagger, MLPTagger, ParTTagger,
                                                          ParticleNetTagger, BDTTagger)}


def feature_config(kind: str, sample: Jets, feature_set: str = "full") -> dict:
    """The feature lists of a fresh `kind` model for jets like `sample`: every feature of the
    CMS layout; on JetClass particles one public feature set (`particles.FEATURE_SETS`, with
    what the kind adds), no vertices, and the jet observables (`jetobservables.INPUTS`).
    `training.make_tagger` leaves out of these what a training drops (ablation)."""
    if kind not in TAGGERS:
        raise ConfigError(f"kind must be one of {', '.join(sorted(TAGGERS))}, not {kind!r}")
    if sample.layout != JETCLASS:
        return {"track_features": list(sample.track_names),
                "vertex_features": list(sample.vertex_names),
                "jet_features": list(sample.jet_feature_names), "particle_features": []}
    if kind == "in":
        raise ConfigError("the IN reads secondary vertices, which JetClass data does not have; "
                          "train mlp, bdt, part or particlenet on it")
    if feature_set not in particles.FEATURE_SETS:
        raise ConfigError(f"the feature set must be one of {', '.join(particles.FEATURE_SETS)}, "
                          f"not {feature_set!r}")
    names = list(particles.FEATURE_SETS[feature_set])
    return {"particle_features": TAGGERS[kind].jetclass_particles(names),
            "track_features": [], "vertex_features": [],
            "jet_features": list(jetobservables.INPUTS)}


def build_tagger(config: dict) -> Tagger:
    """The tagger a config describes (its `kind` picks the class).

    Parameters
    ----------
    config : dict
        The model configuration, as a bundle's `model.config` stores it.

    Returns
    -------
    Tagger
        An untrained tagger of that kind.

    Raises
    ------
    ServableError
        An unknown kind or a configuration that does not validate.
    """
    kind = config.get("kind")
    if kind not in TAGGERS:
        raise ConfigError(f"kind must be one of {', '.join(sorted(TAGGERS))}, not {kind!r}")
    return TAGGERS[kind](config)
