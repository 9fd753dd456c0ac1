# The two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
PORT ?= 8001
DEMO_TURNS ?= 20000

.PHONY: demo test

demo:
	PYTHON=$(PYTHON) PORT=$(PORT) DEMO_TURNS=$(DEMO_TURNS) scripts/demo

test:
	PYTHON=$(PYTHON) scripts/test
