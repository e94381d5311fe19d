# Set-up, the main job (demo) and the test suite. The venv lives in .venv at the repository root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= demo-output

.PHONY: demo reproduce test lint bench clean metadata-check container-test fuzz docs planted jetclass-ladder

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev,docs]'
	# the Globus Compute engines: a second step (pyproject.toml's `remote` extra says why)
	$(BIN)/pip install -q -e '.[remote]' 2>&1 | grep -v "cffconvert\|dependency resolver"; true
	$(BIN)/python -c "import globus_compute_endpoint.engines, parsl"
	# weaver-core's own exporter makes the CMSSW export of the official ParticleNet that
	# tests/test_deploy.py imports; its export path needs none of its training dependencies
	# (tensorboard, pyarrow, tables, ...), which would add ~300 MB and pin numpy, so no deps
	$(BIN)/pip install -q --no-deps weaver-core==0.5.3
	$(BIN)/python -c "import weaver.nn.model.ParticleNet"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/servable demo -o $(DEMO)

# the paper reproduction's default run (10 seeds, early stopping, 5 k-fold folds): hours on a
# shared 2-core machine; `servable reproduce --quick` takes minutes
REPRODUCTION ?= paper-reproduction
reproduce: $(STAMP)
	$(BIN)/servable reproduce --out $(REPRODUCTION)

# the explainability benchmark against a planted mechanism (docs/xai-benchmark.md): the IN,
# the MLP and the ParT trained on jets where only the b/c-decay tracks, or only two track
# features, carry the label; generates its jets once (the suite's training sample)
PLANTED ?= planted-output
PLANTED_DATA ?= planted-jets.h5
planted: $(STAMP)
	test -f $(PLANTED_DATA) || $(BIN)/servable data generate -o $(PLANTED_DATA) --signal 1500 \
	  --background 1500 --seed 1 --workers 2 --quiet
	$(BIN)/python -m servable.study.xai.planted --data $(PLANTED_DATA) -o $(PLANTED)

# the JetClass ladder of docs/models.md: generated jets (300 a class to train on, an
# independent 200 to test on), every model family trained 3 epochs, the official ParticleNet
# checkpoints imported, all evaluated; bundles and records in $(LADDER) (~1 h on 2 shared cores)
JC_DATA ?= jetclass-data
LADDER ?= $(JC_DATA)/ladder
$(JC_DATA)/jc-train.root: | $(STAMP)
	$(BIN)/servable data generate --dataset jetclass --jets-per-class 300 --seed 11 --workers 2 -o $@
$(JC_DATA)/jc-test.root: | $(STAMP)
	$(BIN)/servable data generate --dataset jetclass --jets-per-class 200 --seed 12 --workers 2 -o $@
jetclass-ladder: $(JC_DATA)/jc-train.root $(JC_DATA)/jc-test.root
	OMP_NUM_THREADS=1 PYTHONPATH=. $(BIN)/python benchmarks/jetclass_ladder.py \
	  --train $(JC_DATA)/jc-train.root --test $(JC_DATA)/jc-test.root --out $(LADDER) --epochs 3

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# the documentation site in site/ (open site/index.html); --strict: a broken link, a missing
# API object or a failing tutorial (they are executed) fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --clean -d site

# fails when CITATION.cff, codemeta.json or metadata/generated/* differ from metadata/*.yaml
metadata-check: $(STAMP)
	$(BIN)/servable metadata sync --check

# podman build + predict-equals-host for one image: ARCH=x86_64 (default; also builds the
# spython-converted servable.def), aarch64 or ppc64le (emulated with qemu-user-static), cuda
# (the CUDA/TensorRT image from PyPI's CUDA wheels; its CPU path here). Needs root.
ARCH ?= x86_64
container-test: $(STAMP)
	$(BIN)/python containers/container_test.py --arch $(ARCH)

# coverage-guided fuzzing (atheris), SECONDS per target, one target after the other; seeds in
# fuzz/corpus/<target>/ (read only), new inputs in fuzz/findings/<target>/corpus, findings
# (crash-*, timeout-*, oom-*) in fuzz/findings/<target>/. Hangs and memory blow-ups are
# listed and the run goes on (libhdf5 can hang on a malformed file: docs/security.md); an
# exception that breaks the contract, or a native crash, stops that target and fails the run
# at the end.
SECONDS ?= 60
FUZZ_TARGETS := h5_reader bundle_loader manifest_record jetclass_root checkpoint_import records_json
fuzz: $(STAMP)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  d=fuzz/findings/$$t; mkdir -p $$d/corpus; echo "== $$t: $(SECONDS) s"; \
	  PATH="$(abspath $(BIN)):$$PATH" PYTHONPATH=. SERVABLE_FUZZ_CACHE=$$d fuzz/$$t.py \
	    $$d/corpus fuzz/corpus/$$t -fork=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=10 \
	    -rss_limit_mb=12288 -malloc_limit_mb=4096 -max_total_time=$(SECONDS) -artifact_prefix=$$d/ > $$d/log 2>&1; \
	  rc=$$?; grep -E "^#[0-9]+: cov" $$d/log | tail -1; \
	  for f in $$(ls $$d | grep -E "^(timeout|oom)-"); do echo "   hang or memory: $$d/$$f"; done; \
	  if ls $$d | grep -qE "^crash-" || { [ $$rc -ne 0 ] && ! ls $$d | grep -qE "^(timeout|oom)-"; }; \
	  then failed="$$failed $$t"; grep -A12 "Uncaught Python exception" $$d/log | head -14 \
	    || tail -20 $$d/log; ls $$d | grep -E "^crash-"; \
	  else echo "   contract kept"; fi; \
	done; if [ -n "$$failed" ]; then echo "contract broken in:$$failed"; exit 1; fi

lint: $(STAMP)
	$(BIN)/ruff check servable tests fuzz docs/tutorials

clean:
	rm -rf $(DEMO) .pytest_cache
