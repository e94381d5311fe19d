"""Export every tagger to a standard ONNX file (dynamic batch; outputs: probabilities, logits).

Inputs are named and ordered as the tagger's `input_names` (tracks, vertices, then
jet_features), channels-first as in the CMS layout, with the model's own features.
Preprocessing is inside the graph. The IN is exported through its fast exact path: the
explicit width K (last filled slot in the batch) is computed in the graph, and the N - K
trailing zero-padded slots are handled in closed form, so ONNX Runtime's cost also follows
the real track count. Unlike the PyTorch path, the graph does not bucket jets by
multiplicity: a batch costs as much as its fullest jet. ParticleNet is exported through its
dense formulation (`TaggerNet.exportable`: same weights; PyG's edge lists do not trace).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from servable.models.taggers import BDTTagger, Tagger, TorchTagger

OPSET = 17
BDT_OPSET = 15  # the highest onnxmltools' XGBoost converter supports


class _WithProbabilities(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs):
        logits = self.net(*inputs)
        return torch.softmax(logits, dim=1), logits


def export_onnx(tagger: Tagger, path) -> Path:
    """Write the tagger's ONNX file with the exporter of its framework."""
    path = Path(path)
    EXPORTERS[tagger.framework](tagger, path)
    return path


def _export_torch(tagger: TorchTagger, path: Path) -> None:
    import warnings

    wrapper = _WithProbabilities(tagger.net.exportable()).eval()
    inputs = tagger.input_spec().example()
    args = tuple(torch.from_numpy(inputs[k]) for k in tagger.input_names)
    dynamic = {k: {0: "batch"} for k in tagger.input_names}
    dynamic.update({"probabilities": {0: "batch"}, "logits": {0: "batch"}})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent shapes
        torch.onnx.export(wrapper, args, str(path), input_names=list(tagger.input_names),
                          output_names=["probabilities", "logits"], dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)


def _export_bdt(tagger: BDTTagger, path: Path) -> None:
    """onnxmltools' TreeEnsembleClassifier, with outputs as the native model's: two classes,
    logits [0, log p1 - log p0] (the margin); more, its K raw margins (the ensemble's softmax
    turned off) and their softmax."""
    import onnx
    from onnx import TensorProto, helper
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    n, k = len(tagger.config["jet_features"]), tagger.config["n_classes"]
    booster = tagger.booster.copy()
    booster.feature_names = None  # the converter wants f0..fN; the input order is the same
    model = convert_xgboost(booster, initial_types=[("jet_features",
                                                            FloatTensorType([None, n]))],
                            target_opset=BDT_OPSET)
    graph = model.graph
    probs = next(o for o in graph.output if o.name == "probabilities")
    if k == 2:
        graph.node.extend([
            helper.make_node("Log", ["probabilities"], ["log_probabilities"]),
            helper.make_node("Constant", [], ["minus_plus"],
                             value=helper.make_tensor("mp", TensorProto.FLOAT, [1, 2], [-1, 1])),
            helper.make_node("Mul", ["log_probabilities", "minus_plus"], ["signed_log"]),
            helper.make_node("Constant", [], ["axis_1"],
                             value=helper.make_tensor("a1", TensorProto.INT64, [1], [1])),
            helper.make_node("ReduceSum", ["signed_log", "axis_1"], ["margin"], keepdims=1),
            helper.make_node("Constant", [], ["zero_one"],
                             value=helper.make_tensor("zo", TensorProto.FLOAT, [1, 2], [0, 1])),
            helper.make_node("Mul", ["margin", "zero_one"], ["logits"]),
        ])
    else:
        ensemble = next(node for node in graph.node if node.op_type == "TreeEnsembleClassifier")
        for attr in ensemble.attribute:
            if attr.name == "post_transform":
                attr.s = b"NONE"  # raw margins: the sum of the trees plus the base score
        ensemble.output[list(ensemble.output).index("probabilities")] = "logits"
        graph.node.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    del graph.output[:]
    graph.output.extend([probs, helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                              [None, k])])
    _prune(graph)
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", BDT_OPSET))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _prune(graph) -> None:
    """Drop nodes whose outputs nothing uses (the converter's label output and helpers)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))


EXPORTERS = {"torch": _export_torch, "xgboost": _export_bdt}


def export_and_check(tagger: Tagger, path: Path, atol: float = 1e-4) -> list[str]:
    """Export ONNX and refuse a graph that disagrees with the native model in ONNX Runtime;
    returns the runtimes the graph was checked on (onnx, and openvino in float32 where
    OpenVINO is installed and agrees within the same tolerance). RuntimeUnavailable, before
    anything is written, where ONNX Runtime is not installed."""
    from servable.runtimes import RuntimeUnavailable
    from servable.runtimes.onnx_runtime import OnnxRuntime, onnxruntime_installed

    if not onnxruntime_installed():
        raise RuntimeUnavailable("the ONNX export is checked in ONNX Runtime, which is not "
                                 "installed here: install onnxruntime, or save the bundle "
                                 "without ONNX (save_bundle(..., onnx=False))")
    export_onnx(tagger, path)
    inputs = tagger.input_spec().example(16)
    native = tagger.logits_from_inputs(inputs)
    bound = atol * max(1.0, float(np.max(np.abs(native))))
    worst = float(np.max(np.abs(native - OnnxRuntime(path).logits(inputs))))
    if not worst <= bound:
        raise RuntimeError(f"ONNX export of the {tagger.kind} disagrees with the native model "
                           f"(max |logit difference| {worst:.3g})")
    checked = ["onnx"]
    try:
        from servable.runtimes.openvino_runtime import OpenVinoRuntime

        ov = OpenVinoRuntime(path, "f32").logits(inputs)
    except RuntimeUnavailable:
        return checked  # not installed here: the manifest says so by leaving it out
    if float(np.max(np.abs(native - ov))) <= bound:
        checked.append("openvino")
    return checked
