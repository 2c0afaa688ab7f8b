# WGAN Lab. `make lab` opens the notebooks, `make test` runs every check.
# Both create .venv on first use and reuse it afterwards.

VENV        ?= .venv
PYTHON      ?= python3
# CPU build by default. A torch already present in $(VENV) (say a GPU user's CUDA build) is kept.
TORCH       ?= torch==2.13.0
# Optional index for torch, e.g. https://download.pytorch.org/whl/cpu on a machine without a local wheel.
TORCH_INDEX ?=
LAB_ARGS    ?=

BIN   := $(VENV)/bin
STAMP := $(VENV)/.labkit-installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup lab test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
		echo "keeping the installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)' 2>/dev/null)"; \
	else \
		$(BIN)/python -m pip install "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); \
	fi
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $@

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest --doctest-modules labkit tests
	LABKIT_QUICK=1 $(BIN)/python -m pytest --nbval-lax notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
