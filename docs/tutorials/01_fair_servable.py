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
# # Tutorial 1: from jets to a FAIR servable
#
# **What this shows.** The whole life of a model, as a model author lives it: generate
# H->bb and QCD jets (Pythia 8 + FastJet), train an Interaction Network, look at the sealed
# bundle it becomes, verify it, describe it with a metadata record (authors, licence,
# ORCID), cite it, publish it to get a DOI, and load it back by that DOI the way a reader of
# your paper would: downloaded, checked against Zenodo's MD5 and the bundle's own SHA-256s,
# cached. It ends with checks that fail when a step went wrong.
#
# **Run time.** 102 s on a shared, loaded 2-core machine (measured in the documentation build:
# see [Benchmarks](../benchmarks.md#documentation-build-and-tutorials)). The samples are small
# (300 + 300 jets to train on, 150 + 150 to test on) so the build stays fast; the model is
# still a good tagger.
#
# **The publishing server.** Zenodo cannot be reached from a build machine, so the
# tutorial publishes to the repository's Zenodo-like test server (`tests/zenodo_server.py`:
# a real HTTP server on this machine's loopback with Zenodo's deposit and records API and a
# doi.org-like resolver; the test suite uses the same one). The commands are those you would
# run against Zenodo: only `--base-url` and `$SERVABLE_DOI_RESOLVER` point them at it. With a
# real account, drop both and use `--sandbox` (test DOIs) or nothing (real DOIs).
#
# Every command runs as a subprocess, printed as you would type it.

# %%
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import servable

T0 = time.perf_counter()
# the checkout the documentation is built from (it holds the test server); found before the
# tutorial moves into its own folder
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents)
            if (p / "tests" / "zenodo_server.py").is_file())
# everything this tutorial writes goes here; the bundle cache too, so yours is untouched
WORK = Path(tempfile.mkdtemp(prefix="servable-tutorial-1-"))
os.environ["SERVABLE_CACHE"] = str(WORK / "cache")
os.chdir(WORK)


def sh(command: str, env: dict | None = None) -> str:
    """Run a `servable ...` command as a user types it; print and return its output."""
    print(f"$ {command}")
    args = shlex.split(command)
    if args[0] == "servable":  # the CLI of this Python, whatever PATH says
        args = [sys.executable, "-m", "servable", *args[1:]]
    r = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    # FastJet prints its banner on stdout once per process: left out here
    print("\n".join(line for line in r.stdout.strip().splitlines() if not line.startswith("#")))
    if r.returncode != 0:
        raise RuntimeError(f"{command} failed: {r.stderr.strip()}")
    return r.stdout


print(f"servable {servable.__version__}, working in {WORK}")

# %% [markdown]
# ## 1. Jets
#
# Two independent samples: one to train on, one to test on (another seed, the testing
# layout). `--workers 2` runs one Pythia per core; the same seed and worker count give
# bit-identical files. `servable data inspect` checks the layout and every feature against
# its documented range ([Data](../data.md)).

# %%
sh("servable data generate --signal 300 --background 300 --seed 1 --workers 2 --quiet "
   "-o train.h5")
sh("servable data generate --signal 150 --background 150 --seed 2 --workers 2 --quiet "
   "--split testing -o test.h5")
inspect = sh("servable data inspect test.h5")

# %% [markdown]
# ## 2. Train: the result is a bundle
#
# `servable train` writes a *bundle*: a directory that describes itself completely
# (architecture, inputs with units and padding, preprocessing, provenance, metrics) and
# seals every byte ([Bundles and DOIs](../bundles.md)).

# %%
sh("servable train --model in --data train.h5 --epochs 6 --seed 1 --quiet -o in-bundle")
print(sorted(p.name for p in Path("in-bundle").iterdir()))

# %%
evaluation = json.loads(sh("servable evaluate in-bundle --data test.h5 --json"))

# %% [markdown]
# ## 3. Verify
#
# The content digest covers every byte of every file, `servable.yaml` included. Quote it
# beside the DOI: it is what lets a reader check that the model they run is yours.

# %%
sh("servable bundle verify in-bundle")
digest_before = servable.load("in-bundle").manifest["digest"]

# %% [markdown]
# ## 4. Describe: who made it, under which licence
#
# A metadata record is the source of truth for everything that cites the model
# (`CITATION.cff`, `codemeta.json`, the RO-Crate, the Zenodo deposition). In a project it
# lives in `metadata/NAME.yaml`; this one names ORCID's test identity, Josiah Carberry.

# %%
Path("record.yaml").write_text("""\
name: hbb-in-tutorial
title: Interaction Network H->bb tagger trained in tutorial 1
version: 1.0.0
date_released: "2026-12-02"
upload_type: software
access_right: open
description: >-
  Interaction Network separating boosted H->bb jets from QCD jets, trained on 600 jets
  generated with Pythia 8 and FastJet in the CMS open-data layout (servable tutorial 1).
authors:
  - given-names: Josiah
    family-names: Carberry
    affiliation: Brown University
    orcid: https://orcid.org/0000-0002-1825-0097
keywords: [jet tagging, H->bb, interaction network, FAIR AI model]
license: MIT
related_identifiers:
  - identifier: 10.7483/OPENDATA.CMS.JGJX.MS7Q
    scheme: doi
    relation: isDerivedFrom
    resource_type: dataset
    title: Sample with jet properties for jet-flavor and other jet-related ML studies
""")
sh("servable bundle describe in-bundle --record record.yaml")
sh("servable fair-report in-bundle")

# %% [markdown]
# The FAIR report checks each principle on the bundle itself. Before publishing, the
# identifier principles (F1, F3, F4) and retrieval by identifier (A1) are missing: there is
# no DOI yet.
#
# ## 5. Publish: reserve a DOI, seal it in, upload
#
# `servable publish zenodo` reserves the DOI first, writes it into the bundle's metadata and
# seals the bundle anew, then uploads: the archived bundle carries its own DOI
# ([Publishing a DOI](../publishing.md)). The token comes from the environment and is never
# printed.

# %%
sys.path.insert(0, str(ROOT))
from tests.zenodo_server import ZenodoLike  # noqa: E402  (the repository's test double)

TOKEN = "tutorial-token"
server = ZenodoLike(token=TOKEN).__enter__()  # serves on 127.0.0.1 until the end
out = sh(f"servable publish zenodo in-bundle --base-url {server.url}",
         env={"ZENODO_TOKEN": TOKEN})
manifest = servable.load("in-bundle").manifest
doi, digest = manifest["doi"], manifest["digest"]
print(f"DOI {doi}, concept DOI {manifest['concept_doi']}, digest {digest}")

# %% [markdown]
# ## 6. Cite
#
# The citation names the DOI and, as its note, the content digest.

# %%
bibtex = sh("servable cite in-bundle --format bibtex")

# %% [markdown]
# ## 7. Load it back by its DOI
#
# A reader needs only the DOI (and, to be sure it is your model, the digest). The resolver
# redirects to the site's DOI resolver, which redirects to the record's landing page (each
# hop checked); the records API lists the archive, which is
# downloaded, checked against its MD5, unpacked safely, verified, and cached. Here
# `$SERVABLE_DOI_RESOLVER` points at the test server's resolver instead of doi.org.

# %%
os.environ["SERVABLE_DOI_RESOLVER"] = server.resolver
remote = servable.load(doi, digest=digest)
print(remote, "\n  from", remote.path)
jets = servable.read_jets("test.h5")
p_local = servable.load("in-bundle").predict(jets, runtime="onnx")
p_doi = remote.predict(jets, runtime="onnx")
print("max |p(DOI) - p(local)| =", float(np.abs(p_doi - p_local).max()))

# %% [markdown]
# Now that the DOI resolves, the FAIR report's A1 is a real retrieval (from the cache,
# where the load above put it) and every principle is met.

# %%
report = sh("servable fair-report in-bundle --min 1")
server.__exit__(None, None, None)

# %% [markdown]
# ## Checks
#
# Each assert fails when the step it names did not do its job.

# %%
assert "0 feature(s) with values outside the documented CMS range" in inspect, inspect
# the generated H->bb jets are well separated: an untrained model scores about 0.5
assert evaluation["n_jets"] == 300 and evaluation["roc_auc"] > 0.9, evaluation
assert digest != digest_before  # publishing sealed the DOI into the bundle: a new digest
assert doi.startswith("10.5072/zenodo.") and f"doi = {{{doi}}}" in bibtex
assert f"content digest {digest}" in bibtex
assert remote.path != Path("in-bundle").resolve()  # the copy came from the archive
assert str(remote.path).startswith(os.environ["SERVABLE_CACHE"])
assert remote.manifest["digest"] == digest
np.testing.assert_array_equal(p_doi, p_local)  # byte-identical bundle, identical scores
assert "11/11 principles met" in report.splitlines()[0], report
print(f"all checks passed in {time.perf_counter() - T0:.0f} s")
