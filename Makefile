# Arbor: two commands on a fresh Debian machine with python3 + venv.
#   make run    set up .venv and start the console on http://127.0.0.1:$(PORT)
#               (make prometheus / make load in other shells feed it real metrics and traffic)
#   make test   set up .venv, install Debian's prometheus + chromium if missing, lint (ruff,
#               lint-imports, mypy), pytest, the golden-trace suite (latency verdict printed, not gated)

PYTHON ?= python3
PORT   ?= 8501
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# Reinstall only when the dependency files change, or when a top-level package appears
# (the editable install records the packages that exist at install time).
# Prometheus multiprocess directory shared by the console and CLI workloads (make load), so that
# the console's exporter serves every process' samples; cleared when the console starts.
# PROMETHEUS_MULTIPROC_DIR is prometheus_client's own switch, read when it is first imported
# (the one documented piece of process-global state, see observability/metrics/multiprocess.py).
METRICS_DIR ?= data/runtime/metrics
PROM_PORT   ?= 9090
LOAD_ARGS   ?= --workload data/workloads/mixed.jsonl --rate 20 --duration 60 --concurrency 4 \
               --faults "provider_error=0.05,latency_ms=200@0.1" --seed 1
# make demo: 29 days of simulated-clock traffic through the real engine into the console's store
# (ARBOR_DB_PATH, default data/runtime/arbor.db; it must hold no requests yet), then the alert
# replay over the last 28 (the day before gives the alert windows data at the window's start).
DEMO_REQUESTS ?= 31000
DEMO_SEED     ?= 12
DEMO_FAULTS   ?= error=0.0005,latency_ms=650@0.005
STAMP  := $(VENV)/.installed
PKG_INITS := $(wildcard engine/__init__.py observability/__init__.py app/__init__.py)

# Debian packages the tests need (Prometheus server + promtool, headless Chromium).
DEB_PACKAGES := prometheus chromium
DEB_BINARIES := /usr/bin/prometheus /usr/bin/promtool /usr/bin/chromium
# sudo only when we are not root and sudo exists.
SUDO := $(shell if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then echo sudo; fi)

.PHONY: help install run load demo prometheus test lint bench system-deps clean distclean

help:
	@echo "make run        start the console on http://127.0.0.1:$(PORT) (PORT=... to change)"
	@echo "make load       run a workload against the console's store and metrics (LOAD_ARGS=...)"
	@echo "make demo       fill an empty store with 29 simulated days (traffic pattern, incidents, alerts)"
	@echo "make prometheus start Debian's Prometheus on :$(PROM_PORT), scraping the console (deploy/)"
	@echo "make test       lint + full test suite + golden traces (installs prometheus/chromium if missing)"
	@echo "make lint       ruff check, lint-imports (layer contracts in pyproject.toml), mypy"
	@echo "make bench      run benchmarks/mcts_bench.py"
	@echo "make clean      remove caches and build artefacts (distclean also removes .venv)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml $(PKG_INITS) | $(PY)
	$(PIP) install -r requirements.txt
	$(PIP) install -e .
	touch $@

install: $(STAMP)

run: $(STAMP)
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	ARBOR_METRICS_DIR=$(METRICS_DIR) PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) ARBOR_PROMETHEUS_URL=$${ARBOR_PROMETHEUS_URL-http://127.0.0.1:$(PROM_PORT)} \
		$(VENV)/bin/streamlit run app/main.py --server.address 127.0.0.1 --server.port $(PORT)

load: $(STAMP)
	ARBOR_METRICS_DIR=$(METRICS_DIR) PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) $(PY) -m engine load $(LOAD_ARGS)

demo: $(STAMP)
	$(PY) -m engine load --clock simulated --days 29 --requests $(DEMO_REQUESTS) --seed $(DEMO_SEED) \
		--workload data/workloads/demo.jsonl --faults "$(DEMO_FAULTS)" --concurrency 2 --empty-store
	$(PY) -m engine slo alerts

prometheus: system-deps
	mkdir -p data/runtime/prometheus
	/usr/bin/prometheus --config.file=deploy/prometheus.yml --storage.tsdb.path=data/runtime/prometheus \
		--web.listen-address=127.0.0.1:$(PROM_PORT)

system-deps:
	@missing=""; for f in $(DEB_BINARIES); do [ -x "$$f" ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
		echo "Missing:$$missing -> installing Debian packages: $(DEB_PACKAGES)"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES); \
	fi

# Static checks: ruff; the import contracts of pyproject.toml [tool.importlinter] (pages -> app ->
# engine -> observability, no streamlit below app); mypy over the packages in [tool.mypy].
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: lint system-deps
	$(PY) -m pytest -n auto --maxprocesses 4
	$(PY) -m engine golden run --no-latency-gate

bench: $(STAMP)
	$(PY) benchmarks/mcts_bench.py

clean:
	rm -rf .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .hypothesis build dist *.egg-info test-results
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
