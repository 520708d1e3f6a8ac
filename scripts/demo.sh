#!/usr/bin/env bash
# make demo: boots a 2-node ssi cluster under QEMU and shows what exists so far: both
# nodes load the four ssi modules, bring up soft-RoCE, configure each other as peers,
# connect over RDMA, and show their status, node tables, a ping, a key written on one
# node and read on the other, a page one node reads from the other by RDMA READ, a
# shared region, and a running counter that migrates to node 1 and back while its
# output keeps coming in this terminal and its 100 MiB checksum holds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$SSI_ROOT/tests/lib/cluster.sh"


show() { # NODE CMD
    printf '\n\033[1mnode%s$ %s\033[0m\n' "$1" "$2"
    cluster_run "$1" "$2"
}

ssi_step "booting 2 guests (Linux $(cat "$SSI_CACHE/src/current-version"), TCG)"
cluster_start 2
for n in 0 1; do
    cluster_bring_up $n rdma migrate gpio peers down_after_ms=$SSI_TCG_DOWN_AFTER_MS >/dev/null
done
cluster_run 0 "for i in \$(seq 100); do grep -qE '^1 .* up ' /proc/ssi/nodes && exit 0; sleep 0.2; done; exit 1" >/dev/null ||
    ssi_die "the nodes did not connect (see /tmp/ssi-cluster-last)"
sleep 1.5
for n in 0 1; do
    show $n "rdma link show"
    show $n "$SSICTL status"
done
show 0 "$SSICTL nodes"
show 1 "cat /proc/ssi/nodes"
show 0 "$SSICTL ping 1 -c 5"
show 1 "$SSICTL kv put demo/greeting 'hello from node 1'"
show 0 "$SSICTL kv get demo/greeting"
printf '\n\033[1mnode1$ %s\033[0m\n' "$SSICTL page expose --pattern 42 --json"
out=$(cluster_run 1 "$SSICTL page expose --pattern 42 --json")
echo "$out"
handle=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["handle"])' "$out")
show 0 "$SSICTL page read 1 $handle --repeat 100 --expect-pattern 42"
# Shared memory: a region homed on node 0, written there, read byte for byte on node 1,
# then half of it rewritten on node 1 and seen on node 0.
show 0 "$SSICTL region create demo 1M --mode 0644"
show 0 "$MEMTEST fill demo --seed 1"
show 1 "$MEMTEST verify demo --seed 1"
show 1 "$MEMTEST fill demo --seed 2 --offset 512K"
show 0 "$MEMTEST verify demo --seed 2 --offset 512K"
show 0 "cat /proc/ssi/regions"
show 1 "$SSICTL region list"

# Process migration: a counter started on node 0 prints a line per second and checks a
# slice of its 100 MiB buffer each time; it moves to node 1 and back home while running.
# Its output file is on node 0 (in the run directory, so this terminal can follow it).
for n in 0 1; do cluster_spawn $n "exec $SSICTL daemon >>/tmp/daemon.log 2>&1" >/dev/null; done
printf '\n\033[1mnode0$ %s\033[0m\n' "ssi-counter -m 100 -t 45 -s 16 > counter.out &"
cluster_run 0 "( $COUNTER -m 100 -t 45 -s 16 -i 1000 >/run/ssi/counter.out 2>&1; echo \"counter exited with \$?\" >>/run/ssi/counter.out ) >/dev/null 2>&1 </dev/null &" >/dev/null
pid=$(cluster_run 0 "for i in \$(seq 300); do p=\$(sed -n 's/^ready \([0-9]*\).*/\1/p' /run/ssi/counter.out); [ -n \"\$p\" ] && { echo \$p; exit 0; }; sleep 0.2; done; exit 1") ||
    ssi_die "the counter did not start"
tail -n +1 -f "$cluster_dir/counter.out" | sed -u 's/^/    counter | /' &
tailer=$!
sleep 8
show 0 "$SSICTL migrate $pid 1"
show 0 "$SSICTL ps"
sleep 10
q=$(cluster_run 1 "$SSICTL ps --json" | python3 -c 'import json, sys; print(next(p["pid"] for p in json.load(sys.stdin)["processes"] if p["role"] == "running"))')
show 1 "$SSICTL migrate $q 0"
show 0 "cat /proc/ssi/ps"
cluster_run 0 "for i in \$(seq 900); do grep -q '^counter exited' /run/ssi/counter.out && exit 0; sleep 0.5; done; exit 1" 600 >/dev/null
sleep 1
kill "$tailer" 2>/dev/null || true
grep -q '^final ok' "$cluster_dir/counter.out" && grep -q '^counter exited with 0' "$cluster_dir/counter.out" ||
    ssi_die "the migrated counter did not finish cleanly (see above)"
ssi_step "the counter ran on node 0, node 1 and node 0 again; every page of its 100 MiB checked out"

echo
if cluster_check_kernel_logs; then
    ssi_step "demo done: both kernels clean (no BUG/WARNING/Oops)"
else
    ssi_die "a kernel reported a problem (see above)"
fi
