# Two commands: `make studio` starts the studio, `make test` runs the tests (CI runs `make test`).
# Each creates .venv and installs the requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: studio test test-fast test-browser screenshots lint bench bench-ui editor

$(STAMP): requirements.txt requirements-dev.txt requirements-fan.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements-dev.txt -r requirements-fan.txt
	# face-alignment would pull opencv-python beside opencv-contrib-python-headless: no deps
	$(BIN)/pip install --no-deps face-alignment==1.5.0
	# the package itself, editable: the `inpaintstudio` console command works from any folder
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

studio: $(STAMP)
	$(BIN)/python app.py

test: test-fast test-browser

test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto --maxprocesses=4 --dist loadscope

test-browser: $(STAMP)
	bash scripts/install_browser.sh $(BIN)/python
	$(BIN)/python -m pytest -m browser

# refresh docs/studio-*.png (tests alone write screenshots to a temporary folder only)
screenshots: $(STAMP)
	bash scripts/install_browser.sh $(BIN)/python
	INPAINTSTUDIO_SCREENSHOTS=$(CURDIR)/docs $(BIN)/python -m pytest -m browser tests/test_browser_studio.py

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/models.py

bench-ui: $(STAMP)
	bash scripts/install_browser.sh $(BIN)/python
	$(BIN)/python benchmarks/ui_latency.py

# rebuild the mask editor's bundle (inpaintstudio/ui/editor/dist/) from its sources in src/; commit both.
# Plain browser JavaScript: no npm packages; node, when present, checks the syntax.
editor: $(STAMP)
	$(BIN)/python -c "from inpaintstudio.ui.editor.build import build, source_hash; build(); print('editor bundle', source_hash()[:12])"
	if command -v node >/dev/null; then node --check inpaintstudio/ui/editor/dist/editor.js; fi
