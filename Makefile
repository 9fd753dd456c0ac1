# The two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
PORT ?= 8001
DEMO_TURNS ?= 20000

.PHONY: demo test

demo:
	$(PYTHON) -m venv .venv/demo
	.venv/demo/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
	.venv/demo/bin/python -m pip install -q --disable-pip-version-check -e .
	.venv/demo/bin/datasette runtime-truth demo demo-data --turns $(DEMO_TURNS) --force
	.venv/demo/bin/datasette runtime-truth migrate demo-data/turns.db
	@echo "Serving the demo: open http://127.0.0.1:$(PORT)/-/runtime-truth (Ctrl-C to stop)"
	.venv/demo/bin/datasette serve demo-data/turns.db demo-data/timeline.db -h 127.0.0.1 -p $(PORT)

test:
	PYTHON=$(PYTHON) scripts/test
