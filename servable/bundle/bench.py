"""Portability and speed reports: runtime parity, throughput scans, the IN inference bench.

Every speed number comes with its baseline measured in the same run on the same jets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from servable.bundle.bundle import Bundle
from servable.data.jets import Jets
from servable.errors import ServableError, check_int
from servable.models import fused
from servable.models.batching import bucket_chunks
from servable.models.interaction_network import filled_widths
from servable.models.metrics import fidelity, summary_auc
from servable.runtimes import RuntimeUnavailable


def available_runtimes(bundle: Bundle, candidates: Sequence[str] = ("onnx", "openvino",
                                                                    "tensorrt"),
                       ) -> tuple[list[str], dict[str, str]]:
    """The runtimes that load for this bundle (torch first, then those of `candidates`) and,
    for each one that does not, why; loading creates and caches each runner in the bundle."""
    names, skipped = ["torch"], {}
    for name in candidates:
        try:
            bundle.runtime(name)
            names.append(name)
        except RuntimeUnavailable as exc:
            skipped[name] = str(exc)
    return names, skipped


def _reduced(bundle: Bundle, jets: Jets, precision: str, batch_size: int | None,
             probs: dict, skipped: dict) -> None:
    """Add `torch-<precision>` and `openvino-<precision>` to `probs`, or their reasons to
    `skipped` (a CPU without native bf16, a model without a PyTorch network)."""
    for name in ("torch", "openvino"):
        try:
            probs[f"{name}-{precision}"] = bundle.predict(jets, name, batch_size, precision)
        except ServableError as exc:  # RuntimeUnavailable is one
            skipped[f"{name}-{precision}"] = str(exc)


def parity(bundle: Bundle, jets: Jets, batch_size: int | None = None,
           precision: str = "f32",
           runtimes: Sequence[str] = ("onnx", "openvino", "tensorrt"),
           unfused: bool = False) -> dict:
    """Each runtime against PyTorch in float32: max |dp| over every class, accuracy, AUC (two
    classes: of class 1; more: the macro one-vs-rest AUC over the classes present), its
    difference to PyTorch's (`delta_auc`) and the fidelity F = 1 - mean |p - p_torch| (paper
    Eq. 1; over jets and classes, which for two classes is the mean over jets of |dp_1|).
    `precision` bf16 adds the reduced-precision rows torch-bf16 and openvino-bf16; `runtimes`
    are the ones compared with torch where they load. For the IN, torch runs the fused CPU
    kernel where it is built; `unfused` adds the row torch-unfused, the bucketed fast path
    (or says why the kernel is not built)."""
    from servable.models.precision import check_precision

    check_precision(precision)
    names, skipped = available_runtimes(bundle, runtimes)
    probs = {n: bundle.predict(jets, n, batch_size) for n in names}
    if unfused and bundle.kind == "in":
        if (why := fused.unavailable()) is None:
            with fused.switched_off():
                probs["torch-unfused"] = bundle.predict(jets, "torch", batch_size)
        else:
            skipped["torch-fused"] = why
    if precision != "f32":
        _reduced(bundle, jets, precision, batch_size, probs, skipped)
    ref = probs["torch"]
    y = jets.labels.argmax(1) if jets.labels is not None else None
    rows = {}
    for name, p in probs.items():
        row = {"max_abs_dp": float(np.max(np.abs(p - ref))),
               "fidelity": fidelity(p, ref)}
        if y is not None:
            row["accuracy"] = float(np.mean(p.argmax(1) == y))
            row["roc_auc"] = summary_auc(y, p)
        rows[name] = row
    if y is not None:
        for row in rows.values():
            row["delta_auc"] = row["roc_auc"] - rows["torch"]["roc_auc"]
    return {"bundle": bundle.name, "n_jets": len(jets), "classes": ref.shape[1],
            "precision": precision, "runtimes": rows, "skipped": skipped}


def format_parity(report: dict) -> str:
    """The `parity` report as a text table: one row per runtime (max |dp|, fidelity, accuracy,
    AUC or macro AUC and its difference to PyTorch float32; nan without labels), then each
    skipped runtime and why."""
    lines = [f"{report['bundle']} on {report['n_jets']} jets (reference: torch, float32)",
             f"  {'runtime':14s} {'max|dp|':>10s} {'fidelity':>10s} {'accuracy':>9s} "
             f"{'AUC' if report.get('classes', 2) == 2 else 'macro AUC':>9s} {'dAUC':>10s}"]
    nan = float("nan")
    for name, r in report["runtimes"].items():
        acc, auc = r.get("accuracy", nan), r.get("roc_auc", nan)
        lines.append(f"  {name:14s} {r['max_abs_dp']:10.2e} {r['fidelity']:10.7f} "
                     f"{acc:9.4f} {auc:9.4f} {r.get('delta_auc', nan):+10.2e}")
    for name, why in report["skipped"].items():
        lines.append(f"  {name:14s} skipped: {why}")
    return "\n".join(lines)


def _check_counts(batch_sizes: Sequence[int], **counts: int) -> None:
    if not batch_sizes:
        raise ServableError("give at least one batch size")
    for bs in batch_sizes:
        check_int(bs, "batch size")
    for name, value in counts.items():
        check_int(value, name)


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up: allocations, ONNX Runtime session optimisation
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def throughput(bundle: Bundle, jets: Jets, batch_sizes: Sequence[int], repeats: int = 10,
               runtimes: Sequence[str] | None = None) -> dict:
    """Jets/s per runtime and batch size, `repeats` times each (paper Figure 4)."""
    _check_counts(batch_sizes, repeats=repeats)
    names = list(runtimes) if runtimes else available_runtimes(bundle)[0]
    result = {"bundle": bundle.name, "threads": torch.get_num_threads(), "runtimes": {}}
    for name in names:
        per_batch = {}
        for bs in batch_sizes:
            sample = jets[: max(bs, min(len(jets), 4 * bs))]
            seconds = _time(lambda s=sample, b=bs, n=name: bundle.logits(s, n, b), repeats)
            per_batch[int(bs)] = [len(sample) / t for t in seconds]
        result["runtimes"][name] = per_batch
    return result


def plot_throughput(result: dict, path, force: bool = False) -> None:
    """Box plots of a `throughput` scan, jets/s (log scale) per batch size and runtime, written
    to `path` (PNG or PDF by its suffix; never over an existing file without `force`)."""
    from servable.figures import figure

    with figure(path, (6, 4), force=force) as (fig, ax):
        _throughput_axes(ax, result)


def _throughput_axes(ax, result: dict) -> None:
    names = list(result["runtimes"])
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        data = result["runtimes"][name]
        sizes = sorted(data)
        pos = np.arange(len(sizes)) + (i - (len(names) - 1) / 2) * width
        bp = ax.boxplot([data[s] for s in sizes], positions=pos, widths=width * 0.9,
                        patch_artist=True, manage_ticks=False)
        color = f"C{i}"
        for box in bp["boxes"]:
            box.set_facecolor(color)
            box.set_alpha(0.6)
        ax.plot([], [], color=color, lw=6, alpha=0.6, label=name)
        ax.set_xticks(np.arange(len(sizes)), [str(s) for s in sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel("jets / s")
    ax.set_yscale("log")
    ax.set_title(f"{result['bundle']}: throughput ({result['threads']} threads)")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")


def inference_bench(bundle: Bundle | None, jets: Jets, batch_sizes: Sequence[int],
                    repeats: int = 3, dense_jets: int = 512) -> dict:
    """The IN: dense published formulation vs the bucketed fast exact path vs the fused CPU
    kernel (servable.models.fused; nan where it cannot be built, the reason in `fused`) vs
    ONNX Runtime vs OpenVINO (float32; nan where OpenVINO is not installed), and the rate
    of the fast path's pair-layer matrix products alone (`pair_gemms`: the same products
    on pair inputs built beforehand, untimed), which bounds an unfused forward.

    The dense baseline runs on the first `dense_jets` jets (it is ~50x slower); rates are
    jets per second, so they compare directly. Without a bundle, the published architecture
    with random weights (seed 0) is measured: cost does not depend on the weights.
    """
    if bundle is None:
        import tempfile

        from servable.bundle.bundle import open_bundle, save_bundle
        from servable.models.taggers import INTagger

        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_bundle(INTagger({"kind": "in"}), Path(tmp) / "in",
                               name="in-published-architecture")
            return inference_bench(open_bundle(path), jets, batch_sizes, repeats, dense_jets)
    if bundle.kind != "in":
        raise ServableError("the inference bench compares IN implementations: give an IN "
                            "bundle")
    _check_counts(batch_sizes, repeats=repeats, dense_jets=dense_jets)
    net = bundle.tagger.net
    inputs = bundle.tagger.inputs(jets)
    tracks, vertices = (torch.from_numpy(inputs[k]) for k in ("tracks", "vertices"))
    ort = bundle.runtime("onnx")
    try:
        ov = bundle.runtime("openvino")  # float32 hint: the same arithmetic as the others
    except RuntimeUnavailable:
        ov = None
    fused_why = fused.unavailable()
    rows = {}
    with torch.inference_mode():
        tn, vn = net.track_norm(tracks), net.vertex_norm(vertices)
        for bs in batch_sizes:
            def dense(b=bs):
                for i in range(0, min(dense_jets, len(jets)), b):
                    net.core.dense_forward(tn[i:i + b], vn[i:i + b])

            def fast(b=bs):
                with fused.switched_off():
                    for i in range(0, len(jets), b):
                        net.core(tn[i:i + b], vn[i:i + b])

            def fused_forward(b=bs):
                for i in range(0, len(jets), b):
                    net.core(tn[i:i + b], vn[i:i + b])

            def onnx(b=bs):
                for i in range(0, len(jets), b):
                    ort.logits({k: v[i:i + b] for k, v in inputs.items()}, bucket=True)

            def openvino(b=bs):
                for i in range(0, len(jets), b):
                    ov.logits({k: v[i:i + b] for k, v in inputs.items()}, bucket=True)

            n_dense = min(dense_jets, len(jets))
            rate = {"dense": n_dense / min(_time(dense, repeats)),
                    "fast": len(jets) / min(_time(fast, repeats)),
                    "fused": (len(jets) / min(_time(fused_forward, repeats))
                              if fused_why is None else float("nan")),
                    "pair_gemms": len(jets) / min(_pair_gemm_seconds(net.core, tn, vn, bs)
                                                  for _ in range(repeats)),
                    "onnx": len(jets) / min(_time(onnx, repeats)),
                    "openvino": (len(jets) / min(_time(openvino, repeats)) if ov is not None
                                 else float("nan"))}
            rate["fast_over_dense"] = rate["fast"] / rate["dense"]
            rate["fused_over_fast"] = rate["fused"] / rate["fast"]
            rate["fused_over_pair_gemms"] = rate["fused"] / rate["pair_gemms"]
            rate["onnx_over_fast"] = rate["onnx"] / rate["fast"]
            rate["openvino_over_fast"] = rate["openvino"] / rate["fast"]
            rows[int(bs)] = rate
    n_tracks = jets.n_tracks
    flops = in_flops(net.core, n_tracks)
    for rate in rows.values():  # the useful work per second (padding and folding excluded)
        rate["fast_gflops"] = rate["fast"] * flops["fast_per_jet_mean"] / 1e9
    return {"bundle": bundle.name, "n_jets": len(jets), "threads": torch.get_num_threads(),
            "mean_tracks": float(n_tracks.mean()), "flops": flops,
            "fused": fused_why or "built", "batch_sizes": rows}


def _pair_gemm_seconds(core, tracks, vertices, batch_size: int) -> float:
    """Seconds that the fast path's pair-layer products (the two edge MLPs' second and third
    layers on every track-track and track-vertex pair of its multiplicity chunks) take alone
    over all jets, the pair inputs built beforehand for each batch and not timed."""
    tt, tv = core._folded()
    total = 0.0
    for i in range(0, len(tracks), batch_size):
        t, v = tracks[i:i + batch_size], vertices[i:i + batch_size]
        pairs = []
        for idx, k in bucket_chunks(filled_widths(t).numpy()):
            x = t[idx][:, :, :k].transpose(1, 2)
            y = v[idx].transpose(1, 2)
            recv, send = x @ tt.receiver + tt.bias, x @ tt.sender
            pairs.append((tt, (recv[:, :, None] + send[:, None]).relu_().flatten(0, 2)))
            recv, send = x @ tv.receiver + tv.bias, y @ tv.sender
            pairs.append((tv, (recv[:, :, None] + send[:, None]).relu_().flatten(0, 2)))
        start = time.perf_counter()
        for layers, h in pairs:
            torch.mm(torch.mm(h, layers.second), layers.third)
        total += time.perf_counter() - start
    return total


def in_flops(core, n_tracks: np.ndarray) -> dict:
    """Multiply-adds x 2 per jet, dense vs fast, from the architecture and multiplicities."""
    H, P, S, De, Do, N, Nv = core.hidden, core.P, core.S, core.De, core.Do, core.N, core.Nv
    edge = H * H + H * De  # fr2 + fr3 per pair (fr1 is split in the fast path)
    node = (P + 2 * De) * H + H * H + H * Do
    dense = (N * (N - 1) * (2 * P * H + edge) + N * Nv * ((P + S) * H + edge) + N * node
             + 2 * P * N * N * (N - 1) + De * N * N * (N - 1))  # + the incidence matmuls
    k = np.maximum(n_tracks, 1).astype(float)
    fast = k * k * edge + k * 2 * P * H + k * Nv * edge + k * (P * H) + k * node
    return {"dense_per_jet": 2.0 * dense, "fast_per_jet_mean": float(2.0 * fast.mean())}


def format_inference(report: dict) -> str:
    """The `inference_bench` report as a text table: FLOPs per jet, then per batch size the
    rates (jets/s) of each implementation and of the pair-layer products alone, their ratios
    and the fast path's GFLOP/s."""
    f = report["flops"]
    lines = [f"IN inference on {report['n_jets']} jets ({report['mean_tracks']:.1f} tracks/jet, "
             f"{report['threads']} threads); FLOPs/jet: dense {f['dense_per_jet'] / 1e6:.1f} M, "
             f"fast {f['fast_per_jet_mean'] / 1e6:.2f} M; fused kernel: {report['fused']}",
             f"  {'batch':>6s} {'dense':>8s} {'fast':>8s} {'fused':>8s} {'onnx':>8s} "
             f"{'openvino':>8s} {'pair GEMMs':>10s} {'fast/dense':>10s} {'fused/fast':>10s} "
             f"{'fused/GEMMs':>11s} {'onnx/fast':>9s} {'ov/fast':>8s} {'fast GFLOP/s':>12s}"]
    for bs, r in report["batch_sizes"].items():
        lines.append(f"  {bs:6d} {r['dense']:8.0f} {r['fast']:8.0f} {r['fused']:8.0f} "
                     f"{r['onnx']:8.0f} {r['openvino']:8.0f} {r['pair_gemms']:10.0f} "
                     f"{r['fast_over_dense']:9.1f}x {r['fused_over_fast']:9.2f}x "
                     f"{r['fused_over_pair_gemms']:10.2f}x {r['onnx_over_fast']:8.2f}x "
                     f"{r['openvino_over_fast']:7.2f}x {r['fast_gflops']:12.1f}")
    return "\n".join(lines)
