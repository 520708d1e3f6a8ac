# ssi: Single-System-Image cluster as out-of-tree Rust-for-Linux modules.
#
#   make setup    install dependencies, fetch Linux 7.2, build the guest and KUnit kernels
#   make          build the four modules and ssictl (against the guest kernel, or KDIR=...)
#   make hostile  build target/ssi-hostile, the hostile RDMA CM client of the tests
#   make test     host tests + KUnit in UML + QEMU clusters + raspi0 board; ends with "N passed, N failed"
#   make demo     boot the 2-node cluster and show it
#   make soak     the cluster suites at their long sizes (not part of make test)
#
# Part of the tests: make test-host | test-kunit | test-cluster [TEST=name] | test-pizero
# Everything expensive is cached in $(SSI_CACHE) (default ~/.cache/ssi).

SHELL := /bin/bash
KDIR ?=
export KDIR
TEST ?=
export TEST

.PHONY: all modules ssictl hostile tools pizero setup test test-host test-kunit test-cluster test-pizero soak demo bench fmt clean

all: modules ssictl tools

modules:
	@scripts/build.sh modules

ssictl:
	@scripts/build.sh ssictl

hostile:
	@scripts/build.sh hostile

tools:
	@scripts/build.sh tools

pizero:
	@scripts/pizero.sh all

setup:
	@scripts/setup.sh

# The test runner builds the modules and ssictl itself, as counted test cases, so that
# a build failure still ends in the "N passed, N failed" summary.
test:
	@scripts/run-tests.sh all

test-host:
	@scripts/run-tests.sh host

test-kunit:
	@scripts/run-tests.sh kunit

test-cluster:
	@scripts/run-tests.sh cluster

test-pizero:
	@scripts/run-tests.sh pizero

soak:
	@scripts/run-tests.sh soak

demo: all
	@scripts/demo.sh

bench: all
	@scripts/bench.sh
	@scripts/bench-threads.sh
	@scripts/bench-gpio.sh

fmt:
	@scripts/build.sh fmt

clean:
	@scripts/build.sh clean
