# Quick start: `make demo` (the main job) and `make test` (the tests). Both run `make setup`
# first, which builds the environment once per machine and links it as .venv.
PYTHON_ENV := .venv/bin/python
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
# Keep BLAS/OpenMP from oversubscribing small machines while tests run.
export OMP_NUM_THREADS ?= 2
PYTEST_ARGS ?=

.PHONY: setup test demo clean

setup:
	@bash tools/setup_env.sh

test: setup
	$(PYTHON_ENV) -m pytest tests $(PYTEST_ARGS)

demo: setup
	@if [ -f tools/demo.sh ]; then bash tools/demo.sh; else \
		echo "make demo: the synthetic-benchmark demo is not built yet (tools/demo.sh)."; exit 1; fi

clean:
	rm -rf .venv work_dirs .pytest_cache
