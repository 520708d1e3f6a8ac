#!/usr/bin/env bash
# The GPIO transport between two booted kernels: guests 0 and 1 (node ids 0 and 1) are
# joined only by the emulated ribbon cable (SSI_GPIO_CABLE=1: a virtio GPIO controller
# each, wired line to line by target/release/ssi-gpio-cable); ssi_rdma is not loaded.
# Over ssi_gpio_bus the cluster forms, pings and reads a page with the same ssi_core
# code as over rxe; injected bit flips and a stuck line are survived by retransmission
# (data exact, errors counted); a killed guest is detected; the modules unload.
SSI_GPIO_CABLE=1
. "$(dirname "$0")/../lib/suite.sh" gpio

# A page over the bus takes seconds under TCG and heartbeats wait behind it: the
# failure timeout is sized from the readings of /proc/ssi/nodes (max_gap_ms).
DOWN_AFTER_MS=${SSI_GPIO_DOWN_AFTER_MS:-30000}

# "up self" as guest $1 sees nodes 0 and 1.
view() {
    json_get "$(cluster_run "$1" "$SSICTL nodes --json")" \
        '" ".join(next(n["state"] for n in d["nodes"] if n["id"] == i) for i in (0, 1))'
}

wait_view() {
    local g=$1 secs=$2 want=$3 got i
    for ((i = 0; i < secs; i++)); do
        got=$(view "$g")
        [ "$got" = "$want" ] && break
        sleep 1
    done
    printf '%s' "$got"
}

# A counter of guest $1's gpio-bus line in /proc/ssi/transports ("retx", "crc", ...).
bus_counter() {
    cluster_run "$1" "grep gpio-bus /proc/ssi/transports" | sed -nE "s/.* $2 ([0-9]+).*/\1/p"
}

# The sum of counter $1 over both guests.
bus_total() { echo $(($(bus_counter 0 "$1") + $(bus_counter 1 "$1"))); }

cluster_start 2
t_match "the cable joins both guests" 'connected=1,1|connected_a=1 connected_b=1' "$(cable_cmd stats)"
for g in 0 1; do
    out=$(cluster_bring_up $g cable peers down_after_ms="$DOWN_AFTER_MS" 2>&1)
    t_ok "guest$g: ssi_core and ssi_gpio_bus load (lines of the virtio GPIO chip)" $? "$out"
done

# --- the cluster forms over the cable -----------------------------------------------------
t_eq "node0 sees node 1 up" "self up" "$(wait_view 0 120 'self up')"
t_eq "node1 sees node 0 up" "up self" "$(wait_view 1 60 'up self')"
out=$(cluster_run 0 "cat /proc/ssi/transports")
t_match "node0: the link runs over gpio-bus, reads emulated" \
    'gpio-bus +gpio-bus +node 0 <-> 1: up .*\(reads emulated\)' "$out"
t_nomatch "node0: ... and no other transport is loaded" 'rdma' "$out"

# --- messages -----------------------------------------------------------------------------
out=$(cluster_run 0 "$SSICTL ping 1 -c 5 -s 200 --timeout-ms 30000 --json" 120)
t_ok "node0: pings node 1 over the cable (5 x 200 bytes)" $? "$out"
t_eq "node0: ... every answer came back" "5" "$(json_get "$out" 'd["received"]')"
out=$(cluster_run 1 "$SSICTL kv put cable/hello world && $SSICTL kv get cable/hello" 120)
t_match "node1: a write through the leader (node 0) over the cable reads back" 'world' "$out"

# --- a page read, emulated by the peer's bus thread ----------------------------------------
out=$(cluster_run 1 "$SSICTL page expose --pattern 7 --json")
t_ok "node1: exposes a page" $? "$out"
handle=$(json_get "$out" 'd["handle"]')
sha=$(json_get "$out" 'd["sha256"]')
out=$(cluster_run 0 "$SSICTL page read 1 $handle --repeat 2 --expect-pattern 7 --json" 300)
t_ok "node0: reads node 1's page over the cable (2 reads)" $? "$out"
t_eq "node0: ... the bytes equal what node 1 exposed" "$sha True" \
    "$(json_get "$out" '"%s %s" % (d["sha256"], d["matches"])')"
out=$(cluster_run 0 "$SSICTL page read 1 $((handle + 1000)) 2>&1" 120)
t_err "node0: reading an unknown handle fails" $? "$out"
t_match "node0: ... with ENOENT" 'No such file' "$out"
t_eq "the cable counted line transitions" "True" \
    "$([ "$(cable_stat transitions)" -gt 20000 ] 2>/dev/null && echo True || echo False)"

# --- corruption: flipped bits are caught by the CRC and the frame is sent again ----------
# A flip only matters where a side reads a frame's bytes (a flip of D3 while the bus is
# idle or arbitrated is ignored by design), so flips are armed again, for at most three
# rounds, until a receiver has dropped a corrupted frame. The retransmission can come
# after the reader already has its page: when the flip hit an ACK, the DATA frame goes
# again only when its ACK timeout (2 s) has passed (host test
# a_corrupted_ack_is_counted_at_once_and_retransmitted_after_the_ack_timeout).
retx0=$(bus_total retx) crc0=$(bus_total crc)
crc=0 exact=0 rounds=0
for round in 1 2 3; do
    [ "$(cable_cmd flip 3 3)" = ok ] || break
    rounds=$round
    out=$(cluster_run 0 "$SSICTL page read 1 $handle --repeat 2 --expect-pattern 7 --json" 600)
    [ "$(json_get "$out" '"%s %s" % (d["sha256"], d["matches"])')" = "$sha True" ] && exact=$((exact + 1))
    crc=$(($(bus_total crc) - crc0))
    [ "$crc" -gt 0 ] && break
done
t_eq "node0: reads the page exactly in every round while bits flip ($exact of $rounds rounds)" \
    "True" "$([ "$rounds" -gt 0 ] && [ "$exact" -eq "$rounds" ] && echo True || echo False)"
t_eq "cable: the flips were consumed" "True" \
    "$([ "$(cable_stat flips)" -gt 0 ] 2>/dev/null && echo True || echo False)"
t_eq "the receivers dropped corrupted frames ($crc CRC/framing errors)" "True" \
    "$([ "$crc" -gt 0 ] && echo True || echo False)"
retx=0
for ((i = 0; i < 30; i++)); do
    retx=$(($(bus_total retx) - retx0))
    [ "$retx" -gt 0 ] && break
    sleep 1
done
t_eq "the senders retransmitted them within 30 s ($retx retransmissions, ${i} s after the read)" "True" \
    "$([ "$retx" -gt 0 ] && echo True || echo False)"

# --- a stuck line: traffic stalls, then recovers when it is released ----------------------
t_eq "cable: data line 5 held low" "ok" "$(cable_cmd hold 5 0)"
sleep 3
t_eq "cable: line 5 released" "ok" "$(cable_cmd release 5)"
out=$(cluster_run 0 "$SSICTL ping 1 -c 3 --timeout-ms 30000 --json" 180)
t_ok "node0: pings node 1 again after the stuck line" $? "$out"
t_eq "node0: node 1 stayed up through it" "self up" "$(view 0)"

# --- a vanished peer ------------------------------------------------------------------------
cluster_kill 1
t_eq "node0: marks node 1 down after its guest is killed" "self down" \
    "$(wait_view 0 $((DOWN_AFTER_MS / 1000 + 30)) 'self down')"
ms=$(cluster_run 0 dmesg | sed -nE 's/.*node 1 down \(([0-9]+) ms since it was last heard\).*/\1/p' | tail -1)
t_eq "node0: ... within down_after_ms + 2 s of its last frame (${ms:-?} ms)" "True" \
    "$([ "${ms:-999999}" -lt $((DOWN_AFTER_MS + 2000)) ] && echo True || echo False)"
out=$(cluster_run 0 "$SSICTL ping 1 -c 1 --timeout-ms 2000 2>&1" 60)
t_err "node0: a ping to the dead node fails" $? "$out"

out=$(cluster_run 0 "rmmod ssi_gpio_bus && rmmod ssi_core && ! ls /proc/ssi 2>/dev/null" 60)
t_ok "node0: ssi_gpio_bus and ssi_core unload" $? "$out"
out=$(cluster_check_kernel_logs 2>&1)
t_ok "no BUG/WARNING/Oops on either node (including the killed one)" $? "$out"
