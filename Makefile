# Arena: `make demo` serves the app with real data; `make test` runs the whole test suite.
# Both create/reuse the virtualenv in .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
FAKE_LLM_PORT ?= 8001
PYTEST_ARGS ?=

.PHONY: install demo serve test test-fast e2e bench lint format browser clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the Playwright tests (never a downloaded browser).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
			&& echo "installed chromium"; \
		else echo "warning: /usr/bin/chromium missing (apt-get install chromium); browser tests will be skipped"; fi; \
	fi

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py arena_demo --fake-llm-url http://127.0.0.1:$(FAKE_LLM_PORT)/v1
	$(BIN)/python manage.py arena_serve --host $(HOST) --port $(PORT) --fake-llm-port $(FAKE_LLM_PORT)

serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py arena_serve --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -q -m "not e2e and not slow" $(PYTEST_ARGS)

e2e: install browser
	$(BIN)/pytest -q -m e2e $(PYTEST_ARGS)

bench: install
	@# bench/judging.py runs bench/judging_pipeline.py as its second section; bench/_*.py are helpers
	@for b in $(filter-out bench/judging_pipeline.py bench/_%.py,$(wildcard bench/*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var .pytest_cache .hypothesis
