#!/usr/bin/env bash
# The parallel speedup of distributed threads (part of make bench): a compute-bound
# pthread program (tests/tools/ssi-threads.c `compute`: each of T = 4 workers churns its
# own 256 KiB PASSES times a round, and adds a checksum to a shared sum under a
# pthread_mutex once per round) runs with its threads spread over N = 1, 2 and 3 guests
# of one vCPU each (threads moved before they start, so that the time is the
# computation's), against all 4 on one guest in the same run. Each run's sum must equal
# the one-node run's. Printed per N: host cores, time, speedup, its goal (0.85 x min(N,
# T, host cores)) and the remote page faults per thread (pages the process's memory
# fetched from other nodes, all nodes); then a round's computation on one node against
# ssictl ping's round trip.
#
# How many passes a round: as many as make a round of one worker RATIO times ssictl
# ping's round trip, both measured at the start of the run (a pass by one worker alone on
# guest 0, undistributed). On RDMA hardware a pass over 256 KiB takes some 100-200 us and
# a round trip some 3-5 us, so a round of one pass is some 30 round trips; under TCG a
# round trip costs far more computation than that, and a fixed number of passes would
# measure the emulated network rather than the program. RATIO=30 keeps the program as
# compute-bound as it is on hardware with one pass a round (printed at the end).
#
# Beside each distributed run of N >= 2 nodes, the host's ceiling: the same work split
# the same way over the same guests, but as separate undistributed processes (a
# `compute 2` on guest 0 and one on guest 1 for N = 2), started together. Its speedup
# over the one-node run is the most any distribution could give on this host: TCG
# guests that all compute at once share the host's cores with each other's emulator
# threads and run slower than one guest alone (on a 2-core host some 15-25 %), so the
# goal of 0.85 x min(N, T, host cores) can be above it. Printed as "host ceiling", and
# the speedup as a fraction of it.
#
# The three runs are repeated SSI_BENCH_REPS times (N = 1, 2, 3, then again): the time
# printed is the median of a node count's runs, the speedup the median of the
# repetitions' speedups (each against the one-node run of its own repetition), with
# their range (TCG guests on a shared host vary by tens of percent from run to run).
#
#   SSI_BENCH_COMPUTE_ROUNDS=N   rounds per worker (default 50)
#   SSI_BENCH_COMPUTE_RATIO=N    a round in round trips (default 30)
#   SSI_BENCH_COMPUTE_PASSES=N   passes over its memory per round (default: from RATIO)
#   SSI_BENCH_REPS=N             repetitions of the three runs (default 3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$SSI_ROOT/tests/lib/cluster.sh"
t_suite=bench-threads
. "$SSI_ROOT/tests/lib/assert.sh"

ROUNDS=${SSI_BENCH_COMPUTE_ROUNDS:-50}
RATIO=${SSI_BENCH_COMPUTE_RATIO:-30}
REPS=${SSI_BENCH_REPS:-3}
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
ping=$(cluster_run 0 "$SSICTL ping 1 -c 200 -s 64 --json" 600) || ssi_die "ssictl ping failed: $ping"
ping_us=$(json_get "$ping" 'd["median_us"]')

# A pass of one worker alone, undistributed: its time computing (work_ms) over 4 rounds
# of 50 passes, which leaves out the start (thread wake-up, first touch of its memory).
if [ -n "${SSI_BENCH_COMPUTE_PASSES:-}" ]; then
    PASSES=$SSI_BENCH_COMPUTE_PASSES
else
    ssi_step "calibrating: one worker's pass over its 256 KiB, against ssictl ping (${ping_us} us)"
    start_job 0 "rm -f /tmp/cal.go*; $THREADS compute 1 4 /tmp/cal.go 50" calibrate >/dev/null ||
        ssi_die "ssi-threads compute did not start"
    # The waits poll with shell builtins (cluster_wait_line): a grep and a sleep each
    # time would take the guest's one vCPU from the program measured.
    cluster_run 0 "touch /tmp/cal.go" >/dev/null
    cluster_wait_line 0 /tmp/calibrate.out '^compute sum' 300 ||
        ssi_die "the calibration run did not finish"
    out=$(cluster_run 0 "grep '^compute worker' /tmp/calibrate.out; touch /tmp/cal.go.end")
    wait_job 0 calibrate 60 >/dev/null
    work_ms=$(sed -n 's/.* work_ms=\([0-9]*\).*/\1/p' <<<"$out")
    [ -n "$work_ms" ] || ssi_die "the calibration run printed no work_ms: $out"
    pass_us=$(python3 -c "print(max(1.0, $work_ms * 1000 / 200))")
    PASSES=$(python3 -c "import math; print(max(1, math.ceil($RATIO * $ping_us / $pass_us)))")
    echo "    a pass: $pass_us us; a round of $RATIO round trips: $PASSES passes"
fi

# Fetched pages of the process's private-memory regions on guest $1.
fetched() {
    cluster_run "$1" "awk '\$1 ~ /^\\.p/ { n += \$11 } END { print n + 0 }' /proc/ssi/regions"
}

# ceiling N: the time of PLACEMENT[N]'s split as one undistributed process per guest
# (each with its share of the workers), started together: the longest one's elapsed ns.
ceiling() {
    local n=$1 g w counts=() where out ns longest=0
    read -r -a where <<<"${PLACEMENT[$n]}"
    for ((g = 0; g < n; g++)); do counts[g]=0; done
    for w in "${where[@]}"; do counts[w]=$((counts[w] + 1)); done
    for ((g = 0; g < n; g++)); do
        start_job $g "rm -f /tmp/cl.go*; $THREADS compute ${counts[g]} $ROUNDS /tmp/cl.go $PASSES" ceiling >/dev/null ||
            ssi_die "ssi-threads compute (ceiling) did not start on guest $g"
    done
    for ((g = 0; g < n; g++)); do cluster_run $g "touch /tmp/cl.go" >/dev/null; done
    for ((g = 0; g < n; g++)); do
        cluster_wait_line $g /tmp/ceiling.out '^compute sum' 1200 ||
            ssi_die "ssi-threads compute (ceiling) did not finish on guest $g"
    done
    for ((g = 0; g < n; g++)); do
        out=$(cluster_run $g "grep '^compute sum' /tmp/ceiling.out; touch /tmp/cl.go.end")
        ns=$(sed -n 's/.*elapsed_ns=\([0-9]*\).*/\1/p' <<<"$out")
        [ -n "$ns" ] || ssi_die "the ceiling run on guest $g printed no time: $out"
        [ "$(wait_job $g ceiling 120 | sed -n 's/^rc=//p')" = 0 ] ||
            ssi_die "ssi-threads compute (ceiling) failed on guest $g"
        ((ns > longest)) && longest=$ns
    done
    echo "$longest"
}

results=()
for ((r = 1; r <= REPS; r++)); do
    for n in 1 2 3; do
        ssi_step "compute, repetition $r of $REPS: $THREADS_T threads on $n node(s), $ROUNDS rounds of $PASSES passes"
        start_job 0 "rm -f /tmp/cg.go*; $THREADS compute $THREADS_T $ROUNDS /tmp/cg.go $PASSES" compute >/dev/null ||
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
        cluster_wait_line 0 /tmp/compute.out '^compute sum' 1200 ||
            ssi_die "ssi-threads compute did not finish"
        out=$(cluster_run 0 "grep '^compute ' /tmp/compute.out")
        faults=0
        for ((g = 0; g < n; g++)); do faults=$((faults + $(fetched $g))); done
        cluster_run 0 "touch /tmp/cg.go.end" >/dev/null
        rc=$(wait_job 0 compute 120 | sed -n 's/^rc=//p')
        [ "$rc" = 0 ] || ssi_die "ssi-threads compute exited with ${rc:-nothing}"
        sum=$(sed -n 's/.*sum=\([0-9]*\).*/\1/p' <<<"$out")
        ns=$(sed -n 's/.*elapsed_ns=\([0-9]*\).*/\1/p' <<<"$out")
        lock=$(sed -n 's/.*lock_ns=\([0-9]*\).*/\1/p' <<<"$out")
        ceil=$ns
        if ((n > 1)); then
            ssi_step "the host's ceiling for $n node(s): the same split as undistributed processes"
            ceil=$(ceiling $n)
        fi
        results+=("$r $n $ns $sum $faults $lock $ceil")
    done
done

python3 - "$(nproc)" "$THREADS_T" "$ROUNDS" "$ping_us" "$PASSES" "${results[@]}" <<'PY'
import statistics
import sys
cores, t, rounds, ping_us = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
passes = int(sys.argv[5])
runs = [r.split() for r in sys.argv[6:]]
med = statistics.median
# (repetition, nodes) -> (ns, sum, faults, lock, ceiling ns)
by = {(int(r), int(n)): (float(ns), total, int(faults), float(lock), float(ceil)) for r, n, ns, total, faults, lock, ceil in runs}
reps = sorted({r for r, _ in by})
base_sum = by[(reps[0], 1)][1]
print()
print(f"{'parallel speedup':<18} {'nodes':>5} {'host cores':>10} {'time (s)':>9} {'speedup':>8} {'range':>11} {'goal':>6} {'host ceiling':>12} {'of ceiling':>10} {'remote faults/thread':>21} {'taking the mutex (s)':>21}")
bad = []
for n in (1, 2, 3):
    mine = [by[(r, n)] for r in reps]
    speedups = [by[(r, 1)][0] / by[(r, n)][0] for r in reps]
    ceilings = [by[(r, 1)][0] / by[(r, n)][4] for r in reps]
    fractions = [s / c for s, c in zip(speedups, ceilings)]
    goal = 0.85 * min(n, t, cores)
    spread = f"{min(speedups):.2f}-{max(speedups):.2f}"
    print(f"{'compute, T=%d' % t:<18} {n:>5} {cores:>10} {med([m[0] for m in mine]) / 1e9:>9.2f} {med(speedups):>7.2f}x {spread:>11} {goal:>5.2f}x {med(ceilings):>11.2f}x {100 * med(fractions):>9.0f}% {med([m[2] for m in mine]) / t:>21.1f} {med([m[3] for m in mine]) / 1e9:>21.2f}")
    for r, m in zip(reps, mine):
        if m[1] != base_sum:
            bad.append(f"N={n}, repetition {r}: sum {m[1]} differs from the one-node run's {base_sum}")
print(f"(time: the median of {len(reps)} runs; speedup: the median of the repetitions' one-node time over")
print(" this one's, range: their lowest and highest; goal 0.85 x min(N, T, host cores);")
print(" host ceiling: the one-node time over that of the same split as undistributed processes")
print(" run at once on the same guests, the most this host allows; of ceiling: the speedup's")
print(" share of it (medians); taking the mutex: a worker's time in pthread_mutex_lock, mean")
print(" of the workers)")
# One node runs the T workers on one vCPU: a round of one worker is 1/T of that time.
round_us = med([by[(r, 1)][0] for r in reps]) / 1000.0 / (rounds * t)
print(f"a worker's round of computation ({passes} passes): {round_us / 1000:.1f} ms = {round_us / ping_us:.1f} x ssictl ping's round trip ({ping_us / 1000:.2f} ms)")
for b in bad:
    print("MISMATCH:", b)
sys.exit(1 if bad else 0)
PY
cluster_check_kernel_logs || ssi_die "a kernel reported a problem (see above)"
