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
# # Tutorial 3: explaining the IN, the paper's Figures 5-9 on a published checkpoint
#
# **What this shows.** The explanations of the FAIR4HEP paper (Duarte et al., "FAIR AI
# models in high energy physics") drawn for its own published Interaction Network, without
# training anything: import the baseline checkpoint into a bundle, generate a small sample
# of H->bb and QCD jets, and draw per-feature masking (Figure 5), LRP per feature and per
# track and SV slot (Figure 6), the input correlations behind the paper's feature choices
# (Figure 7), the network activation patterns (NAP, Figure 8) and the NAP of the paper's
# smaller ablated model (Figure 9), with the library functions `servable reproduce` uses
# (`servable.study`). It ends with checks that fail when a result is wrong.
#
# **Run time.** 57 s run as a script, 53 s in the documentation build, on a shared, loaded
# 2-core machine (see [Benchmarks](../benchmarks.md#documentation-build-and-tutorials));
# 300 + 300 jets (the paper uses the CMS open-data test set; the figures' shapes already
# show at this size). The full reproduction is `servable reproduce`
# ([Reproducing the paper](../reproduce.md)).
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

import numpy as np
from IPython.display import Image, display

import servable
from servable.data.jets import filled_mask
from servable.explain import explain_bundle
from servable.models.metrics import classification_metrics
from servable.study import plots
from servable.study.ablation import DEFAULT_THRESHOLDS, class_sparsity, masking_study, model_row
from servable.study.correlations import input_correlations
from servable.study.relevance import lrp_by_class

T0 = time.perf_counter()
# the checkout the documentation is built from: it ships the published IN checkpoints
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents)
            if (p / "tests" / "fixtures" / "published-in").is_dir())
WORK = Path(tempfile.mkdtemp(prefix="servable-tutorial-3-"))
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


def show(paths: list[Path]) -> None:
    """Display the PNG of a figure the study functions wrote (they write PNG and PDF)."""
    display(Image(filename=str(next(p for p in paths if p.suffix == ".png"))))


print(f"servable {servable.__version__}, working in {WORK}")

# %% [markdown]
# ## The published models and some jets
#
# Two checkpoints of the paper ship with the repository (MIT licence, from
# FAIR4HEP/hbb_interaction_network): the baseline IN (30 track features, 14 SV features;
# 25,554 parameters) and the ablated IN of its Table 10, trained without 14 track features
# at hidden/De/Do = 16/8/8. `servable bundle import-checkpoint` turns each into a sealed
# bundle that reproduces the upstream implementation's logits ([Bundles and DOIs](../bundles.md)).

# %%
fixtures = ROOT / "tests" / "fixtures" / "published-in"
small_stem = "gnn_pfeaturesdropped14_hidden16_De8_Do8"
sh(f"servable bundle import-checkpoint {fixtures / 'gnn_baseline_best.pth'} "
   f"--metadata {fixtures / 'gnn_baseline_model_metadata.json'} "
   f"--record {ROOT / 'metadata' / 'hbb-in-baseline.yaml'} -o in-baseline")
sh(f"servable bundle import-checkpoint {fixtures / (small_stem + '_best.pth')} "
   f"--metadata {fixtures / (small_stem + '_model_metadata.json')} "
   f"--record {ROOT / 'metadata' / 'hbb-in-pfeaturesdropped.yaml'} -o in-small")
sh("servable data generate --signal 300 --background 300 --seed 3 --workers 2 --quiet "
   "-o jets.h5")
baseline, small = servable.load("in-baseline"), servable.load("in-small")
jets = servable.read_jets("jets.h5")
p = baseline.predict(jets)
metrics = classification_metrics(jets.labels.argmax(1), p)
print(f"{baseline}: AUC {metrics['roc_auc']:.4f}, accuracy {metrics['accuracy']:.3f} "
      f"on {len(jets)} jets ({', '.join(jets.class_names)})")
FIG = WORK / "figures"
FIG.mkdir()

# %% [markdown]
# ## Figure 5: masking one feature at a time
#
# Each feature in turn is replaced by zero in the filled slots (the paper's masking) and the
# AUC lost is recorded. The masking study also masks, together, every feature below each
# threshold of AUC lost (the paper's Table 9).

# %%
masking = masking_study(baseline, jets, DEFAULT_THRESHOLDS)
show(plots.plot_dauc(masking, FIG / "figure5", "baseline IN"))
delta = masking["delta_auc"]
for name in sorted(delta, key=delta.get, reverse=True)[:6]:
    print(f"  {name:18s} AUC lost {100 * delta[name]:6.2f}%")
for row in masking["cumulative"]:
    print(f"  below {row['threshold']:g}%: {row['n_masked']:2d} features masked together, "
          f"AUC {row['auc']:.4f}, fidelity {row['fidelity']:.3f}")

# %% [markdown]
# Masking by zero puts a categorical feature outside its values: `track_quality` takes the
# codes 1 and 5 and never 0, so its "importance" under zero-masking partly measures how the
# network reacts to a code it never saw. Replacing each feature by its population mean
# instead (the most frequent value for a categorical feature; the explanation benchmark's
# masking) asks what the feature adds beyond a typical value.

# %%
masking_mean = masking_study(baseline, jets, DEFAULT_THRESHOLDS, replacement="mean")
for name in ("track_quality", "sv_pt", "sv_ptrel", "trackBTag_EtaRel"):
    print(f"  {name:18s} AUC lost: zero {100 * delta[name]:6.2f}%, "
          f"mean/mode {100 * masking_mean['delta_auc'][name]:6.2f}%")

# %% [markdown]
# The ranking itself moves: `trackBTag_EtaRel`, first under zero-masking, loses a fraction
# of a percent when replaced by its mean. Which replacement a masking explanation uses is
# part of the explanation, and belongs beside it in a paper.

# %% [markdown]
# ## Figure 6: where the LRP relevance goes
#
# LRP (gamma rule) explains QCD jets as QCD and H->bb jets as H->bb; each jet's |relevance|
# is normalised to shares before the mean over the class. Per slot, tracks and SVs are
# ordered by decreasing relative energy; padded slots carry no relevance and sort last.

# %%
lrp = lrp_by_class(baseline, jets)
show(plots.plot_lrp(lrp, FIG / "figure6", "baseline IN"))
for c in lrp["sv_share"]:
    print(f"  {c}: share on SV features {lrp['sv_share'][c]:.3f}, on the 5 leading tracks "
          f"{lrp['leading_track_share'][c]:.3f}, on the next 5 {lrp['next_track_share'][c]:.3f}")

# %% [markdown]
# ## Figure 7: correlated inputs
#
# `sv_ptrel` is close to a function of `sv_pt` (and of `sv_erel`): masking one of them alone
# loses little because the others stand in, which is why the paper drops `sv_ptrel` and
# `sv_erel` together. The third panel is the `track_quality` distribution per class.

# %%
correlations = input_correlations(jets)
show(plots.plot_correlations(correlations, FIG / "figure7"))
print(f"  Spearman over {correlations['n_vertices']} filled SV slots:",
      {k: round(v, 3) for k, v in correlations["spearman"].items()})
print(f"  track_quality total variation distance between the classes: "
      f"{correlations['track_quality']['tv_distance']:.4f}")

# %% [markdown]
# ## Figure 8: network activation patterns
#
# The relative neural activation (RNA) of every hidden node, per class: the mean activation
# over the class's jets, divided by the largest mean of that layer. QCD is drawn negative
# beside H->bb; the right panel is |RNA(H->bb) - RNA(QCD)|. Nodes with RNA below 0.2 count
# as inactive (the paper's sparsity).

# %%
rna = explain_bundle(baseline, jets, "rna").extras["rna"]
show(plots.plot_nap(rna, FIG / "figure8", "baseline IN (60/20/24)"))
sparsity_baseline = class_sparsity(rna)
print("  sparsity (share of nodes with RNA < 0.2):",
      {k: round(v, 3) for k, v in sparsity_baseline.items()})

# %% [markdown]
# ## Figure 9: the NAP of a smaller model
#
# The ablated checkpoint (16 track features, 16/8/8) on the same jets. `model_row` gives the
# row of the paper's Table 10: size, parameters, AUC, the fidelity to the baseline
# (1 - mean |y - y_baseline|) and the RNA. With fewer nodes, more of them are active. To
# make such a model from your own bundle, `servable ablate BUNDLE --data JETS -o DIR`
# masks, picks the features below a threshold and retrains at several sizes
# ([Reproducing the paper](../reproduce.md)).

# %%
row = model_row("ablated", small, jets, p[:, 1])
show(plots.plot_nap(row["rna"], FIG / "figure9", f"ablated IN ({row['size']})"))
print(f"  {row['parameters']} parameters, {row['tracks']} track features, "
      f"AUC {row['roc_auc']:.4f}, fidelity {row['fidelity']:.3f}, sparsity",
      {k: round(v, 3) for k, v in row["sparsity"].items()})

# %% [markdown]
# ## Checks
#
# Each assert fails when the result it names is wrong.

# %%
# the published IN tags the generated jets well (an untrained IN scores about 0.5)
assert metrics["roc_auc"] > 0.95, metrics
# Figure 5: the SV kinematics matter more than a categorical code; the covariance entries
# matter least (masked together below 0.01%, the AUC does not move)
assert delta["sv_pt"] > delta["track_quality"] and delta["sv_ptrel"] > delta["track_quality"]
assert all(abs(delta[n]) < 1e-4 for n in ("track_dptdpt", "track_detadeta", "track_dxydz"))
below = next(r for r in masking["cumulative"] if r["threshold"] == 0.01)
assert below["n_masked"] >= 10 and abs(below["auc"] - masking["auc"]) < 0.005, below
assert masking["cumulative"][-1]["auc"] < masking["auc"] - 0.1  # below 1%: many, it hurts
# masking track_quality by its mode costs (almost) nothing: zero-masking's cost is the OOD code
assert abs(masking_mean["delta_auc"]["track_quality"]) < 0.25 * delta["track_quality"]
assert masking_mean["delta_auc"]["trackBTag_EtaRel"] < 0.1 * delta["trackBTag_EtaRel"]
# Figure 6: H->bb jets put far more relevance on SVs than QCD jets (which mostly have none)
assert lrp["sv_share"]["Hbb"] > 3 * lrp["sv_share"]["QCD"], lrp["sv_share"]
# ... and LRP gives padded slots exactly zero relevance, on every jet
e = explain_bundle(baseline, jets, "lrp", target=1)
for arr, filled in ((e.tracks, filled_mask(jets.tracks)), (e.vertices, filled_mask(jets.vertices))):
    per_slot = np.abs(np.asarray(arr)).sum(1)  # (jets, slots)
    assert per_slot[~filled].max() == 0 and per_slot[filled].sum() > 0
# Figure 7: sv_ptrel is nearly a function of sv_pt and sv_erel; track_quality barely differs
assert correlations["spearman"]["sv_ptrel-sv_pt"] > 0.8, correlations["spearman"]
assert correlations["spearman"]["sv_ptrel-sv_erel"] > 0.8, correlations["spearman"]
assert correlations["track_quality"]["tv_distance"] < 0.05
# Figures 8-9: the ablated model is about 9 times smaller, still a good tagger, close to the
# baseline, and its nodes are less often inactive
assert row["parameters"] < baseline.tagger.n_parameters() / 5 and row["tracks"] == 16
assert row["roc_auc"] > 0.95 and row["fidelity"] > 0.9, row["fidelity"]
assert np.mean(list(row["sparsity"].values())) < np.mean(list(sparsity_baseline.values()))
print(f"all checks passed in {time.perf_counter() - T0:.0f} s")
