#!/usr/bin/env bash
# make bench: ssi's message round trip, one-sided 4 KiB page read and SSI region page
# faults between two TCG guests, each printed beside perftest's figure for the same
# kind of operation, measured in the same run on the same guests (ib_send_lat for
# messages, ib_read_lat -s 4096 for page reads and faults). A remote read fault maps a
# page whose contents are on the other node (its home, which sends them with the
# directory's answer); a write fault with one sharer upgrades a read-only copy, which
# invalidates the other node's copy first. ssi and ib_read_lat use completion events (under TCG a spinning poller starves
# the vCPU that runs rxe); ib_send_lat polls, because its event mode (-e) hangs on rxe in
# this kernel. Output: one line per figure, then ratios (ssi / perftest).
#
#   SSI_BENCH_ITERS=N   iterations per measurement (default 1000)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$SSI_ROOT/scripts/cluster.sh"
t_suite=bench
. "$SSI_ROOT/scripts/testlib.sh"

ITERS=${SSI_BENCH_ITERS:-1000}
SSICTL=$SSI_ROOT/target/release/ssictl
MT=$SSI_ROOT/target/release/ssi-memtest
CORE=$SSI_ROOT/ssi_core/ssi_core.ko
RDMA=$SSI_ROOT/ssi_rdma/ssi_rdma.ko

ssi_step "booting 2 guests"
cluster_start 2
for g in 0 1; do
    cluster_run $g "insmod $CORE node_id=$((g + 1)) && rdma link add rxe0 type rxe netdev eth0" >/dev/null
done

# perftest: server on guest 1, client on guest 0. Prints the typical latency (us).
perftest() { # TOOL ARGS...
    local tool=$1 srv out
    shift
    srv=$(cluster_spawn 1 "timeout 600 $tool -d rxe0 $* -n $ITERS -F")
    cluster_run 1 "for i in \$(seq 150); do ss -Hltn 'sport = :18515' | grep -q . && exit 0; sleep 0.2; done; exit 1" >/dev/null ||
        ssi_die "$tool server did not start"
    out=$(cluster_run 0 "timeout 600 $tool -d rxe0 $* -n $ITERS -F $(cluster_ip 1)" 660) ||
        ssi_die "$tool failed: $out"
    cluster_wait 1 "$srv" 60 >/dev/null || true
    # Columns: #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9%
    # Prints "t_typical t_min".
    awk 'NF >= 9 && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { v = $5 " " $3 } END { if (v == "") exit 1; print v }' <<<"$out" ||
        ssi_die "$tool printed no latency: $out"
}

ssi_step "perftest baselines ($ITERS iterations each)"
send=$(perftest ib_send_lat -s 64)
read_base=$(perftest ib_read_lat -s 4096 -e)
read -r send_lat _ <<<"$send"
read -r read_lat read_min <<<"$read_base"

ssi_step "ssi ($ITERS iterations each)"
for g in 0 1; do
    cluster_run $g "insmod $RDMA && $SSICTL node add $((2 - g)) $(cluster_ip $((1 - g)))" >/dev/null
done
cluster_run 0 "for i in \$(seq 100); do $SSICTL nodes --json | grep -q '\"state\": *\"up\"' && exit 0; sleep 0.2; done; exit 1" >/dev/null ||
    ssi_die "the two nodes did not connect"
ping=$(cluster_run 0 "$SSICTL ping 2 -c $ITERS -s 64 --json" 600) || ssi_die "ssictl ping failed: $ping"
ping_median=$(json_get "$ping" 'd["median_us"]')
handle=$(json_get "$(cluster_run 1 "$SSICTL page expose --pattern 1 --json")" 'd["handle"]')
read=$(cluster_run 0 "$SSICTL page read 2 $handle --repeat $ITERS --expect-pattern 1 --json" 600) ||
    ssi_die "ssictl page read failed: $read"
read_median=$(json_get "$read" 'd["median_us"]')

# Region faults: node 1 (the home) writes ITERS pages, node 2 reads each once (remote
# read faults), then writes each once (write faults, node 1 holding the other copy).
cluster_run 0 "$SSICTL region create bench $((ITERS * 4))K --mode 0666 && $MT fill bench --seed 1" >/dev/null ||
    ssi_die "cannot create the benchmark region"
rfault=$(cluster_run 1 "$MT fault-bench bench --mode read --pages $ITERS" 1200) || ssi_die "read faults failed: $rfault"
wfault=$(cluster_run 1 "$MT fault-bench bench --mode write --pages $ITERS" 1200) || ssi_die "write faults failed: $wfault"
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" <<<"$1"; }

python3 - "$send_lat" "$read_lat" "$read_min" "$ping_median" "$read_median" \
    "$(field "$rfault" median_us)" "$(field "$wfault" median_us)" \
    "$(field "$rfault" min_us)" "$(field "$wfault" min_us)" <<'EOF'
import sys
send_lat, read_lat, read_min, ping, read, rfault, wfault, rfault_min, wfault_min = map(float, sys.argv[1:])
# ib_send_lat reports half the round trip; ssictl ping the whole round trip.
rows = [
    ("message round trip (64 B)", ping, 2 * send_lat, "2 x ib_send_lat -s 64 (polling)"),
    ("4 KiB one-sided page read", read, read_lat, "ib_read_lat -s 4096 -e"),
    ("remote read fault", rfault, read_lat, "ib_read_lat -s 4096 -e (goal <= 1.3x)"),
    ("write fault, one sharer", wfault, read_lat, "ib_read_lat -s 4096 -e"),
    ("remote read fault, fastest", rfault_min, read_min, "ib_read_lat -s 4096 -e t_min"),
    ("write fault, fastest", wfault_min, read_min, "ib_read_lat -s 4096 -e t_min"),
]
print()
print(f"{'operation':<28} {'ssi (us)':>10} {'perftest (us)':>14}  {'ratio':>6}  baseline")
for name, ssi, base, what in rows:
    print(f"{name:<28} {ssi:>10.1f} {base:>14.1f}  {ssi / base:>5.2f}x  {what}")
print()
print("ssi figures are medians (kernel-measured for ping and page read, measured around")
print("one access by ssi-memtest for faults) or minima ('fastest'); perftest's are")
print("t_typical or t_min.")
EOF
cluster_check_kernel_logs || ssi_die "a kernel reported a problem (see above)"
