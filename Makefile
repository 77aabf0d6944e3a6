# Quick start: `make demo` (the main job) and `make test` (the tests). Both run `make setup`
# first, which builds the environment once per machine and gives the checkout .venv, whose
# python imports this checkout's mgenet_mm (no PYTHONPATH needed).
PYTHON_ENV := .venv/bin/python
# Keep BLAS/OpenMP from oversubscribing small machines while tests run.
export OMP_NUM_THREADS ?= 2
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo clean

setup:
	@bash tools/setup_env.sh

test: setup
	$(PYTHON_ENV) -m pytest tests $(PYTEST_ARGS)

demo: setup
	$(PYTHON_ENV) tools/demo.py $(DEMO_ARGS)

clean:
	rm -rf .venv work_dirs .pytest_cache
