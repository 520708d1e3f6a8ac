#!/usr/bin/env bash
# The GPIO transport's figures (part of make bench): two guests joined only by the
# emulated cable (tests/lib/cluster.sh with SSI_GPIO_CABLE=1).
#
# - raw limit of the cable: guest 0 toggles one line as fast as it can through the GPIO
#   character device (tests/tools/gpio-toggle.py) before ssi_gpio_bus takes the lines;
#   the cable counts the transitions; transitions/s = what the emulator sustains;
# - transitions per byte of the bus protocol: cable transitions / bytes on the wire
#   while node 0 reads node 1's page over the bus;
# - goodput: page bytes per second of those reads, and its ratio to the raw limit
#   divided by the transitions per byte (the bytes/s a perfect use of the same
#   transitions would move); the page-read latency (median).
#
#   SSI_BENCH_GPIO_READS=N   page reads (default 3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SSI_GPIO_CABLE=1
. "$SSI_ROOT/tests/lib/cluster.sh"

READS=${SSI_BENCH_GPIO_READS:-3}
TOGGLES=2000
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

cluster_start 2

ssi_step "the cable's raw limit ($TOGGLES toggles of one line from guest 0)"
cable_cmd reset >/dev/null
out=$(cluster_run 0 "python3 $SSI_ROOT/tests/tools/gpio-toggle.py \$($SSI_VIRTIO_GPIO_CHIP) 0 $TOGGLES") ||
    ssi_die "toggling failed: $out"
stats=$(cable_cmd stats)
toggle_s=$(field "$out" seconds)
toggle_transitions=$(field "$stats" transitions)
echo "    $out; the cable counted $toggle_transitions transitions"
[ "$toggle_transitions" -ge "$TOGGLES" ] || ssi_die "the cable saw fewer transitions than toggles"

ssi_step "ssi over the cable ($READS page reads, down_after_ms=30000)"
for g in 0 1; do
    cluster_bring_up "$g" cable peers down_after_ms=30000 >/dev/null || ssi_die "loading ssi on guest $g failed"
done
# The bus transport comes up first; the page reads need node 1 up in node 0's
# membership too (its first heartbeats cross the slow bus after the link is up).
for ((i = 0; i < 180; i++)); do
    cluster_run 0 "grep -q 'gpio-bus.*: up ' /proc/ssi/transports && $SSICTL nodes --json | grep -q '\"state\": *\"up\"'" && break
    sleep 1
done
[ "$i" -lt 180 ] || ssi_die "node 1 did not come up over the cable within 180 s"
out=$(cluster_run 1 "$SSICTL page expose --pattern 5 --json")
handle=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["handle"])' "$out")
wire() { cluster_run 1 "grep gpio-bus /proc/ssi/transports" | sed -nE 's/.* B ([0-9]+).*/\1/p'; }
bytes0=$(wire)
cable_cmd reset >/dev/null
out=$(cluster_run 0 "$SSICTL page read 1 $handle --repeat $READS --expect-pattern 5 --json" 900) ||
    ssi_die "page reads over the cable failed: $out"
stats=$(cable_cmd stats)
bytes1=$(wire)
python3 - "$out" "$toggle_s" "$toggle_transitions" "$(field "$stats" transitions)" \
    "$(field "$stats" uptime_us)" "$((bytes1 - bytes0))" "$READS" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
toggle_s, toggle_tr = float(sys.argv[2]), int(sys.argv[3])
transitions, uptime_us, wire_bytes, reads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
assert r["matches"], "the page read over the cable differs from the exposed page"
raw = toggle_tr / toggle_s                      # transitions/s the emulator sustains
per_byte = transitions / wire_bytes             # the protocol's transitions per byte
limit = raw / per_byte                          # bytes/s at the raw limit
goodput = 4096 * reads / (uptime_us / 1e6)      # page bytes/s while reading
print()
print(f"{'GPIO cable':<40} {'value':>12}")
print(f"{'raw limit: line transitions/s':<40} {raw:>12.0f}")
print(f"{'protocol: transitions per byte':<40} {per_byte:>12.2f}   ({transitions} over {wire_bytes} bytes on the wire)")
print(f"{'raw limit in bytes/s':<40} {limit:>12.1f}")
print(f"{'goodput: page bytes/s':<40} {goodput:>12.1f}   ratio {goodput / limit:.2f}x of the raw limit")
print(f"{'page read over the bus, median (ms)':<40} {r['median_us'] / 1000:>12.1f}   (min {r['min_us'] / 1000:.1f}, max {r['max_us'] / 1000:.1f})")
print()
print("goodput counts only the 4 KiB pages read; the rest of the bus time is framing,")
print("acknowledgements, the read requests and the nodes' heartbeats.")
EOF
cluster_check_kernel_logs || ssi_die "a kernel reported a problem (see above)"
