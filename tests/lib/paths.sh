# shellcheck shell=bash
# Where the tests find what the build made: the modules and the programs they run in
# the guests (which see the host's root, so the same paths hold there). Defined once
# here; sourced by tests/lib/suite.sh, the demo and the benchmarks.

KO_CORE=$SSI_ROOT/ssi_core/ssi_core.ko
KO_RDMA=$SSI_ROOT/ssi_rdma/ssi_rdma.ko
KO_MIGRATE=$SSI_ROOT/ssi_migrate/ssi_migrate.ko
KO_GPIO=$SSI_ROOT/ssi_gpio_bus/ssi_gpio_bus.ko

SSICTL=$SSI_ROOT/target/release/ssictl
# The ioctl numbers and struct sizes of rust/src/ioctl.rs, as JSON, for raw ioctls.
SSI_ABI=$SSI_ROOT/target/release/ssi-abi
MEMTEST=$SSI_ROOT/target/release/ssi-memtest
CABLE=$SSI_ROOT/target/release/ssi-gpio-cable
HOSTILE=$SSI_ROOT/target/ssi-hostile
REGTEST=$SSI_ROOT/target/ssi-regtest
COUNTER=$SSI_ROOT/target/ssi-counter
THREADS=$SSI_ROOT/target/ssi-threads
# The ABI version the modules and ssictl built from this tree speak.
ABI_VERSION=$(ssi_abi_version)
