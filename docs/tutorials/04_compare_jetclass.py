# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 4: comparing explanations across BDT, MLP, ParT and ParticleNet
#
# **What this shows.** Four kinds of tagger trained on the same JetClass-like jets (ten
# classes, Pythia 8 + FastJet in the JetClass layout) explain one class, top quarks decaying
# to bqq (`Tbqq`) against the rest, and the explanation benchmark's metrics compare them:
# within a model, do its methods agree (and, for the BDT, does TreeSHAP agree with XGBoost's
# own importances); across models, does the same method rank the features they share alike;
# and is each explanation faithful, i.e. does removing the features it ranks first hurt the
# model faster than removing features at random. The functions are those behind
# `servable xai-benchmark` (`servable.study.xai_benchmark`, `servable.explain.metrics`);
# see [The explainability benchmark](../xai-benchmark.md). It ends with checks that fail when
# a result is wrong.
#
# **Run time.** 148 s run as a script on a 2-core machine; 166 s, and 155 s in the
# documentation build, before the ParT trained four epochs (see
# [Benchmarks](../benchmarks.md#documentation-build-and-tutorials)).
# Everything is tiny so the build stays fast: 80 jets per class to train on, 40 per class
# to test on, two epochs (four for the ParT, 60 boosting rounds for the BDT), small networks,
# and the explanations on 160 test jets (all 40 `Tbqq` jets and 120 others). The ParT dominates
# the time: it attends over 128 particle slots per jet. The models are weak at this size;
# the comparison is the point.
#
# Every command runs as a subprocess, printed as you would type it.

# %%
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import servable
from servable.explain import metrics as M
from servable.models.metrics import classification_metrics
from servable.study.xai import agreement as XA
from servable.study.xai import runs as XR

T0 = time.perf_counter()
WORK = Path(tempfile.mkdtemp(prefix="servable-tutorial-4-"))
os.environ["SERVABLE_CACHE"] = str(WORK / "cache")
os.chdir(WORK)


def sh(command: str) -> str:
    """Run a `servable ...` command as a user types it; print and return its output."""
    print(f"$ {command}")
    args = shlex.split(command)
    if args[0] == "servable":  # the CLI of this Python, whatever PATH says
        args = [sys.executable, "-m", "servable", *args[1:]]
    r = subprocess.run(args, capture_output=True, text=True)
    # FastJet prints its banner on stdout once per process: left out here
    print("\n".join(line for line in r.stdout.strip().splitlines() if not line.startswith("#")))
    if r.returncode != 0:
        raise RuntimeError(f"{command} failed: {r.stderr.strip()}")
    return r.stdout


print(f"servable {servable.__version__}, working in {WORK}")

# %% [markdown]
# ## Jets and four models
#
# Two independent JetClass-like files (ROOT, the JetClass layout). Each model reads what its
# kind reads: the BDT the 23 jet-level features, the MLP those plus per-particle features
# of the leading particles, ParT and ParticleNet the particles (ParticleNet here only its
# seven kinematic features, `--feature-set kin`). The `--param` values make the networks
# small ([Models and training](../models.md)).

# %%
sh("servable data generate --dataset jetclass --jets-per-class 80 --seed 1 --workers 2 "
   "--quiet -o train.root")
sh("servable data generate --dataset jetclass --jets-per-class 40 --seed 2 --workers 2 "
   "--quiet -o test.root")
TRAIN = {
    "bdt": "--param n_estimators=60",
    "mlp": "--lr 3e-3",
    "part": "--lr 1e-3 --epochs 4 --param embed_dims=[64,64] --param pair_embed_dims=[16,16] "
            "--param num_layers=1 --param num_cls_layers=1 --param dropout=0",
    "particlenet": "--lr 5e-3 --feature-set kin --param k=8 --param channels=[32,64] "
                   "--param layers_per_block=2 --param fc_width=64",
}
for kind, extra in TRAIN.items():
    epochs = "" if "--epochs" in extra else "--epochs 2 "
    sh(f"servable train --model {kind} --data train.root {epochs}--batch-size 16 "
       f"--seed 1 --quiet {extra} -o {kind}")
models = {kind: servable.load(kind) for kind in TRAIN}
test = servable.read_jets("test.root")
TARGET = test.class_names.index("Tbqq")
y_test = test.labels.argmax(1)
aucs = {}
for kind, bundle in models.items():
    m = classification_metrics(y_test, bundle.predict(test))
    aucs[kind] = (m["macro_auc"], m["auc"][str(TARGET)])
    print(f"  {kind:12s} macro AUC {aucs[kind][0]:.3f}, Tbqq vs rest {aucs[kind][1]:.3f}")

# %% [markdown]
# ## Explanations of `Tbqq`, per model
#
# `Context` holds a model, its jets and inputs, and the benchmark's masking machinery
# (a feature replaced by its population mean over filled slots, the most frequent value for
# a categorical one). `run_method` runs one method with the benchmark's parameters and
# returns per-feature importances (and per-jet attributions where the method has them).
# Masking's importance is the one-vs-rest AUC lost; the BDT's SHAP is TreeSHAP.

# %%
rng = np.random.default_rng(0)
others = rng.choice(np.flatnonzero(y_test != TARGET), 120, replace=False)
jets = test[np.sort(np.concatenate([np.flatnonzero(y_test == TARGET), others]))]
METHODS = {"bdt": ("shap", "masking"), "mlp": ("masking", "saliency", "ig"),
           "part": ("masking", "saliency"), "particlenet": ("masking", "saliency")}
contexts, runs, agreements = {}, {}, {}
for kind, bundle in models.items():
    t = time.perf_counter()
    ctx = contexts[kind] = XR.Context(bundle, jets, TARGET)
    runs[kind] = {name: XR.run_method(ctx, name) for name in METHODS[kind]}
    native = XR.native_importances(bundle, ctx.names) if kind == "bdt" else None
    agreements[kind] = XA.agreement(runs[kind], native)
    top = np.argsort(-runs[kind]["masking"].importance)[:3]
    print(f"  {kind:12s} {len(ctx.names):2d} features, masking's top 3: "
          f"{', '.join(ctx.names[i] for i in top)} ({time.perf_counter() - t:.0f} s)")

# %% [markdown]
# ### Do a model's methods agree?
#
# Spearman rho and Kendall tau of the importances, the top-5 overlap, and, where both
# methods give per-jet values, the median over jets of the per-jet Spearman correlation
# (`metrics.rank_agreement`, `metrics.per_jet_agreement`). For the BDT, TreeSHAP against
# XGBoost's gain, weight, cover and total gain.

# %%
print(f"{'model':12s} {'a':9s} {'b':9s} {'rho':>6s} {'tau':>6s} {'top5':>5s} {'per jet':>8s}")
for kind, ag in agreements.items():
    for row in ag["pairs"]:
        per_jet = f"{row['per_jet']['median']:8.2f}" if "per_jet" in row else f"{'-':>8s}"
        print(f"{kind:12s} {row['a']:9s} {row['b']:9s} {row['spearman']:6.2f} "
              f"{row['kendall']:6.2f} {row['top5']:5.2f} {per_jet}")
native = agreements["bdt"]["tree_shap_vs_native"]
print("BDT: TreeSHAP vs native, Spearman:",
      {k: round(v["spearman"], 2) for k, v in native.items()})

# %% [markdown]
# ### Does one method agree across models?
#
# `cross_model` compares the same method on two models over the features both read: the
# BDT and the MLP share the 23 jet-level features, the MLP and ParT the 17 particle
# features, the three networks ParticleNet's seven kinematic ones. The BDT and the particle
# models share none.

# %%
results = {kind: {"features": contexts[kind].names,
                  "importance": {n: r.importance.tolist() for n, r in runs[kind].items()}}
           for kind in models}
cross = XA.cross_model(results)
print(f"{'a':12s} {'b':12s} {'method':9s} {'shared':>6s} {'rho':>6s} {'top5':>5s}")
for row in cross:
    print(f"{row['a']:12s} {row['b']:12s} {row['method']:9s} {row['n_shared']:6d} "
          f"{row['spearman']:6.2f} {row['top5']:5.2f}")
by_method = {m: np.mean([r["spearman"] for r in cross if r["method"] == m])
             for m in ("masking", "saliency")}
print("mean Spearman across models:", {k: round(v, 2) for k, v in by_method.items()})

# %% [markdown]
# On these small models, saliency ranks the shared particle features more alike across the
# networks than masking does (the mean Spearman printed above; the check below asks for a
# margin of at least 0.1). Agreement is not correctness: masking measures
# what each model loses without a feature, and models that learned different things may
# lose different things. The faithfulness test below asks which ranking the model itself
# bears out.

# %% [markdown]
# ## Is masking faithful to each model?
#
# The deletion curve: replace the features by their mean in masking's order, most important
# first, and follow the `Tbqq`-vs-rest AUC; against the mean of three random orders
# (`metrics.deletion_curve`). A faithful ranking makes the AUC fall faster: a smaller area.
# (`servable.study.xai.faithfulness.method_curves` adds insertion curves and a greedy
# "oracle" order; on the ParT that search is minutes, so this tutorial draws the two curves
# that need only a few predictions per model.)

# %%
curves = {}
fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), sharey=True)
for ax, (kind, ctx) in zip(axes, contexts.items(), strict=True):
    n = len(ctx.features)
    steps = M.curve_steps(n, 6)
    order = np.argsort(-runs[kind]["masking"].importance, kind="stable").tolist()
    mask = M.deletion_curve(ctx.masked_prob, order, ctx.y, steps)
    rand = [M.deletion_curve(ctx.masked_prob, rng.permutation(n).tolist(), ctx.y, steps)
            for _ in range(3)]
    random_auc = np.mean([r["auc"] for r in rand], 0)
    curves[kind] = {"masking": mask["auc_area"],
                    "random": M.curve_area(random_auc, mask["fraction"])}
    ax.plot(mask["fraction"], mask["auc"], marker="o", label="masking order")
    ax.plot(mask["fraction"], random_auc, marker="s", ls="--", label="random (mean of 3)")
    ax.set_title(f"{kind} ({n} features)")
    ax.set_xlabel("fraction of features replaced")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("Tbqq vs rest AUC")
axes[0].legend()
fig.tight_layout()
plt.show()
for kind, c in curves.items():
    print(f"  {kind:12s} deletion area: masking {c['masking']:.3f}, random {c['random']:.3f}")

# %% [markdown]
# ## Checks
#
# Each assert fails when the result it names is wrong.

# %%
# every model learned something of the ten classes and of the target (chance: 0.5)
for kind, (macro, target_auc) in aucs.items():
    assert macro > 0.65 and target_auc > 0.7, (kind, macro, target_auc)
# every agreement is a correlation or an overlap
for row in [*cross, *(r for ag in agreements.values() for r in ag["pairs"])]:
    assert -1 <= row["spearman"] <= 1 and -1 <= row["kendall"] <= 1 and 0 <= row["top5"] <= 1
# TreeSHAP ranks the BDT's features like XGBoost's total gain does
assert native["total_gain"]["spearman"] > 0.3, native
# on the MLP, saliency and integrated gradients rank the features alike
mlp = {(r["a"], r["b"]): r for r in agreements["mlp"]["pairs"]}
assert mlp[("saliency", "ig")]["spearman"] > 0.5, mlp
# the models that share features were compared on them
assert {(r["a"], r["b"]) for r in cross} >= {("bdt", "mlp"), ("mlp", "part"),
                                              ("part", "particlenet")}
# across models, saliency's rankings agree more than masking's (the table above)
assert by_method["saliency"] > by_method["masking"] + 0.1, by_method
# masking's ranking is faithful on every model: the AUC falls faster than at random
for kind, c in curves.items():
    assert c["masking"] < c["random"], (kind, c)
print(f"all checks passed in {time.perf_counter() - T0:.0f} s")
