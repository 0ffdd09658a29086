# The two commands of the README. Everything else is detail.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin

.PHONY: run test install install-test system-deps lint bench messages

run: install ## set up and start the gateway and the dashboard
	@scripts/banner
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile -p $${PORT:-8000}

test: system-deps install-test ## set up and run the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# A new package (a folder with __init__.py) is importable from an editable install only once
# pip has run again: an existing .venv picks it up on the next make.
$(VENV)/.installed: pyproject.toml $(wildcard */__init__.py)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

system-deps: ## Debian packages the tests drive (redis-server, chromium, nginx, ...)
	@scripts/system-deps

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: install-test
	$(BIN)/python -m bench

# The catalogs of sesame/i18n.py: new messages in, old ones out, translations kept.
LOCALES := sesame/locale
messages: install-test ## extract the messages of each domain into its catalogs
	$(BIN)/pybabel --quiet extract -F babel.cfg --no-location --sort-output -o $(LOCALES)/dashboard.pot admin_ui
	$(BIN)/pybabel --quiet extract -F babel.cfg --no-location --sort-output -o $(LOCALES)/sesame.pot sesame gateway
	@for domain in dashboard sesame; do for lang in en zh_CN; do \
	  if [ -f $(LOCALES)/$$lang/LC_MESSAGES/$$domain.po ]; then \
	    $(BIN)/pybabel --quiet update --no-fuzzy-matching -D $$domain -l $$lang -i $(LOCALES)/$$domain.pot -d $(LOCALES); \
	  else $(BIN)/pybabel --quiet init -D $$domain -l $$lang -i $(LOCALES)/$$domain.pot -d $(LOCALES); fi; \
	done; done
