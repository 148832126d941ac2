# facesearch: `make install`, `make test`, `make demo` (see README.md).
#
# Dependencies come from uv.lock through uv. uv itself is taken from PATH, or
# installed once with pip into .tools/ (a fresh machine has only Python).

PYTHON      ?= python3
UV_VERSION  := 0.13.9
UV          ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV        := .venv
DEMO_DATA   ?= .demo-data
BENCH_INDEX ?= .bench-index
SHARED_PHOTOS := $(wildcard ../shared/data/photos)
export UV_PYTHON_DOWNLOADS := never
# Installed packages compiled to bytecode once: imports stay fast where
# PYTHONDONTWRITEBYTECODE is set (pymilvus: 1.8 s to import without).
export UV_COMPILE_BYTECODE := 1

# FAST=1: replace dlib-bin in the venv by dlib built here with clang against
# OpenBLAS for AVX2/FMA CPUs (tools/fast_dlib.py: ~7 minutes once, apt-get
# installing clang and libopenblas-dev if missing, then under a second from
# the wheel cached in ~/.cache/facesearch/wheels; falls back to dlib-bin,
# with a warning, where it cannot build). FAST=0: back to dlib-bin. Unset:
# the venv keeps the dlib it has; when a `uv sync` here puts dlib-bin back,
# the fast build is re-applied from the cache. (`uv run` without --no-sync
# installs dlib-bin over it: use .venv/bin/..., or `make install FAST=1`.)
FAST        ?=
FAST_DLIB    = $(VENV)/bin/python tools/fast_dlib.py --venv $(VENV) --uv $(UV)
FAST_REAPPLY = $(if $(filter 0,$(FAST)),true,$(FAST_DLIB) reapply)

# SCALE=1: also the scale-out backends (Milvus client + Milvus Lite, Dask
# distributed; docs/scale-out.md). `make test` always installs them.
SCALE       ?=
STAMP        = $(VENV)/.installed$(if $(filter 1,$(SCALE)),-scale,)

.PHONY: install test test-fast lint typecheck check docs demo lock clean bench

install: $(STAMP)
ifeq ($(FAST),1)
	@$(FAST_DLIB) apply
else ifeq ($(FAST),0)
	@$(FAST_DLIB) revert
endif

# Reinstall only when the lock or the project definition changed (or the
# other set of extras is installed: each sync installs exactly its set).
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@$(FAST_REAPPLY)
	@rm -f $(VENV)/.installed-scale
	@touch $@

$(VENV)/.installed-scale: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --extra scale
	@$(FAST_REAPPLY)
	@rm -f $(VENV)/.installed
	@touch $@

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

test:
	@$(MAKE) --no-print-directory install SCALE=1
	$(VENV)/bin/python -m pytest

# The inner loop: no real model, no browser, no process started (servers,
# clusters, killed runs) and FAISS only; the fakes of our seams stand in.
test-fast:
	@$(MAKE) --no-print-directory install SCALE=1
	$(VENV)/bin/python -m pytest -q -m "not model and not browser and not slow"

# The habits (configured in pyproject.toml): ruff's rules, mypy's types.
# Installed as `make test` installs (SCALE=1), so that running one after the
# other never reinstalls.
lint:
	@$(MAKE) --no-print-directory install SCALE=1
	$(VENV)/bin/ruff check .

typecheck:
	@$(MAKE) --no-print-directory install SCALE=1
	$(VENV)/bin/mypy config indexer application service facesearch

# What is generated from the code: config/default.toml and the settings
# table of docs/configuration.md; the endpoint table of docs/api.md (tests
# fail when either is stale).
docs: install
	$(VENV)/bin/python -m config.reference
	$(VENV)/bin/python -m service.api_reference

# Everything CI checks (.ci/run): lint, types, then the whole test suite.
check: lint typecheck
	@$(MAKE) --no-print-directory test

demo: install
	$(VENV)/bin/facesearch index --data-dir $(DEMO_DATA) tests/data $(SHARED_PHOTOS)
	$(VENV)/bin/facesearch serve --data-dir $(DEMO_DATA)

# Speed and quality figures (see docs/benchmarks.md); needs ../shared/data.
# About 50 minutes on 2 cores, most of it indexing all of LFW DevTrain 3 times.
bench: install
	$(UV) sync --frozen --group bench $(if $(filter 1,$(SCALE)),--extra scale,)
	@$(FAST_REAPPLY)
	$(VENV)/bin/python -m benchmarks.search_latency --approximate
	$(VENV)/bin/python -m benchmarks.query_photo
	$(VENV)/bin/python -m benchmarks.indexing --limit 0 --keep $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.identification --data-dir $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.clustering --data-dir $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.reindex
	$(VENV)/bin/python -m benchmarks.video
	$(VENV)/bin/python -m benchmarks.recall --data-dir $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.recognition --data-dir $(BENCH_INDEX)

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .tools $(DEMO_DATA) $(BENCH_INDEX)
