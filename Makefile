# Every target sets up what it needs first: a fresh clone needs nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed

.PHONY: setup lock browser demo up down feed token tokens revoke coordinator coordinators revoke-coordinator docs messages test chaos bench lint format clean

# Every dependency, transitive ones included, is pinned with its hashes in the lock files
# (`make lock` rewrites them from pyproject.toml); setup installs exactly those, then the
# project itself without resolving anything again.
$(SETUP): pyproject.toml requirements.lock requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(SETUP)

LOCK := --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links

lock: $(SETUP) ## pin every dependency with its hashes: requirements.lock (the image), -dev (CI)
	$(BIN)/python -m pip install --quiet pip-tools==7.6.2
	$(BIN)/pip-compile $(LOCK) --upgrade -o requirements.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK) --upgrade --extra local --extra dev -c requirements.lock \
		-o requirements-dev.lock pyproject.toml

setup: $(SETUP)

browser:        ## Debian's chromium: the dashboard's test looks at it in a headless browser
	@command -v chromium >/dev/null || { \
		sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

demo: $(SETUP)  ## the whole pipeline on local servers, fed with incidents, printing aggregates
	$(BIN)/python -m deploy.cli demo

up: $(SETUP)    ## start the stack in the background on the default ports
	$(BIN)/python -m deploy.cli up

down: $(SETUP)
	$(BIN)/python -m deploy.cli down

feed: $(SETUP)  ## publish synthetic incidents to the stack that `make up` started
	$(BIN)/python -m deploy.cli feed

token: $(SETUP) ## issue an analysts' API token: make token SCOPE=network (or a hospital id)
	@test -n "$(SCOPE)" || { echo "usage: make token SCOPE=network (or SCOPE=<hospital_id>)"; exit 2; }
	@$(BIN)/python -m services.reporting.cli token --scope "$(SCOPE)"

tokens: $(SETUP) ## list analysts' API tokens: id, scope, expiry, revocation
	@$(BIN)/python -m services.reporting.cli tokens

revoke: $(SETUP) ## revoke an analysts' API token at once: make revoke TOKEN=<id from make tokens>
	@test -n "$(TOKEN)" || { echo "usage: make revoke TOKEN=<id from make tokens>"; exit 2; }
	@$(BIN)/python -m services.reporting.cli revoke "$(TOKEN)"

coordinator: $(SETUP) ## issue a coordinator's desk token: make coordinator SCOPE=<hospital_id> (or network)
	@test -n "$(SCOPE)" || { echo "usage: make coordinator SCOPE=<hospital_id> (or SCOPE=network)"; exit 2; }
	@$(BIN)/python -m services.matching.cli token --scope "$(SCOPE)" --label "$(or $(LABEL),coordinator $(SCOPE))"

coordinators: $(SETUP) ## list coordinators' tokens: id, scope, expiry, revocation
	@$(BIN)/python -m services.matching.cli tokens

revoke-coordinator: $(SETUP) ## revoke a coordinator's token: make revoke-coordinator TOKEN=<id>
	@test -n "$(TOKEN)" || { echo "usage: make revoke-coordinator TOKEN=<id from make coordinators>"; exit 2; }
	@$(BIN)/python -m services.matching.cli revoke "$(TOKEN)"

test: $(SETUP) browser  ## unit tests, then integration tests on real servers
	$(BIN)/python -m pytest

chaos: $(SETUP) ## services killed and servers paused while incidents flow; nothing lost or doubled
	$(BIN)/python -m deploy.cli chaos

bench: $(SETUP)
	$(BIN)/python -m deploy.cli bench

docs: $(SETUP) ## write each service's AsyncAPI document to docs/asyncapi/ (make test checks it)
	$(BIN)/python -m deploy.docs

messages: $(SETUP) ## gather the words the code says into shared/locale; then translate the new ones in nl
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ --no-location --sort-output --omit-header -o shared/locale/messages.pot .
	$(BIN)/pybabel -q update -i shared/locale/messages.pot -d shared/locale -l nl -w 100 --no-fuzzy-matching --ignore-obsolete

lint: $(SETUP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(SETUP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: down
	rm -rf .run
