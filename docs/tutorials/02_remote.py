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
# # Tutorial 2: remote inference and explanation through Globus Compute
#
# **What this shows.** How an analyst on a laptop sends predictions and explanations to a
# Globus Compute endpoint and gets the same numbers back as in their own process:
# `servable.remote.Client`, what travels (the shipped functions, serialized by source, and
# the jets as arrays), how a large set of jets is split under the service's 10 MB payload
# limit and joined again in order, what each worker reports, and the command-line
# equivalent. It runs on the `"local"` endpoint: the real Globus Compute endpoint engine
# (`ProcessPoolEngine` of `globus_compute_endpoint`) on this machine, fed the same packed
# tasks a real endpoint receives. The last section says what changes for a real endpoint.
# It ends with checks that fail when a result differs from the local one.
#
# **Run time.** 49 s on a shared, loaded 2-core machine (measured in the documentation build:
# see [Benchmarks](../benchmarks.md#documentation-build-and-tutorials)); 200 jets.
#
# Background: [Remote execution](../remote.md).

# %%
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

import servable
from servable.remote import Client, PayloadTooLarge
from servable.remote.combine import as_explanation

T0 = time.perf_counter()
# the checkout the documentation is built from: it ships the published IN checkpoint
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents)
            if (p / "tests" / "fixtures" / "published-in").is_dir())
WORK = Path(tempfile.mkdtemp(prefix="servable-tutorial-2-"))
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


# %% [markdown]
# ## A model and some jets
#
# The published baseline Interaction Network of the FAIR4HEP paper (its checkpoint ships
# with the repository, MIT licence), imported into a sealed bundle, and 200 generated jets.
# The bundle goes into a folder of bundles: on an endpoint, `$SERVABLE_BUNDLE_PATH` names
# such a folder and tasks refer to a bundle by its name or DOI.

# %%
fixtures = ROOT / "tests" / "fixtures" / "published-in"
sh(f"servable bundle import-checkpoint {fixtures / 'gnn_baseline_best.pth'} "
   f"--metadata {fixtures / 'gnn_baseline_model_metadata.json'} "
   f"--record {ROOT / 'metadata' / 'hbb-in-baseline.yaml'} -o bundles/hbb-in-baseline")
sh("servable data generate --signal 100 --background 100 --seed 3 --workers 2 --quiet "
   "-o jets.h5")
os.environ["SERVABLE_BUNDLE_PATH"] = str(WORK / "bundles")  # the endpoint's bundles
jets = servable.read_jets("jets.h5")
here = servable.load("hbb-in-baseline")  # found by name, verified
p_here = here.predict(jets)
lrp_here = here.explain(jets, method="lrp")
print(here, f"{len(jets)} jets")

# %% [markdown]
# ## Predict on the endpoint
#
# `Client("local")` starts the endpoint engine with two workers. `predict` returns a
# future at once; its result holds the probabilities and, per task, the report of the
# worker that ran it. The task payload limit is the service's 10 MB; this client is given
# 250 kB so that 200 jets (under 1 MB: only their filled slots are sent) travel as several
# tasks, as 20,000 jets would at the real limit.

# %%
client = Client("local", workers=2, payload_limit=250_000)
future = client.predict("hbb-in-baseline", jets)
result = future.result()
p_remote = result["probabilities"]
print(f"{result['tasks']} tasks, largest payload {client.largest_payload / 1e6:.2f} MB, "
      f"runtime {result['runtime']}")
for w in result["workers"]:
    print(f"  worker pid {w['pid']} on {w['host']}: Python {w['python']}, "
          f"{w['torch_threads']} torch thread(s), bundle loaded {w['bundle_loads']}x")
print("max |p(remote) - p(here)| =", float(np.abs(p_remote - p_here).max()))

# %% [markdown]
# ## Explain on the endpoint
#
# LRP attributes each jet on its own, so the client splits it like a prediction and joins
# the per-jet relevance in order; the summary (mean relevance per feature) is the
# jet-weighted mean of the tasks' summaries. The combined result becomes the same
# `Explanation` a local call returns.

# %%
answer = client.explain("hbb-in-baseline", jets, "lrp").result()
lrp_remote = as_explanation(answer)
print(f"{answer['tasks']} tasks; top features remote: {lrp_remote.top(5)}")
print(f"                  here:   {lrp_here.top(5)}")

# %% [markdown]
# Masking scores the whole set at once (the AUC lost per feature), so it is never split;
# a set that does not fit one task is refused before anything is sent.

# %%
try:
    client.explain("hbb-in-baseline", jets, "masking").result()
    refused = None
except PayloadTooLarge as exc:
    refused = str(exc)
print("refused:", refused)
client.close()

# %% [markdown]
# ## The same from the command line
#
# `servable remote predict` reads the file here, sends the jets and writes the scores here,
# exactly as `servable predict` writes them.

# %%
sh("servable remote predict --endpoint local --workers 2 hbb-in-baseline jets.h5 "
   "-o scores.h5")
with h5py.File("scores.h5") as f:
    p_cli = f["scores"][:]

# %% [markdown]
# ## What changes for a real endpoint
#
# Only the endpoint's name. An endpoint is a UUID that `globus-compute-endpoint start`
# printed on the cluster; the client authenticates as a Globus confidential client whose
# id and secret are in `GLOBUS_COMPUTE_CLIENT_ID` and `GLOBUS_COMPUTE_CLIENT_SECRET`:
#
# ```python
# client = Client("4b116d3c-1703-4f8f-9f6f-39921e5864df")   # your endpoint's UUID
# scores = client.predict("10.5281/zenodo.N", jets).result()["probabilities"]
# ```
#
# ```bash
# export GLOBUS_COMPUTE_CLIENT_ID=... GLOBUS_COMPUTE_CLIENT_SECRET=...
# servable remote register                      # optional: register the functions once
# servable remote predict --endpoint 4b116d3c-... hbb-in-baseline jets.h5 -o scores.h5
# servable remote explain --endpoint 4b116d3c-... hbb-in-baseline jets.h5 --method lrp -o lrp/
# ```
#
# * **The endpoint** is configured from a template in `containers/endpoints/`
#   (`slurm-cpu.yaml`, `slurm-gpu.yaml`, `pbspro-gpu.yaml`: `GlobusComputeEngine` on a Slurm
#   or PBS Pro cluster, workers inside the servable Apptainer image); tutorial 5 validates one.
# * **The bundle** is found on the endpoint: a path there, a name or DOI under its
#   `$SERVABLE_BUNDLE_PATH` (the templates bind a bundles folder), or a DOI retrieved into the
#   endpoint's cache.
# * **The limits** are the same as here (10 MB per task, results in order, lost workers
#   retried); the service adds a rate limit of 20 requests per 10 s.
#
# Without credentials, a UUID is refused with one line before anything is sent:

# %%
saved = {k: os.environ.pop(k) for k in ("GLOBUS_COMPUTE_CLIENT_ID",
                                        "GLOBUS_COMPUTE_CLIENT_SECRET") if k in os.environ}
try:
    Client("4b116d3c-1703-4f8f-9f6f-39921e5864df")
    no_credentials = None
except servable.ServableError as exc:
    no_credentials = str(exc)
os.environ.update(saved)
print(no_credentials)

# %% [markdown]
# ## Checks

# %%
assert p_remote.shape == (len(jets), 2) and result["tasks"] > 1  # split, joined in order
np.testing.assert_allclose(p_remote, p_here, atol=1e-5)  # the same model, the same jets
assert all(w["torch_threads"] == max(1, os.cpu_count() // 2) for w in result["workers"])
assert lrp_remote.tracks.shape == lrp_here.tracks.shape
# per-jet relevance to float32 rounding (the workers' torch runs on fewer threads)
assert np.abs(lrp_remote.tracks - lrp_here.tracks).max() <= 1e-3 * np.abs(lrp_here.tracks).max()
for name, value in lrp_here.feature_relevance.items():
    assert abs(lrp_remote.feature_relevance[name] - value) <= 1e-3 * abs(value) + 1e-7, name
assert refused and "over the service's limit" in refused  # nothing was sent
np.testing.assert_allclose(p_cli, p_here, atol=1e-5)
assert no_credentials and "GLOBUS_COMPUTE_CLIENT_ID" in no_credentials
print(f"all checks passed in {time.perf_counter() - T0:.0f} s")
