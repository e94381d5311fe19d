"""A weaver/CMSSW ONNX export made to take raw features: its preprocess.json as graph nodes.

`with_preprocessing` puts CMSSW's transform (`servable.runtimes.preprocess_json`) in front of
the exported graph, so that the result reads servable's raw input groups like every bundle's
model.onnx: per variable, non-finite values and values beyond 1e32 become
`replace_inf_value`, then clamp((x - median) * norm_factor, lower_bound, upper_bound); slots
that hold no particle (all raw features zero) take `pad`; an input keeps its first
`max_length` slots. A `*_mask` variable is 1 for every particle. The exported graph is kept
whole, its names prefixed with `upstream/`; the outputs become `probabilities` (the export's
first output) and `logits` (the input of its final Softmax, or the log of the probabilities
when it ends otherwise).
"""

from __future__ import annotations

import numpy as np

from servable.runtimes.preprocess_json import MASK_SUFFIX, NO_BOUND, Preprocess, PreprocessError

PREFIX = "upstream/"
MIN_OPSET = 13  # Slice, Unsqueeze and Gather as used here


def _dims(value_info) -> list:
    """A graph value's dims: ints, or None where dynamic."""
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def check_graph(model, prep: Preprocess, where: str) -> Preprocess:
    """Refuse a graph whose inputs or outputs disagree with its preprocess.json: names, the
    number of variables per input, the length, the number of classes. Returns the
    preprocess.json of the inputs the graph takes: an input the network never read is left
    out of a traced graph (weaver's ParticleNet and its pf_vectors), and so from it."""
    inputs = {i.name: _dims(i) for i in model.graph.input}
    initialised = {t.name for t in model.graph.initializer}
    inputs = {k: v for k, v in inputs.items() if k not in initialised}
    declared = [b.name for b in prep.inputs]
    for name in inputs:
        if name not in declared:
            raise PreprocessError(f"{where}: model.onnx takes input {name!r}, which "
                                  f"preprocess.json does not describe (it lists "
                                  f"{', '.join(declared)})")
    used = tuple(b for b in prep.inputs if b.name in inputs)
    if not used:
        raise PreprocessError(f"{where}: model.onnx takes none of the inputs preprocess.json "
                              f"describes ({', '.join(declared)})")
    for block in used:
        dims = inputs[block.name]
        if len(dims) != 3:
            raise PreprocessError(f"{where}: model.onnx input {block.name!r} has {len(dims)} "
                                  "dimensions; CMSSW feeds (jets, variables, length)")
        if dims[1] is not None and dims[1] != len(block.var_names):
            raise PreprocessError(f"{where}: length mismatch: {block.name} lists "
                                  f"{len(block.var_names)} variables, model.onnx takes "
                                  f"{dims[1]}")
        if dims[2] is not None and not block.min_length <= dims[2] <= block.max_length:
            raise PreprocessError(f"{where}: length mismatch: {block.name} has length "
                                  f"{block.min_length}..{block.max_length} in preprocess.json, "
                                  f"model.onnx takes {dims[2]}")
    if not model.graph.output:
        raise PreprocessError(f"{where}: model.onnx has no output")
    out = _dims(model.graph.output[0])
    if len(out) != 2 or out[1] not in (None, len(prep.output_names)):
        raise PreprocessError(f"{where}: length mismatch: output_names lists "
                              f"{len(prep.output_names)} classes, model.onnx's first output "
                              f"{model.graph.output[0].name!r} has shape {out}")
    return Preprocess(used, prep.output_names)


def with_preprocessing(model, prep: Preprocess, groups: dict[str, tuple[tuple[str, ...],
                                                                          int | None]],
                       sources: dict[str, str]):
    """The graph of `model` (checked with `check_graph`) on raw groups.

    Parameters
    ----------
    model : the exported onnx.ModelProto
    prep : its preprocess.json
    groups : servable input group -> (features in order, slots or None for per-jet)
    sources : input of `model` -> the group its (non-mask) variables come from

    Returns
    -------
    onnx.ModelProto with inputs `groups` and outputs probabilities, logits.
    """
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise PreprocessError(f"model.onnx uses ONNX opset {opset}; re-export it with opset "
                              f">= {MIN_OPSET} (weaver's --onnx-opset)")
    scores_name = model.graph.output[0].name
    upstream = compose.add_prefix(model, PREFIX)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    augmented, filled = {}, {}
    for g, (_, slots) in groups.items():
        if slots is None:
            augmented[g] = node("Unsqueeze", [g, const(f"pre/group/{g}/axis2", np.array([2]))],
                                f"pre/group/{g}/3d")
            continue
        absolute = node("Abs", [g], f"pre/group/{g}/abs")
        if opset >= 18:
            peak = node("ReduceMax", [absolute, const(f"pre/group/{g}/axis1", np.array([1]))],
                        f"pre/group/{g}/peak", keepdims=1)
        else:
            peak = node("ReduceMax", [absolute], f"pre/group/{g}/peak", axes=[1], keepdims=1)
        filled[g] = node("Greater", [peak, const(f"pre/group/{g}/zero", np.float32(0))],
                         f"pre/group/{g}/filled")
        ones = node("Cast", [filled[g]], f"pre/group/{g}/mask", to=TensorProto.FLOAT)
        augmented[g] = node("Concat", [g, ones], f"pre/group/{g}/augmented", axis=1)
    for block in prep.inputs:
        g = sources[block.name]
        features, slots = groups[g]
        columns = [len(features) if v.endswith(MASK_SUFFIX) else features.index(v)
                   for v in block.var_names]
        infos = [block.infos[v] for v in block.var_names]

        def column(key, infos=infos):
            return np.array([[getattr(i, key)] for i in infos], np.float32)

        b = f"pre/input/{block.name}"
        x = node("Gather", [augmented[g], const(f"{b}/columns", np.array(columns))],
                 f"{b}/x", axis=1)
        beyond = node("Greater", [node("Abs", [x], f"{b}/abs"),
                                  const(f"{b}/limit", np.float32(NO_BOUND))], f"{b}/beyond")
        bad = node("Or", [beyond, node("IsNaN", [x], f"{b}/nan")], f"{b}/bad")
        x = node("Where", [bad, const(f"{b}/replace", column("replace_inf_value")), x],
                 f"{b}/finite")
        z = node("Mul", [node("Sub", [x, const(f"{b}/median", column("median"))],
                              f"{b}/centred"),
                         const(f"{b}/norm", column("norm_factor"))], f"{b}/scaled")
        z = node("Min", [z, const(f"{b}/upper", column("upper_bound"))], f"{b}/below")
        z = node("Max", [z, const(f"{b}/lower", column("lower_bound"))], f"{b}/clamped")
        if slots is not None:
            z = node("Where", [filled[g], z, const(f"{b}/pad", column("pad"))], f"{b}/padded")
            if slots > block.max_length:
                z = node("Slice", [z, const(f"{b}/start", np.array([0])),
                                   const(f"{b}/stop", np.array([block.max_length])),
                                   const(f"{b}/axis", np.array([2]))], f"{b}/kept")
        nodes.append(helper.make_node("Identity", [z], [PREFIX + block.name],
                                      name=f"{b}/feed"))
    scores = PREFIX + scores_name
    last = next((n for n in upstream.graph.node if scores in n.output), None)
    axis = next((a.i for a in last.attribute if a.name == "axis"), -1) if last else None
    if last is not None and last.op_type == "Softmax" and axis in (1, -1):
        logits = last.input[0]
    else:
        logits = node("Log", [scores], "post/log")
    post = [helper.make_node("Identity", [scores], ["probabilities"], name="post/probabilities"),
            helper.make_node("Identity", [logits], ["logits"], name="post/logits")]
    k = len(prep.output_names)
    graph = helper.make_graph(
        [*nodes, *upstream.graph.node, *post], "servable-import",
        [helper.make_tensor_value_info(g, TensorProto.FLOAT,
                                       ["N", len(f)] + ([s] if s is not None else []))
         for g, (f, s) in groups.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", k])
         for n in ("probabilities", "logits")],
        [*inits, *upstream.graph.initializer])
    graph.value_info.extend(upstream.graph.value_info)
    out = helper.make_model(graph, opset_imports=list(model.opset_import),
                            producer_name="servable import-onnx")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out
