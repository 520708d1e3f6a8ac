#!/usr/bin/env bash
# make demo: boots a 2-node ssi cluster under QEMU and shows what exists so far: both
# nodes load the four ssi modules, bring up soft-RoCE, configure each other as peers,
# and report their status and node tables.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$SSI_ROOT/scripts/cluster.sh"

KO=$SSI_ROOT
SSICTL=$SSI_ROOT/target/release/ssictl

show() { # NODE CMD
    printf '\n\033[1mnode%s$ %s\033[0m\n' "$1" "$2"
    cluster_run "$1" "$2"
}

ssi_step "booting 2 guests (Linux $(cat "$SSI_CACHE/src/current-version"), TCG)"
cluster_start 2
for n in 0 1; do
    cluster_run $n "insmod $KO/ssi_core/ssi_core.ko node_id=$n && insmod $KO/ssi_rdma/ssi_rdma.ko &&
        insmod $KO/ssi_migrate/ssi_migrate.ko && insmod $KO/ssi_gpio_bus/ssi_gpio_bus.ko peer_node=$((1 - n)) &&
        rdma link add rxe0 type rxe netdev eth0 && $SSICTL node add $((1 - n)) $(cluster_ip $((1 - n)))" >/dev/null
done
sleep 1
for n in 0 1; do
    show $n "rdma link show"
    show $n "$SSICTL status"
done
show 0 "$SSICTL nodes"
show 1 "cat /proc/ssi/nodes"
show 0 "ping -c 2 $(cluster_ip 1)"
show 0 "$SSICTL status --json"
echo
if cluster_check_kernel_logs; then
    ssi_step "demo done: both kernels clean (no BUG/WARNING/Oops)"
else
    ssi_die "a kernel reported a problem (see above)"
fi
