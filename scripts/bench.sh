#!/usr/bin/env bash
# make bench: ssi's message round trip and one-sided 4 KiB page read between two TCG
# guests, each printed beside perftest's figure for the same operation, measured in the
# same run on the same guests (ib_send_lat for messages, ib_read_lat -s 4096 for page
# reads). ssi and ib_read_lat use completion events (under TCG a spinning poller starves
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
    awk 'NF >= 9 && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { v = $5 } END { if (v == "") exit 1; print v }' <<<"$out" ||
        ssi_die "$tool printed no latency: $out"
}

ssi_step "perftest baselines ($ITERS iterations each)"
send_lat=$(perftest ib_send_lat -s 64)
read_lat=$(perftest ib_read_lat -s 4096 -e)

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

python3 - "$send_lat" "$read_lat" "$ping_median" "$read_median" <<'EOF'
import sys
send_lat, read_lat, ping, read = map(float, sys.argv[1:])
# ib_send_lat reports half the round trip; ssictl ping the whole round trip.
rows = [
    ("message round trip (64 B)", ping, 2 * send_lat, "2 x ib_send_lat -s 64 (polling)"),
    ("4 KiB one-sided page read", read, read_lat, "ib_read_lat -s 4096 -e"),
]
print()
print(f"{'operation':<28} {'ssi (us)':>10} {'perftest (us)':>14}  {'ratio':>6}  baseline")
for name, ssi, base, what in rows:
    print(f"{name:<28} {ssi:>10.1f} {base:>14.1f}  {ssi / base:>5.2f}x  {what}")
print()
print("ssi figures are medians of the kernel-measured latency; perftest's are t_typical.")
EOF
cluster_check_kernel_logs || ssi_die "a kernel reported a problem (see above)"
