#!/usr/bin/env bash
# The Pi Zero stage of make test: boots the Pi Zero kernel (scripts/pizero.sh) under
# `qemu-system-arm -M raspi0` (BCM2835, ARM1176 = ARMv6K) with the ssi-gpio-bus overlay
# merged into the device tree, loads the RDMA core and the four ssi modules, runs
# ssictl, unloads, and checks what the board printed. Every check is a test case.
set -uo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
. "$SSI_ROOT/tests/lib/assert.sh"
. "$SSI_ROOT/scripts/pizero.sh"
t_suite=pizero

kdir=$(pizero_kdir)
obj=$kdir/obj
out=$(pizero_out)
rel=$(cat "$obj/include/config/kernel.release")
work=$(mktemp -d /tmp/ssi-raspi0.XXXXXX)
trap '[ -n "${SSI_KEEP:-}" ] || rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules/"$rel",ssi}

# --- the board's initramfs: busybox, the kernel's RDMA core modules, ssi, ssictl --------
cp "$SSI_CACHE/dl/armel/busybox" "$root/bin/busybox"
for m in ib_core ib_cm iw_cm rdma_cm; do
    f=$(find "$obj" -name "$m.ko" | head -n 1)
    [ -n "$f" ] && cp "$f" "$root/lib/modules/$rel/"
done
cp "$out"/modules/ssi_*/*.ko "$root/ssi/"
cp "$out/bin/ssictl" "$root/bin/ssictl"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev 2>/dev/null
step() { echo "SSI-STEP $1 rc=$2"; }
grep -m1 -i 'model name\|^Processor' /proc/cpuinfo
k=/lib/modules/$(uname -r)
for m in ib_core ib_cm iw_cm rdma_cm; do insmod $k/$m.ko; done
insmod /ssi/ssi_core.ko node_id=0; step insmod-ssi_core $?
insmod /ssi/ssi_rdma.ko; step insmod-ssi_rdma $?
insmod /ssi/ssi_gpio_bus.ko peer_node=1; step insmod-ssi_gpio_bus $?
insmod /ssi/ssi_migrate.ko; step insmod-ssi_migrate $?
echo "SSI-LSMOD $(grep -c '^ssi_' /proc/modules)"
ssictl node add 1 10.0.0.2; step node-add $?
ssictl status; step status $?
echo "SSI-TRANSPORTS-BEGIN"; cat /proc/ssi/transports; echo "SSI-TRANSPORTS-END"
ssictl ps; step ps $?
ssictl migrate 1 1; step migrate-init $?
rmmod ssi_migrate; step rmmod-ssi_migrate $?
rmmod ssi_gpio_bus; step rmmod-ssi_gpio_bus $?
rmmod ssi_rdma; step rmmod-ssi_rdma $?
rmmod ssi_core; step rmmod-ssi_core $?
echo "SSI-LSMOD-AFTER $(grep -c '^ssi_' /proc/modules)"
echo SSI-DONE
reboot -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# --- the device tree, with the overlay applied as the Pi firmware would ---------------
dtb=$obj/arch/arm/boot/dts/broadcom/bcm2835-rpi-zero.dtb
fdtoverlay -i "$dtb" -o "$work/board.dtb" "$out/ssi-gpio-bus.dtbo"
t_ok "the ssi-gpio-bus overlay applies to the Pi Zero device tree" $?

# --- boot ------------------------------------------------------------------------------
log=$work/console.log
timeout 300 qemu-system-arm -M raspi0 -kernel "$obj/arch/arm/boot/zImage" -dtb "$work/board.dtb" \
    -initrd "$work/initrd.gz" -nographic -no-reboot \
    -append "console=ttyAMA0 earlycon=pl011,0x20201000 panic=-1 rdinit=/init initcall_blacklist=bcm2835_power_driver_init,bcm2835_i2c_driver_init" \
    >"$log" 2>&1 </dev/null
rc=$?
cp "$log" "$ssi_log_dir/test-raspi0.log"
step_rc() { sed -n "s/^SSI-STEP $1 rc=\([0-9]*\).*/\1/p" "$log" | tail -n 1; }

t_eq "raspi0: the board ran to the end (qemu exit 0, SSI-DONE)" "0 yes" \
    "$rc $(grep -q '^SSI-DONE' "$log" && echo yes || echo no)"
t_match "raspi0: the CPU is an ARMv6-compatible processor" 'CPU: ARMv6-compatible processor' "$(cat "$log")"
for m in ssi_core ssi_rdma ssi_gpio_bus ssi_migrate; do
    t_eq "raspi0: insmod $m" "0" "$(step_rc "insmod-$m")"
done
t_eq "raspi0: the four ssi modules are loaded together" "4" "$(sed -n 's/^SSI-LSMOD \([0-9]*\).*/\1/p' "$log")"
t_eq "raspi0: ssictl node add and ssictl status succeed" "0 0" "$(step_rc node-add) $(step_rc status)"
t_match "raspi0: ssictl status shows node 0's gpio-bus link to node 1 (linking, reads emulated)" \
    'gpio-bus +gpio-bus +v3 +node 0 <-> 1: linking .*\(reads emulated\)' \
    "$(sed -n '/^SSI-STEP node-add/,/^SSI-STEP status/p' "$log")"
transports=$(sed -n '/^SSI-TRANSPORTS-BEGIN/,/^SSI-TRANSPORTS-END/p' "$log")
t_match "raspi0: ssi_gpio_bus bound the overlay's ten lines by consumer name" \
    'cable lines bound: pinctrl-bcm2835 data 12,13,16,17,22,23,24,25 ready 26 valid 27' "$(cat "$log")"
t_match "raspi0: ... as transport gpio-bus towards node 1, linking (no board at the other end)" \
    'gpio-bus +node 0 <-> 1: linking fr 0/0 .*\(reads emulated\)' "$transports"
t_eq "raspi0: ssictl ps works" "0" "$(step_rc ps)"
t_eq "raspi0: migrating init is refused (EPERM/EOPNOTSUPP, exit 1)" "1" "$(step_rc migrate-init)"
for m in ssi_migrate ssi_gpio_bus ssi_rdma ssi_core; do
    t_eq "raspi0: rmmod $m" "0" "$(step_rc "rmmod-$m")"
done
t_eq "raspi0: no ssi module left" "0" "$(sed -n 's/^SSI-LSMOD-AFTER \([0-9]*\).*/\1/p' "$log")"
# The whole log for the kernel's alarms; after the first module load, any stack trace.
bad=$({
    grep -E 'BUG:|WARNING:|Oops|Kernel panic|Unable to handle|Internal error' "$log"
    sed -n '/^SSI-STEP /,$p' "$log" | grep -E 'Call trace|Backtrace|Division by zero'
})
t_eq "raspi0: no BUG/WARNING/Oops in the board's log" "" "$bad"
if [ "${t_failures:-0}" -gt 0 ]; then
    echo "    board log (last 40 lines; all of it: $ssi_log_dir/test-raspi0.log):"
    tail -n 40 "$log" | sed 's/^/         | /'
fi
