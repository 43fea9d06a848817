# The README's two commands: `make run` and `make test`. Both work on a fresh machine with only
# Python 3.11: they create .venv, install the project and do the rest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench bench-data browser-deps nginx-deps cluster clean vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py load_knowledge_base
	$(BIN)/python manage.py ensure_demo_user
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/uvicorn evi360.asgi:application --host $(HOST) --port $(PORT) --lifespan off --no-access-log --no-proxy-headers

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work
# here). Installed when missing and possible; otherwise those tests skip and say why.
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "no $(CHROMIUM) and no root apt-get: browser tests will be skipped"; fi; \
	fi

# nginx for `make cluster` and its test, installed like Chromium: when missing and possible.
nginx-deps:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's nginx-light for the multi-worker setup"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null) \
	      || echo "nginx could not be installed: the cluster test will be skipped"; \
	  else echo "no nginx and no root apt-get: the cluster test will be skipped"; fi; \
	fi

# A production-like run: $(WORKERS) $(SERVER) workers behind nginx on $(PORT), sharing PostgreSQL and
# Redis (DATABASE_URL / REDIS_URL, by default the local ones). docs/operations.md explains it.
WORKERS ?= 2
SERVER ?= uvicorn
CLUSTER_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/evi360
CLUSTER_REDIS_URL ?= redis://127.0.0.1:6379/0
cluster: install nginx-deps
	DATABASE_URL=$${DATABASE_URL:-$(CLUSTER_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(CLUSTER_REDIS_URL)} \
	  $(BIN)/python deploy/cluster.py --workers $(WORKERS) --server $(SERVER) --host $(HOST) --port $(PORT)

# pytest exits 5 when it collected no tests: for us that is a failure, not a pass.
test: install browser-deps nginx-deps
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The streaming benchmark against the FastAPI baseline on both model paths (scripted, and the real
# anthropic SDK against a Messages API stand-in: docs/performance.md), the model libraries' CPU per
# delta layer by layer, then streams per core under daphne and uvicorn. `make bench-data` measures retrieval and the dashboard queries.
bench: install
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/sdk_layers.py
	$(BIN)/python bench/servers.py
	$(BIN)/python bench/db_stress.py

bench-data: install
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/ttft.py

# The chat page's browser libraries (markdown-it, DOMPurify): npm ci of tools/vendor's lockfile,
# copied into static/vendor/ with a manifest of versions and hashes. Needs Node; `make run` does not.
vendor: install
	$(BIN)/python tools/vendor/refresh.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
