"""What transfers to the graph network: the explanation methods on ParticleNet beside ParT, on
the same jets and target, measured (issue 32, item 3).

`measure(models, jets, target)` runs every method on every model (ran or refused, with the
reason; seconds; whether padded particles get exactly zero relevance), measures IG's
completeness error against the number of path steps, for ParticleNet also with its kNN graph
frozen at the input's graph (so the effect of rebuilding the graph along the path is isolated),
and how often the graph of each EdgeConv block changes along the IG path. `render(results)`
writes the markdown section; every sentence that interprets a number is generated from it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from servable.data.jets import Jets, filled_mask
from servable.explain import Servable, method_class
from servable.explain.metrics import bootstrap_importance
from servable.explain.modelstate import explaining

METHODS = ("masking", "saliency", "ig", "shap", "lime", "edges", "attention", "lrp")
PARAMS = {"ig": {"n_steps": 32}, "shap": {"nsamples": 50, "background": 20},
          "lime": {"num_samples": 100}}
IG_STEPS = (8, 32, 96)
RESAMPLES = 200


def measure(models: dict[str, Servable], jets: Jets, target: int,
            ig_steps=IG_STEPS) -> dict:
    """Every method on every model, IG completeness against path steps and, for
    ParticleNet, the graph changes along the IG path; a JSON-ready dict."""
    out = header(jets, target, ig_steps)
    for name, bundle in models.items():
        out["models"][name] = measure_model(bundle, jets, target, ig_steps)
    return out


def header(jets: Jets, target: int, ig_steps=IG_STEPS) -> dict:
    """What every model's measurement shares: the jets, the target, the IG steps."""
    return {"n_jets": len(jets), "target": int(target),
            "target_name": jets.class_names[target], "ig_steps": list(ig_steps),
            "params": PARAMS, "models": {}}


def measure_model(bundle: Servable, jets: Jets, target: int, ig_steps=IG_STEPS) -> dict:
    """One model's entry of `measure`."""
    t0 = time.perf_counter()
    entry = {"kind": bundle.kind, "bundle": bundle.name, "methods": {},
             "ig": {"rebuilt": {}}}
    for method in METHODS:
        entry["methods"][method] = run_method(bundle, jets, target, method)
    for steps in ig_steps:
        entry["ig"]["rebuilt"][str(steps)] = completeness(bundle, jets, target, steps)
    if bundle.kind == "particlenet":
        entry["ig"]["frozen"] = {str(s): completeness(bundle, jets, target, s, frozen=True)
                                 for s in ig_steps}
        entry["graph_changes"] = graph_changes(bundle, jets, max(ig_steps))
        entry["removal"] = removal(bundle, jets, target)
    entry["seconds"] = round(time.perf_counter() - t0, 1)
    return entry


def run_method(bundle: Servable, jets: Jets, target: int, method: str) -> dict:
    """One method on one model: ran or not (the refusal's message), seconds, and how many
    padded particle slots got non-zero relevance."""
    cls = method_class(method)
    if bundle.kind not in cls.applies_to:
        return {"ran": False, "applies_to": list(cls.applies_to),
                "reason": f"applies to {', '.join(cls.applies_to)}"}
    t0 = time.perf_counter()
    try:
        e = bundle.explain(jets, method=method, target=target, **PARAMS.get(method, {}))
    except Exception as exc:  # noqa: BLE001 - a method that breaks is a result here
        return {"ran": False, "applies_to": list(cls.applies_to),
                "reason": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    result = {"ran": True, "seconds": round(time.perf_counter() - t0, 2),
              "applies_to": list(cls.applies_to), "top": e.top(3)}
    per_slot = _per_slot(e)
    if per_slot is not None:
        padded = ~filled_mask(bundle.tagger.inputs(jets)["particles"])
        result["padded_nonzero"] = int(np.count_nonzero(per_slot[padded[:, :per_slot.shape[1]]]))
        result["padded_slots"] = int(padded.sum())
    return result


def _per_slot(e) -> np.ndarray | None:
    if e.slotted() is not None:
        return np.abs(e.slotted()).sum(1)
    if "slot_relevance" in e.extras:
        return np.asarray(e.extras["slot_relevance"])
    return None


def completeness(bundle: Servable, jets: Jets, target: int, steps: int,
                 frozen: bool = False) -> dict:
    """IG (zero baseline) with `steps` path points: the relative completeness error
    |sum of attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)| per jet, its median
    with a bootstrap 95% interval over jets, and the median absolute error in logit units.
    `frozen` (ParticleNet): every EdgeConv block keeps the neighbours it has on the input
    itself all along the path (and at the baseline), jet by jet."""
    if frozen:
        parts = [_frozen_ig(bundle, jets[j:j + 1], target, steps) for j in range(len(jets))]
        rel = np.concatenate([p[0] for p in parts])
        absolute = np.concatenate([p[1] for p in parts])
    else:
        rel, absolute = _ig_errors(bundle, jets, target, steps)
    iv = bootstrap_importance(lambda i: np.array([np.median(rel[i])]), len(rel),
                              n_resamples=RESAMPLES)
    return {"median": float(np.median(rel)), "low": iv["low"][0], "high": iv["high"][0],
            "p90": float(np.quantile(rel, 0.9)), "median_abs": float(np.median(absolute)),
            "per_jet": rel.tolist()}


def _ig_errors(bundle, jets, target, steps) -> tuple[np.ndarray, np.ndarray]:
    e = bundle.explain(jets, method="ig", target=target, n_steps=steps)
    gap = e.output - e.base_value
    total = sum(np.asarray(r).reshape(len(jets), -1).sum(1) for r in e.relevance.values())
    return np.asarray(e.extras["completeness_error"], np.float64), np.abs(total - gap)


def _frozen_ig(bundle, jet: Jets, target, steps):
    """IG of one jet with each block's neighbours fixed to those of the jet itself: a
    forward pre-hook hands every EdgeConv block the recorded neighbour lists, tiled over the
    path points Captum evaluates together."""
    net = bundle.tagger.net
    blocks = list(net.core.edge_convs)
    recorded = []
    handles = [b.register_forward_pre_hook(lambda m, a: recorded.append(a[1].clone()))
               for b in blocks]
    try:
        with torch.no_grad():
            net(torch.from_numpy(bundle.tagger.inputs(jet)["particles"]))
    finally:
        for h in handles:
            h.remove()

    def hook_for(fixed):
        def replace(module, args):
            x, neighbours = args
            copies = neighbours.shape[0] // fixed.shape[0]
            n_real = fixed.shape[0]
            offset = torch.arange(copies).repeat_interleave(n_real).unsqueeze(1) * n_real
            tiled = fixed.repeat(copies, 1)
            return x, torch.where(tiled == n_real, copies * n_real, tiled + offset)
        return replace

    handles = [b.register_forward_pre_hook(hook_for(f)) for b, f in zip(blocks, recorded,
                                                                       strict=True)]
    try:
        return _ig_errors(bundle, jet, target, steps)
    finally:
        for h in handles:
            h.remove()


def graph_changes(bundle: Servable, jets: Jets, steps: int) -> dict:
    """Along the IG path alpha * x (zero baseline, `steps` points, alpha in (0, 1]), per
    EdgeConv block: the fraction of consecutive path points between which some particle's
    neighbour set changes, and the mean fraction of particles whose set changes; averaged over
    jets. Block 1 finds neighbours in the fixed (deta, dphi), later blocks in features."""
    net = bundle.tagger.net
    blocks = list(net.core.edge_convs)
    alphas = torch.arange(1, steps + 1, dtype=torch.float32) / steps
    any_change = np.zeros((len(blocks), len(jets)))
    share = np.zeros((len(blocks), len(jets)))
    x_all = bundle.tagger.inputs(jets)["particles"]
    recorded: list[torch.Tensor] = []  # each block's neighbour lists, in block order
    with explaining(net), torch.no_grad():
        for j in range(len(jets)):
            (std,), (points, mask) = net.standardize(torch.from_numpy(x_all[j:j + 1]))
            path = alphas.view(-1, 1, 1) * std
            recorded.clear()
            handles = [b.register_forward_pre_hook(lambda m, a: recorded.append(a[1]))
                       for b in blocks]
            try:
                net.core_forward(path, points.expand(steps, -1, -1),
                                 mask.expand(steps, -1, -1))
            finally:
                for h in handles:
                    h.remove()
            n_real = int(mask.sum())
            for b, nb in enumerate(recorded):
                # path point s numbers its particles s * n_real ...; the padded node is last
                sets = nb.numpy().reshape(steps, n_real, -1) \
                    - np.arange(steps)[:, None, None] * n_real
                sets[sets >= n_real] = -1
                sets = np.sort(sets, axis=-1)
                changed = (sets[1:] != sets[:-1]).any(-1)  # (steps - 1, particles)
                any_change[b, j] = changed.any(1).mean()
                share[b, j] = changed.mean()
    return {f"EdgeConv block {b + 1}": {"steps_with_change": float(any_change[b].mean()),
                                        "particles_changed": float(share[b].mean())}
            for b in range(len(blocks))}


REMOVAL_BY = ("edges", "saliency")


def removal(bundle: Servable, jets: Jets, target: int, seed: int = 0) -> dict:
    """Per jet, the change |delta logit| of the target when the one particle a method ranks
    most relevant is removed (`edges`: edge relevance sent; `saliency`: |gradient| summed
    over features), against removing a random particle (the baseline): mean over jets with
    a bootstrap 95% interval of the mean."""
    x = bundle.tagger.inputs(jets)["particles"]
    filled = filled_mask(x)
    base = bundle.logits(jets)[:, target]
    choices = {}
    for method in REMOVAL_BY:
        e = bundle.explain(jets, method=method, target=target)
        choices[method] = np.where(filled, _per_slot(e)[:, : filled.shape[1]], -np.inf).argmax(1)
    rng = np.random.default_rng(seed)
    choices["random"] = np.array([rng.choice(np.flatnonzero(f)) for f in filled])
    out = {}
    for name, slots in choices.items():
        delta = np.abs(bundle.logits(without_particles(jets, slots))[:, target] - base)
        iv = bootstrap_importance(lambda i, d=delta: np.array([d[i].mean()]), len(delta),
                                  n_resamples=RESAMPLES)
        out[name] = {"mean": float(delta.mean()), "low": iv["low"][0], "high": iv["high"][0]}
    return out


def without_particles(jets: Jets, slots: np.ndarray) -> Jets:
    """`jets` with particle `slots[j]` of each jet j removed (later particles move up)."""
    from servable.data.jets import Group

    g = jets.group("particles")
    values = g.values.copy()
    for j, s in enumerate(slots):
        values[j, :, s:-1] = values[j, :, s + 1:]
        values[j, :, -1] = 0
    return jets.replace(Group(g.name, values, g.features))


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 0.01 else f"{v:.3f}"


def _interval(c: dict) -> str:
    return f"{_fmt(c['median'])} [{_fmt(c['low'])}, {_fmt(c['high'])}]"


def render(results: dict, command: str = "") -> str:
    """The markdown section: methods per model, IG completeness, graph changes, LRP."""
    models = results["models"]
    names = list(models)
    lines = ["# What transfers to the graph network: ParticleNet beside ParT", "",
             f"{results['n_jets']} jets, target class {results['target_name']}; the same jets "
             "for every model and method. Generated from `results.json`.", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    lines += ["## Which methods run", "",
              "| method | " + " | ".join(f"{n} ({models[n]['kind']})" for n in names) + " |",
              "| --- " * (len(names) + 1) + "|"]
    for method in METHODS:
        cells = []
        for n in names:
            r = models[n]["methods"][method]
            if not r["ran"]:
                cells.append(f"not applicable ({r['reason']})")
                continue
            pad = "" if "padded_nonzero" not in r else \
                f"; padded slots non-zero: {r['padded_nonzero']} of {r['padded_slots']}"
            cells.append(f"ran, {r['seconds']:.1f} s{pad}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", transfer_sentence(results), "", "## IG completeness against path steps", "",
              "Median relative completeness error |sum of attributions - (f(x) - f(0))| / "
              "|f(x) - f(0)| over jets, bootstrap 95% interval in brackets "
              f"({RESAMPLES} resamples).", "",
              "| model | graph | " + " | ".join(f"{s} steps" for s in results["ig_steps"]) + " |",
              "| --- " * (len(results["ig_steps"]) + 2) + "|"]
    for n in names:
        for graph, rows in models[n]["ig"].items():
            label = graph if models[n]["kind"] == "particlenet" else "(no graph)"
            lines.append(f"| {n} | {label} | " + " | ".join(
                _interval(rows[str(s)]) for s in results["ig_steps"]) + " |")
    lines += ["", *completeness_sentences(results), ""]
    for n in names:
        changes = models[n].get("graph_changes")
        if not changes:
            continue
        lines += [f"## kNN graph changes along the IG path ({n})", "",
                  "| block | path steps where the graph changes | particles whose neighbours "
                  "change per step |", "| --- | --- | --- |"]
        for block, c in changes.items():
            lines.append(f"| {block} | {c['steps_with_change']:.1%} | "
                         f"{c['particles_changed']:.1%} |")
        lines.append("")
    for n in names:
        rem = models[n].get("removal")
        if not rem:
            continue
        lines += [f"## Removing the most relevant particle ({n})", "",
                  "Mean |change of the target logit| over jets when the particle a method ranks "
                  "first is removed, against a random particle (bootstrap 95% interval).", "",
                  "| removed by | mean abs change of the logit |", "| --- | --- |"]
        lines += [f"| {k} | {_interval_mean(v)} |" for k, v in rem.items()]
        lines += ["", removal_sentence(n, rem), ""]
    lines += ["## LRP", "", lrp_sentence(results), ""]
    return "\n".join(lines)


def _interval_mean(c: dict) -> str:
    return f"{_fmt(c['mean'])} [{_fmt(c['low'])}, {_fmt(c['high'])}]"


def removal_sentence(name: str, rem: dict) -> str:
    """Each ranking's removal effect against the random baseline, by interval overlap."""
    r = rem["random"]
    parts = []
    for k in REMOVAL_BY:
        v = rem[k]
        verdict = ("above the random baseline" if v["low"] > r["high"] else
                   "below the random baseline" if v["high"] < r["low"] else
                   "not distinguishable from the random baseline (intervals overlap)")
        parts.append(f"{k} {_fmt(v['mean'])} is {verdict}")
    return f"{name}: " + "; ".join(parts) + f" ({_fmt(r['mean'])})."


def transfer_sentence(results: dict) -> str:
    """How many methods ran on every ParticleNet, and how many kept padding silent."""
    models = results["models"]
    gnn = [n for n in models if models[n]["kind"] == "particlenet"]
    if not gnn:
        return "No ParticleNet was measured."
    ran = [m for m in METHODS if all(models[n]["methods"][m]["ran"] for n in gnn)]
    clean = [m for m in ran if all(models[n]["methods"][m].get("padded_nonzero", 0) == 0
                                   for n in gnn)]
    return (f"On ParticleNet {len(ran)} of {len(METHODS)} methods ran ({', '.join(ran)}); "
            f"{len(clean)} of them give padded particles exactly zero relevance.")


def completeness_sentences(results: dict) -> list[str]:
    """Per model, whether IG's completeness error falls with the steps; frozen against
    rebuilt graph; ParticleNet against ParT at the most steps (interval overlap decides)."""
    steps = [str(s) for s in results["ig_steps"]]
    out = []
    for n, m in results["models"].items():
        rows = m["ig"]["rebuilt"]
        first, last = rows[steps[0]], rows[steps[-1]]
        falls = last["high"] < first["low"]
        out.append(f"{n}: the median completeness error goes from {_fmt(first['median'])} at "
                   f"{steps[0]} steps to {_fmt(last['median'])} at {steps[-1]}; "
                   + ("it falls (the intervals do not overlap)." if falls else
                      "it does not fall beyond the intervals (they overlap)."))
        if "frozen" in m["ig"]:
            frozen = m["ig"]["frozen"][steps[-1]]
            lower = frozen["high"] < last["low"]
            out.append(f"{n} with the graph frozen at the input's: {_fmt(frozen['median'])} at "
                       f"{steps[-1]} steps, "
                       + ("below the rebuilt graph's interval: the same network with its "
                          "graph held fixed is complete, so rebuilding the kNN graph along "
                          "the path is what breaks completeness." if lower else
                          "not below the rebuilt graph's interval: rebuilding the graph is "
                          "not shown to be the cause."))
    kinds = {n: m["kind"] for n, m in results["models"].items()}
    for g in (n for n, k in kinds.items() if k == "particlenet"):
        for t in (n for n, k in kinds.items() if k == "part"):
            a = results["models"][g]["ig"]["rebuilt"][steps[-1]]
            b = results["models"][t]["ig"]["rebuilt"][steps[-1]]
            verdict = ("ParticleNet's IG is less complete" if a["low"] > b["high"] else
                       "ParticleNet's IG is more complete" if a["high"] < b["low"] else
                       "the intervals overlap: no difference is shown")
            out.append(f"At {steps[-1]} steps, {g} {_interval(a)} against {t} "
                       f"{_interval(b)}: {verdict}.")
    return out


def lrp_sentence(results: dict) -> str:
    """Whether LRP ran, the models its rules cover, and what EdgeConv and ParT lack."""
    r = next(iter(results["models"].values()))["methods"]["lrp"]
    return (f"LRP {'ran' if r['ran'] else 'is refused'} here: its rules are implemented "
            f"for {', '.join(r['applies_to'])} (linear and ReLU layers). ParticleNet's "
            "EdgeConv would need rules for the kNN selection (top-k: a discrete choice that "
            "passes no relevance), the gather of neighbour features and the mean over "
            "neighbours, and ParT's for softmax attention and layer norm; neither exists.")
