#!/usr/bin/env bash
# The parallel speedup of distributed threads (part of make bench): a compute-bound
# pthread program (tests/tools/ssi-threads.c `compute`: each of T = 4 workers churns its
# own 256 KiB, and adds a checksum to a shared sum under a pthread_mutex once per round)
# runs with its threads spread over N = 1, 2 and 3 guests of one vCPU each (threads
# moved before they start, so that the time is the computation's), against all 4 on one
# guest in the same run. Each run's sum must equal the one-node run's. Printed per N:
# host cores, time, speedup, its goal (0.85 x min(N, T, host cores)) and the remote page
# faults per thread (pages the process's memory fetched from other nodes, all nodes).
#
#   SSI_BENCH_COMPUTE_ROUNDS=N   rounds per worker (default 400)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$SSI_ROOT/tests/lib/cluster.sh"
t_suite=bench-threads
. "$SSI_ROOT/tests/lib/assert.sh"

ROUNDS=${SSI_BENCH_COMPUTE_ROUNDS:-400}
THREADS_T=4
# Where worker i runs for N nodes (worker 0..3): as evenly as the nodes allow.
PLACEMENT=([1]="0 0 0 0" [2]="0 0 1 1" [3]="0 0 1 2")

ssi_step "booting 3 guests"
cluster_start 3
for g in 0 1 2; do
    cluster_bring_up $g rdma migrate peers down_after_ms=$SSI_TCG_DOWN_AFTER_MS >/dev/null ||
        ssi_die "loading ssi on guest $g failed"
done
for g in 0 1 2; do start_daemon $g; done
# (ssictl's JSON is one line: count the matches, not the lines.)
cluster_run 0 "for i in \$(seq 150); do [ \$($SSICTL nodes --json | grep -o '\"state\": *\"up\"' | wc -l) -ge 2 ] && exit 0; sleep 0.2; done; exit 1" >/dev/null ||
    ssi_die "the three nodes did not connect"

# Fetched pages of the process's private-memory regions on guest $1.
fetched() {
    cluster_run "$1" "awk '\$1 ~ /^\\.p/ { n += \$11 } END { print n + 0 }' /proc/ssi/regions"
}

results=()
for n in 1 2 3; do
    ssi_step "compute: $THREADS_T threads on $n node(s), $ROUNDS rounds"
    start_job 0 "rm -f /tmp/cg.go*; $THREADS compute $THREADS_T $ROUNDS /tmp/cg.go" compute >/dev/null ||
        ssi_die "ssi-threads compute did not start"
    read -r -a tids <<<"$(cluster_run 0 "sed -n 's/^tid [0-9]* \([0-9]*\)\$/\1/p' /tmp/compute.out" | xargs)"
    [ "${#tids[@]}" = "$THREADS_T" ] || ssi_die "ssi-threads compute reported ${#tids[*]} threads"
    read -r -a where <<<"${PLACEMENT[$n]}"
    for i in "${!tids[@]}"; do
        [ "${where[$i]}" = 0 ] && continue
        out=$(cluster_run 0 "$SSICTL migrate ${tids[$i]} ${where[$i]} 2>&1") ||
            ssi_die "moving worker $i to node ${where[$i]} failed: $out"
    done
    cluster_run 0 "touch /tmp/cg.go" >/dev/null
    out=$(cluster_run 0 "for i in \$(seq 6000); do grep -q '^compute ' /tmp/compute.out && break; sleep 0.2; done; grep '^compute ' /tmp/compute.out" 1300) ||
        ssi_die "ssi-threads compute did not finish: $out"
    faults=0
    for ((g = 0; g < n; g++)); do faults=$((faults + $(fetched $g))); done
    cluster_run 0 "touch /tmp/cg.go.end" >/dev/null
    rc=$(wait_job 0 compute 120 | sed -n 's/^rc=//p')
    [ "$rc" = 0 ] || ssi_die "ssi-threads compute exited with ${rc:-nothing}"
    sum=$(sed -n 's/.*sum=\([0-9]*\).*/\1/p' <<<"$out")
    ns=$(sed -n 's/.*elapsed_ns=\([0-9]*\).*/\1/p' <<<"$out")
    results+=("$n $ns $sum $faults")
done

python3 - "$(nproc)" "$THREADS_T" "${results[@]}" <<'PY'
import sys
cores, t = int(sys.argv[1]), int(sys.argv[2])
runs = [r.split() for r in sys.argv[3:]]
base_ns, base_sum = float(runs[0][1]), runs[0][2]
print()
print(f"{'parallel speedup':<18} {'nodes':>5} {'host cores':>10} {'time (s)':>9} {'speedup':>8} {'goal':>6} {'remote faults/thread':>21}")
bad = []
for n, ns, total, faults in runs:
    n, ns, faults = int(n), float(ns), int(faults)
    speedup = base_ns / ns
    goal = 0.85 * min(n, t, cores)
    print(f"{'compute, T=%d' % t:<18} {n:>5} {cores:>10} {ns / 1e9:>9.2f} {speedup:>7.2f}x {goal:>5.2f}x {faults / t:>21.1f}")
    if total != base_sum:
        bad.append(f"N={n}: sum {total} differs from the one-node run's {base_sum}")
print("(speedup: the one-node run's time over this one's; goal 0.85 x min(N, T, host cores))")
for b in bad:
    print("MISMATCH:", b)
sys.exit(1 if bad else 0)
PY
cluster_check_kernel_logs || ssi_die "a kernel reported a problem (see above)"
