# Set-up, the main job (demo) and the test suite. The venv lives in .venv at the repository root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= demo-output

.PHONY: demo test lint bench clean metadata-check container-test

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev]'
	# the Globus Compute engines: a second step (pyproject.toml's `remote` extra says why)
	$(BIN)/pip install -q -e '.[remote]' 2>&1 | grep -v "cffconvert\|dependency resolver"; true
	$(BIN)/python -c "import globus_compute_endpoint.engines, parsl"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/servable demo -o $(DEMO)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# fails when CITATION.cff, codemeta.json or metadata/generated/* differ from metadata/*.yaml
metadata-check: $(STAMP)
	$(BIN)/servable metadata sync --check

# builds the x86_64 image with podman (installs podman, runc, debootstrap if missing) and runs it
container-test: $(STAMP)
	$(BIN)/python containers/container_test.py

lint: $(STAMP)
	$(BIN)/ruff check servable tests

clean:
	rm -rf $(DEMO) .pytest_cache
