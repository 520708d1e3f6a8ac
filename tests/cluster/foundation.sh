#!/usr/bin/env bash
# Foundation: two booted guests load all four ssi modules, see each other over
# soft-RoCE, report their status through /dev/ssi, refuse unsafe unloads and bad
# parameters, unload cleanly, and measure the ib_read_lat baseline.
. "$(dirname "$0")/../lib/suite.sh" foundation

cluster_start 2

# --- modules load; rxe created after ssi_rdma is loaded (ib_client add path) --------
for n in 0 1; do
    out=$(cluster_bring_up $n ssi_rdma migrate gpio)
    t_ok "node$n: insmod of all four modules" $? "$out"
    out=$(cluster_run $n "rdma link add rxe0 type rxe netdev eth0 && sleep 1 && rdma link show")
    t_match "node$n: rxe0 link is ACTIVE" 'link rxe0/1 state ACTIVE' "$out"
    out=$(cluster_run $n "cat /proc/modules")
    t_eq "node$n: lsmod shows 4 ssi modules" 4 "$(grep -c '^ssi_' <<<"$out")"
done

# --- ssictl status reads /dev/ssi -----------------------------------------------------
for n in 0 1; do
    js=$(cluster_run $n "$SSICTL status --json")
    t_ok "node$n: ssictl status --json" $? "$js"
    t_eq "node$n: status node_id" "$n" "$(json_get "$js" 'd["node_id"]')"
    t_eq "node$n: status abi_version" "$ABI_VERSION" "$(json_get "$js" 'd["abi_version"]')"
    t_eq "node$n: transports registered" '["rdma", "gpio-bus"]' \
        "$(json_get "$js" '[t["name"] for t in d["transports"]]')"
    t_match "node$n: rdma transport sees rxe0 ACTIVE" "devices: rxe0:1:ACTIVE" \
        "$(json_get "$js" 'd["transports"][0]["state"]')"
    t_eq "node$n: migrate engine registered" true "$(json_get "$js" 'd["migrate"]["registered"]')"
    txt=$(cluster_run $n "$SSICTL status")
    t_ok "node$n: ssictl status (text)" $? "$txt"
    t_match "node$n: ssictl status text names the node" "^node: +$n\$" "$txt"
    t_match "node$n: ssictl status text shows rxe0" "rdma +rdma +v3 +node $n devices: rxe0:1:ACTIVE" "$txt"
    txt=$(cluster_run $n "cat /proc/ssi/status /proc/ssi/transports")
    t_match "node$n: /proc/ssi/status names the node" "^node_id: $n\$" "$txt"
    t_match "node$n: /proc/ssi/transports lists gpio-bus" "^2 +gpio-bus +gpio-bus +node $n <-> $((1 - n)): " "$txt"
    printf '%s\n' "$txt" | sed "s/^/      node$n> /"
done

# --- refusals ----------------------------------------------------------------------------
out=$(cluster_run 0 "rmmod ssi_core 2>&1")
t_err "node0: rmmod ssi_core refused while transports are loaded" $? "$out"
t_match "node0: ssi_core still loaded after refused rmmod" '^ssi_core ' "$(cluster_run 0 "cat /proc/modules")"
out=$(cluster_run 0 "insmod $KO_GPIO 2>&1")
t_err "node0: second insmod of ssi_gpio_bus refused" $? "$out"
out=$(cluster_run 1 "$SSICTL --device /dev/nonexistent status 2>&1")
t_err "node1: ssictl on a missing device fails" $? "$out"
t_match "node1: ssictl explains a missing device" 'is the ssi_core module loaded' "$out"

# --- hostile or unprivileged callers of /dev/ssi ----------------------------------------
out=$(cluster_run 1 "setpriv --reuid=65534 --regid=65534 --clear-groups $SSICTL status 2>&1")
t_ok "node1: unprivileged ssictl status allowed (read-only)" $? "$out"
out=$(cluster_run 1 "setpriv --reuid=65534 --regid=65534 --clear-groups $SSICTL node add 9 10.99.0.99 2>&1")
t_err "node1: unprivileged node add refused" $? "$out"
t_match "node1: unprivileged caller told why" '[Nn]ot permitted|EPERM' "$out"
# The request numbers come from the ABI definitions (ssi-abi); 0xFF is an ssi request
# number nobody defines, TCGETS (0x5401) another driver's request.
out=$(cluster_run 1 "python3 -c '
import errno, fcntl, json, os, subprocess
abi = json.loads(subprocess.check_output([\"$SSI_ABI\"]))
status = abi[\"ioctls\"][\"SSI_IOC_STATUS\"]
unknown = (3 << 30) | (4 << 16) | (abi[\"magic\"] << 8) | 0xFF
fd = os.open(\"/dev/ssi\", os.O_RDONLY)
for name, req, arg in ((\"STATUS\", status, 0), (\"STATUS\", status, 0x1000), (\"unknown\", unknown, 0), (\"TCGETS\", 0x5401, 0)):
    try:
        fcntl.ioctl(fd, req, arg)
        print(name, \"ok\")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
'")
t_eq "node1: bad ioctl pointers get EFAULT, unknown requests ENOTTY" \
    "STATUS EFAULT STATUS EFAULT unknown ENOTTY TCGETS ENOTTY" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')"

# --- RDMA device hot-remove and re-add while ssi_rdma is loaded (ib_client paths) ---------
out=$(cluster_run 1 "rdma link delete rxe0 && $SSICTL status --json")
t_match "node1: rdma transport sees the device go" 'devices: none' "$(json_get "$out" 'd["transports"][0]["state"]')"
out=$(cluster_run 1 "rdma link add rxe0 type rxe netdev eth0 && sleep 1 && $SSICTL status --json")
t_match "node1: rdma transport sees the device come back" 'devices: rxe0:1:ACTIVE' "$(json_get "$out" 'd["transports"][0]["state"]')"

# --- unload/reload races with status readers ------------------------------------------------
# The readers run for as long as the cycles do, and count their rounds.
out=$(cluster_run 1 "
rm -f /tmp/cycles.done /tmp/readers.n /tmp/cycles.ms
( n=0; until [ -e /tmp/cycles.done ]; do $SSICTL status >/dev/null 2>&1; cat /proc/ssi/transports >/dev/null 2>&1; n=\$((n + 1)); done; echo \$n >/tmp/readers.n ) &
for i in \$(seq 5); do
    t0=\$(date +%s%N)
    rmmod ssi_rdma && insmod $KO_RDMA || { touch /tmp/cycles.done; exit 1; }
    t1=\$(date +%s%N)
    rmmod ssi_gpio_bus && insmod $KO_GPIO peer_node=0 || { touch /tmp/cycles.done; exit 1; }
    echo \"\$(((t1 - t0) / 1000000))+\$(((\$(date +%s%N) - t1) / 1000000))\" >>/tmp/cycles.ms
done
touch /tmp/cycles.done
wait
$SSICTL status --json" 600)
t_ok "node1: 5 unload/reload cycles under concurrent status readers" $? "$out"
t_eq "node1: both transports registered after the cycles" '["rdma", "gpio-bus"]' \
    "$(json_get "$out" '[t["name"] for t in d["transports"]]')"
echo "    ms per cycle (ssi_rdma+ssi_gpio_bus): $(cluster_run 1 "cat /tmp/cycles.ms" | xargs)"
out=$(cluster_run 1 "cat /tmp/readers.n")
t_ok "node1: ... the readers read status all along the cycles ($out rounds)" \
    "$([ "${out:-0}" -ge 5 ] 2>/dev/null; echo $?)"

# --- the ib_read_lat baseline (CQ events: polling starves the vCPU running rxe) -----------
out=$(cluster_perftest 240 ib_read_lat -s 4096 -n 1000 -F -e)
rc=$?
t_ok "ib_read_lat 4 KiB between node0 and node1" $rc "$out"
# Columns: #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9%
typical=$(awk '$1 == 4096 && NF >= 9 { print $5 }' <<<"$out")
t_match "ib_read_lat reports a typical latency" '^[0-9]+(\.[0-9]+)?$' "$typical"
echo "    baseline: ib_read_lat -s 4096 typical ${typical:-?} us (TCG guests, rxe, CQ events)"
[ -n "${SSI_BASELINE_FILE:-}" ] && echo "ib_read_lat_4096_typical_us $typical" >>"$SSI_BASELINE_FILE"

# --- an open /dev/ssi pins ssi_core ----------------------------------------------------------
out=$(cluster_run 0 "rmmod ssi_gpio_bus && rmmod ssi_rdma && rmmod ssi_migrate && exec 3</dev/ssi && ! rmmod ssi_core 2>/dev/null && grep '^ssi_core ' /proc/modules")
t_match "node0: rmmod ssi_core refused while /dev/ssi is open" '^ssi_core .* 1 ' "$out"
out=$(cluster_run 0 "insmod $KO_RDMA && insmod $KO_MIGRATE && insmod $KO_GPIO peer_node=1 && grep -c '^ssi_' /proc/modules")
t_eq "node0: modules reloaded after the fd closed" 4 "$out"

# --- unload in dependency order, reload in another order, bad parameters -------------------
out=$(cluster_run 0 "rmmod ssi_gpio_bus && rmmod ssi_rdma && rmmod ssi_migrate && rmmod ssi_core && cat /proc/modules")
t_ok "node0: rmmod of all four modules" $? "$out"
t_eq "node0: no ssi module left" 0 "$(grep -c '^ssi_' <<<"$out")"
out=$(cluster_run 0 "test ! -e /dev/ssi && test ! -e /proc/ssi && echo gone")
t_eq "node0: /dev/ssi and /proc/ssi removed" gone "$out"
out=$(cluster_run 0 "insmod $KO_CORE node_id=99 2>&1")
t_err "node0: node_id=99 refused" $? "$out"
t_match "node0: node_id=99 explained in dmesg" 'node_id=99 is invalid' "$(cluster_run 0 dmesg)"
out=$(cluster_run 0 "insmod $KO_CORE node_id=0 down_after_ms=100 2>&1")
t_err "node0: down_after_ms=100 refused" $? "$out"
t_match "node0: ... explained in dmesg" 'down_after_ms=100 is invalid: must be 500\.\.60000' "$(cluster_run 0 dmesg)"
out=$(cluster_run 0 "insmod $KO_RDMA 2>&1")
t_err "node0: ssi_rdma without ssi_core refused" $? "$out"
out=$(cluster_run 0 "insmod $KO_CORE node_id=5 down_after_ms=2500 && insmod $KO_MIGRATE")
t_ok "node0: ssi_core as node 5 (down_after_ms=2500) and ssi_migrate load" $? "$out"
t_match "node0: /proc/ssi/status shows the failure timeout" '^down_after_ms: 2500$' "$(cluster_run 0 "cat /proc/ssi/status")"
out=$(cluster_run 0 "insmod $KO_GPIO peer_node=5 2>&1")
t_err "node0: gpio bus with peer_node == node_id refused" $? "$out"
t_match "node0: gpio bus refusal explained in dmesg" 'peer_node=5 is invalid \(this node is 5' "$(cluster_run 0 dmesg)"
out=$(cluster_run 0 "insmod $KO_GPIO peer_node=1 && insmod $KO_RDMA && $SSICTL status --json")
t_eq "node0: reloaded in another order, node 5 with 2 transports" "5 2" \
    "$(json_get "$out" '"%d %d" % (d["node_id"], len(d["transports"]))')"
out=$(cluster_run 0 "rmmod ssi_rdma && rmmod ssi_gpio_bus && rmmod ssi_migrate && rmmod ssi_core && echo clean")
t_eq "node0: second unload clean" clean "$out"

# --- ssi_gpio_bus without a device tree: ten lines of a gpio-sim chip (gpio_chip=N) ------
out=$(cluster_run 0 "set -e
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
d=/sys/kernel/config/gpio-sim/ssi; mkdir -p \$d/bank0; echo 10 > \$d/bank0/num_lines; echo 1 > \$d/live
chip=\$(cat \$d/bank0/chip_name); sim=/sys/devices/platform/\$(cat \$d/dev_name)/\$chip
echo pull-up > \$sim/sim_gpio0/pull; echo pull-up > \$sim/sim_gpio9/pull
echo chip=\$chip
insmod $KO_CORE node_id=0
insmod $KO_GPIO peer_node=1 gpio_chip=\${chip#gpiochip}
cat /proc/ssi/transports; dmesg | grep 'cable lines bound' | tail -n 1" 2>&1)
t_ok "node0: ssi_gpio_bus loads with gpio_chip= (a gpio-sim chip of 10 lines)" $? "$out"
chip=$(sed -n 's/^chip=gpiochip\([0-9]*\)$/\1/p' <<<"$out")
t_match "node0: ... took data0-7, ready, valid from lines 0-9 by consumer name" \
    'cable lines bound: gpio-sim[^ ]* data 0,1,2,3,4,5,6,7 ready 8 valid 9 \(now reading' "$out"
t_match "node0: ... and reads their levels (data0 and valid pulled up: 0x201)" 'now reading 0x201' "$out"
out=$(cluster_run 0 "rmmod ssi_gpio_bus; insmod $KO_GPIO peer_node=1 gpio_chip=77 2>&1; echo rc=\$?; dmesg | tail -n 3")
t_match "node0: gpio_chip of a chip that does not exist refused, with a message" \
    'rc=[1-9][0-9]*(.|\n)*gpio_chip=77: there is no gpiochip77' "$(tr '\n' ' ' <<<"$out")"
out=$(cluster_run 0 "insmod $KO_GPIO peer_node=1 gpio_chip=$chip gpio_line=1 2>&1; echo rc=\$?; dmesg | tail -n 3")
t_match "node0: lines past the chip's end refused, with a message" \
    'rc=[1-9][0-9]*.*has 10 lines, lines 1\.\.10 do not fit' "$(tr '\n' ' ' <<<"$out")"
out=$(cluster_run 0 "rmmod ssi_core && d=/sys/kernel/config/gpio-sim/ssi && echo 0 > \$d/live && rmdir \$d/bank0 \$d && grep -c '^ssi_' /proc/modules")
t_eq "node0: unloads, the gpio-sim chip goes" "0" "$out"

# --- kernel logs ---------------------------------------------------------------------------
for n in 0 1; do
    out=$(cluster_run $n "dmesg")
    t_match "node$n: dmesg shows ssi_core coming up" "ssi_core: node [0-9]+ up" "$out"
done
if bad=$(cluster_check_kernel_logs 2>&1); then
    t_pass "no BUG/WARNING/Oops/Call Trace on any node"
else
    t_fail "no BUG/WARNING/Oops/Call Trace on any node" "$bad"
fi
