# redline: `make demo` and `make test` do all the setup on a fresh machine (idempotent;
# the second run reuses the virtualenvs, the uv download cache and the Maven cache).

PYTHON ?= python3
VENV := .venv
SUPERSET_VENV := .venv-superset
CACHE := .cache
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test test-unit lint benchmark clean-state system-packages jars

setup: system-packages $(VENV)/.installed $(SUPERSET_VENV)/.installed jars

# Debian packages: Java for Kafka/Spark (a JDK: the Thrift Server's login check is
# compiled with javac at start), Maven for the JVM artifacts, Chromium for dashboard
# screenshots and UI tests.
system-packages:
	@missing=""; \
	command -v javac >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@[ -x $(UV) ] || $(VENV)/bin/pip install -q uv
	@echo "installing redline and its pinned dependencies into $(VENV) (first time: a few minutes)"
	$(UV) pip install --python $(PY) -q -e '.[test]'
	@touch $@

$(SUPERSET_VENV)/.installed: requirements-superset.txt
	@[ -x $(SUPERSET_VENV)/bin/python ] || $(PYTHON) -m venv $(SUPERSET_VENV)
	@[ -x $(SUPERSET_VENV)/bin/uv ] || $(SUPERSET_VENV)/bin/pip install -q uv
	@echo "installing Superset into its own virtualenv $(SUPERSET_VENV)"
	$(SUPERSET_VENV)/bin/uv pip install --python $(SUPERSET_VENV)/bin/python -q -r requirements-superset.txt
	@touch $@

jars: $(VENV)/.installed
	@$(PY) -m redline.jvm $(CACHE) $$($(PY) -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')

demo: setup
	$(VENV)/bin/redline demo

test: setup lint
	$(PY) -m pytest tests

test-unit: setup lint
	$(PY) -m pytest tests/unit

# The import contracts of pyproject.toml (cli > features > services > core > schemas;
# streaming and jobs independent) and ruff.
lint: $(VENV)/.installed
	$(PY) tools/check_layers.py
	$(VENV)/bin/ruff check .

benchmark: setup
	@ls benchmarks/*.py >/dev/null 2>&1 && for b in benchmarks/*.py; do $(PY) $$b; done

clean-state:
	-$(VENV)/bin/redline down
	rm -rf .redline
