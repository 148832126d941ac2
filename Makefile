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

.PHONY: install test demo lock clean bench

install: $(VENV)/.installed

# Reinstall only when the lock or the project definition changed.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

test: install
	$(VENV)/bin/python -m pytest

demo: install
	$(VENV)/bin/facesearch index --data-dir $(DEMO_DATA) tests/data $(SHARED_PHOTOS)
	$(VENV)/bin/facesearch serve --data-dir $(DEMO_DATA)

# Speed and quality figures (see README "Benchmarks"); needs ../shared/data.
# About 50 minutes on 2 cores, most of it indexing all of LFW DevTrain 3 times.
bench: install
	$(UV) sync --frozen --group bench
	$(VENV)/bin/python -m benchmarks.search_latency
	$(VENV)/bin/python -m benchmarks.query_photo
	$(VENV)/bin/python -m benchmarks.indexing --limit 0 --keep $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.identification --data-dir $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.clustering --data-dir $(BENCH_INDEX)
	$(VENV)/bin/python -m benchmarks.reindex
	$(VENV)/bin/python -m benchmarks.video
	$(VENV)/bin/python -m benchmarks.recall --data-dir $(BENCH_INDEX)

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .tools $(DEMO_DATA) $(BENCH_INDEX)
