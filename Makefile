# The two commands a new user needs: `make demo` and `make test`. Both install what is missing.
.PHONY: demo test bench setup setup-test

demo: setup
	.venv/bin/gridwatch demo

test: setup-test
	.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	.venv/bin/python -m bench

setup:
	bash .ci/setup.sh

setup-test:
	bash .ci/setup.sh --test
