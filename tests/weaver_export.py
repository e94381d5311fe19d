"""Run weaver-core's own ONNX exporter (`python -m weaver.train --export-onnx`) on an official
JetClass ParticleNet checkpoint, as its authors export models for CMSSW.

weaver needs a data configuration (YAML) and a network configuration (a Python module with
`get_model`); both are written here from the public JetClass set-up the checkpoints were
trained with (the fixture's README lists the features, their order and their
standardisation). The exporter writes `model.onnx` and, beside it, `preprocess.json`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from servable.data import particles

# (name, subtract, multiply, clip_min, clip_max) in weaver's `vars` notation; None: unchanged
_STANDARDISED = {"part_pt_log": (1.7, 0.7), "part_e_log": (2.0, 0.7),
                 "part_logptrel": (-4.7, 0.7), "part_logerel": (-4.7, 0.7),
                 "part_deltaR": (0.2, 4.0), "part_d0err": (0, 1, 0, 1),
                 "part_dzerr": (0, 1, 0, 1)}
CLASSES = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")

NETWORK = '''
import torch
from weaver.nn.model.ParticleNet import ParticleNet


class ParticleNetWrapper(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleNet(**kwargs)

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(points, features, mask)


def get_model(data_config, **kwargs):
    options = dict(input_dims=len(data_config.input_dicts["pf_features"]),
                   num_classes=len(data_config.label_value),
                   conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)),
                                (16, (256, 256, 256))],
                   fc_params=[(256, 0.1)], use_fusion=False, use_fts_bn=True,
                   use_counts=True, for_inference=False)
    options.update(kwargs)
    model = ParticleNetWrapper(**options)
    info = {"input_names": list(data_config.input_names),
            "input_shapes": {k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()},
            "output_names": ["softmax"],
            "dynamic_axes": {**{k: {0: "N", 2: "n_" + k.split("_")[0]}
                                for k in data_config.input_names}, "softmax": {0: "N"}}}
    return model, info
'''


def _var(name: str) -> str:
    spec = _STANDARDISED.get(name)
    return f"[{name}, null]" if spec is None else f"[{name}, {', '.join(map(str, spec))}]"


def data_config(feature_set: str) -> str:
    """The weaver data configuration of a JetClass feature set (kin, kinpid, full)."""
    def block(name, names, pad_mode="wrap"):
        rows = "\n".join(f"         - {_var(n)}" for n in names)
        return f"   {name}:\n      length: 128\n      pad_mode: {pad_mode}\n      vars:\n{rows}"

    return "\n".join([
        "selection: null",
        "new_variables:",
        "   part_mask: ak.ones_like(part_energy)",
        "   part_pt: np.hypot(part_px, part_py)",
        "   part_pt_log: np.log(part_pt)",
        "   part_e_log: np.log(part_energy)",
        "   part_logptrel: np.log(part_pt/jet_pt)",
        "   part_logerel: np.log(part_energy/jet_energy)",
        "   part_deltaR: np.hypot(part_deta, part_dphi)",
        "   part_d0: np.tanh(part_d0val)",
        "   part_dz: np.tanh(part_dzval)",
        "preprocess:",
        "   method: manual",
        "   data_fraction: 0.5",
        "inputs:",
        block("pf_points", particles.POINTS),
        block("pf_features", particles.FEATURE_SETS[feature_set]),
        block("pf_vectors", particles.VECTORS),
        block("pf_mask", ["part_mask"], "constant"),
        "labels:",
        "   type: simple",
        "   value: [" + ", ".join(f"label_{c}" for c in CLASSES) + "]",
        "observers: []",
        "weights: null",
        "",
    ])


def weaver_export(checkpoint: Path, feature_set: str, out: Path) -> tuple[Path, Path]:
    """(model.onnx, preprocess.json) written by weaver-core's exporter into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").write_text(data_config(feature_set))
    (out / "network.py").write_text(NETWORK)
    model = out / "export" / "model.onnx"
    r = subprocess.run([sys.executable, "-m", "weaver.train", "--data-config",
                        str(out / "data.yaml"), "--network-config", str(out / "network.py"),
                        "--model-prefix", str(checkpoint), "--export-onnx", str(model)],
                       capture_output=True, text=True, timeout=600, cwd=out)
    if r.returncode != 0:
        raise RuntimeError(f"weaver's exporter failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return model, model.parent / "preprocess.json"
