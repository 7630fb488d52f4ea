# gatewayd — the two commands a fresh Debian / Raspberry Pi OS machine needs:
#   make run    install what is missing, start the demo (daemon + page on emulated devices)
#   make test   install what is missing, run the whole suite
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python

.PHONY: run test bench venv clean install

venv:
	bash scripts/bootstrap

run:
	bash scripts/system-deps run
	bash scripts/bootstrap
	bash scripts/demo

test:
	bash scripts/system-deps test
	bash scripts/bootstrap
	bash scripts/test

bench:
	bash scripts/system-deps test
	bash scripts/bootstrap
	bash scripts/bench

install:
	bash scripts/install

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
