# Every install step lives here: a fresh machine needs only python3 and make.
# torch is pinned so that pip never resolves a newer (multi-GB CUDA) build.
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install browser demo test test-all lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test]"
	touch $@

demo: install
	$(BIN)/untwine train --model betavae --dataset dsprites --steps 1500 --out runs/demo
	$(BIN)/untwine evaluate runs/demo --samples 1000
	$(BIN)/untwine report runs/demo

# The report test opens report.html in Debian's chromium; skipped where it cannot be installed.
browser:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		>/dev/null) || echo "chromium not installed: the browser test will be skipped"

test: install browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow"

# Everything, the slow checks too: real processes killed mid-run, Ray clusters on this machine.
test-all: install browser $(VENV)/.installed-ray
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

$(VENV)/.installed-ray: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test,ray]"
	touch $@

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs build src/*.egg-info
