"""A bundle exported to where CMS runs taggers: CMSSW (ONNX + weaver's preprocess.json) and
Triton servers (a model repository with config.pbtxt), each checked before it is written.

`export_cmssw` writes `model.onnx` on standardised inputs and `preprocess.json`
(`servable.runtimes.cmssw_export`); before writing, the pair is put back together the way
`servable bundle import-onnx` reads it (`servable.runtimes.onnx_preprocess`) and must give
the bundle's own logits on example jets. `export_triton` writes `REPO/NAME/config.pbtxt`,
`REPO/NAME/1/model.onnx` and `REPO/NAME/labels.txt`; the configuration is read back with
Triton's own schema (`tritonclient`'s `model_config_pb2`) when that package is installed.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from servable.bundle.bundle import ONNX_FILE, Bundle
from servable.errors import ServableError, check_int
from servable.files import check_output, json_text, output_dir, write_bytes

PREPROCESS_FILE = "preprocess.json"
LABELS_FILE = "labels.txt"
TRITON_PLATFORM = "onnxruntime_onnx"
TRITON_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _write_all(files: dict[Path, bytes], force: bool, inputs) -> list[Path]:
    """Write every file, after checking every target first: a refusal writes nothing."""
    for path in files:
        check_output(path, force=force, inputs=inputs)
    return [write_bytes(path, data, force=force, inputs=inputs) for path, data in files.items()]


def cmssw_files(bundle: Bundle, atol: float = 1e-4) -> tuple[bytes, dict]:
    """The CMSSW export of `bundle` (model.onnx bytes, preprocess.json as data), checked:
    graph and JSON together reproduce the bundle's logits on example jets."""
    from servable.runtimes.cmssw_export import NotExportable, export_cmssw_onnx

    if bundle.kind == "onnx":
        raise NotExportable(f"{bundle.path}: an imported ONNX export already; its "
                            f"{PREPROCESS_FILE} is in the bundle, beside its provenance")
    tagger = bundle.tagger
    with tempfile.TemporaryDirectory(prefix="servable-cmssw-") as tmp:
        path = Path(tmp) / ONNX_FILE
        prep = export_cmssw_onnx(tagger, path)
        graph = path.read_bytes()
    _check_round_trip(bundle, graph, prep, atol)
    return graph, prep.to_json()


def _check_round_trip(bundle: Bundle, graph: bytes, prep, atol: float) -> None:
    import onnx

    from servable.runtimes.onnx_preprocess import check_graph, with_preprocessing
    from servable.runtimes.onnx_runtime import OnnxRuntime

    model = onnx.load_from_string(graph)
    prep = check_graph(model, prep, "the CMSSW export")
    groups = {g.name: (g.features, g.slots) for g in bundle.spec}
    particle_group = next(g.name for g in bundle.spec if g.slots is not None)
    sources = {b.name: b.name if b.name in groups else particle_group for b in prep.inputs}
    wrapped = with_preprocessing(model, prep, groups, sources)
    inputs = bundle.spec.example(16)
    native = bundle.tagger.logits_from_inputs(inputs)
    with tempfile.TemporaryDirectory(prefix="servable-cmssw-") as tmp:
        onnx.save(wrapped, str(Path(tmp) / ONNX_FILE))
        exported = OnnxRuntime(Path(tmp) / ONNX_FILE, threads=1).logits(inputs)
    worst = float(np.max(np.abs(native - exported)))
    if not worst <= atol * max(1.0, float(np.max(np.abs(native)))):
        raise RuntimeError(f"the CMSSW export of the {bundle.kind} disagrees with the bundle "
                           f"(max |logit difference| {worst:.3g})")


def export_cmssw(bundle: Bundle, out_dir, force: bool = False) -> list[Path]:
    """Write `model.onnx` and `preprocess.json` for CMSSW into `out_dir`; returns the paths."""
    graph, prep = cmssw_files(bundle)
    out = output_dir(out_dir, inputs=[bundle.path])
    return _write_all({out / ONNX_FILE: graph,
                       out / PREPROCESS_FILE: (json_text(prep) + "\n").encode()},
                      force, [bundle.path])


def _graph_io(graph: bytes) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """(inputs, outputs) of an ONNX graph: names and dims after the batch axis (-1 where
    dynamic)."""
    import onnx

    model = onnx.load_from_string(graph)
    initialised = {t.name for t in model.graph.initializer}

    def dims(v):
        return [d.dim_value if d.HasField("dim_value") else -1
                for d in v.type.tensor_type.shape.dim][1:]

    return ([(i.name, dims(i)) for i in model.graph.input if i.name not in initialised],
            [(o.name, dims(o)) for o in model.graph.output])


def triton_config(name: str, graph: bytes, max_batch_size: int, scores: str) -> str:
    """config.pbtxt of an ONNX Runtime model: inputs and outputs with their dims (the batch
    axis left to max_batch_size), FP32, dynamic batching, labels on the `scores` output."""
    inputs, outputs = _graph_io(graph)

    def tensor(tname, dims, labels=False):
        lines = [f'    name: "{tname}"', "    data_type: TYPE_FP32",
                 f"    dims: [ {', '.join(map(str, dims))} ]"]
        if labels:
            lines.append(f'    label_filename: "{LABELS_FILE}"')
        return "  {\n" + "\n".join(lines) + "\n  }"

    return "\n".join([
        f'name: "{name}"',
        f'platform: "{TRITON_PLATFORM}"',
        f"max_batch_size: {max_batch_size}",
        "input [", ",\n".join(tensor(n, d) for n, d in inputs), "]",
        "output [", ",\n".join(tensor(n, d, n == scores) for n, d in outputs), "]",
        "dynamic_batching { }",
        "",
    ])


def parse_triton_config(text: str):
    """config.pbtxt read with Triton's model-configuration schema (`tritonclient`), or None
    when that package is not installed."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return None
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def export_triton(bundle: Bundle, repo, *, name: str | None = None, max_batch_size: int = 256,
                  cmssw_inputs: bool = False, force: bool = False) -> list[Path]:
    """Write a Triton model repository for `bundle` into `repo`; returns the paths written.

    The model is the bundle's model.onnx (raw features; preprocessing inside), or with
    `cmssw_inputs` the CMSSW export on standardised inputs (what CMSSW's SONIC producers
    send), its preprocess.json beside config.pbtxt.
    """
    check_int(max_batch_size, "max_batch_size")
    name = name or bundle.name
    if not TRITON_NAME.match(name):
        raise ServableError(f"{name!r}: a Triton model name is a folder name of letters, "
                            "digits, '.', '_' and '-'; pass --name")
    classes = next(o.get("classes") for o in bundle.manifest["outputs"]
                   if o["name"] == "probabilities")
    files: dict[str, bytes] = {}
    if cmssw_inputs:
        graph, prep = cmssw_files(bundle)
        files[PREPROCESS_FILE] = (json_text(prep) + "\n").encode()
        scores = "softmax"
    else:
        graph = (bundle.path / ONNX_FILE).read_bytes()
        scores = "probabilities"
    text = triton_config(name, graph, max_batch_size, scores)
    try:
        parse_triton_config(text)
    except Exception as exc:  # text_format.ParseError: a bug here, not the user's input
        raise RuntimeError(f"config.pbtxt does not parse with Triton's schema: {exc}") from None
    files.update({"config.pbtxt": text.encode(), f"1/{ONNX_FILE}": graph,
                  LABELS_FILE: "".join(f"{c}\n" for c in classes).encode()})
    model_dir = output_dir(Path(repo), inputs=[bundle.path]) / name
    return _write_all({model_dir / k: v for k, v in files.items()}, force, [bundle.path])
