#!/bin/bash
# PID 1 of an ssi test guest (started by tests/lib/cluster.sh).
#
# The guest boots with the host's root filesystem shared read-only over 9p, so the
# host's iproute2, rdma-core, perftest and the repository's build outputs are all
# visible at the same paths. A second, writable 9p share (tag "ssirun") is the
# command channel with the host:
#   node$N/cmd/ID.sh     written by the host: a command to run (in the background)
#   node$N/out/ID.out    its output; node$N/out/ID.rc its exit code (written last, in
#                        one write; the host then removes cmd/ID.sh)
#   node$N/ready         written once the guest is up
#   node$N/halt          written by the host: power off
# Kernel command line: ssi.node=N (node id), ssi.ip=ADDR/PREFIX (address of eth0).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# HOME under /tmp (a tmpfs): /root may hold the repository, shared from the host.
export HOME=/tmp/home LANG=C

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t tmpfs varrun /var/run 2>/dev/null
mkdir -p "$HOME"

arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
NODE=$(arg ssi.node)
IP=$(arg ssi.ip)
hostname "ssi-node$NODE"

mkdir -p /run/ssi
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none ssirun /run/ssi; then
    echo "ssi-guest: cannot mount the command share" >/dev/console
    echo o >/proc/sysrq-trigger
fi
CH=/run/ssi/node$NODE
mkdir -p "$CH/cmd" "$CH/out" /tmp/started

ip link set lo up
ip addr add "$IP" dev eth0
ip link set eth0 up

echo "ssi-guest: node $NODE up at $(cut -d' ' -f1 /proc/uptime)s, eth0 $IP" >/dev/console
echo "$(cut -d' ' -f1 /proc/uptime)" >"$CH/ready.tmp" && mv "$CH/ready.tmp" "$CH/ready"

# Poll with a builtin timeout (read on a FIFO nobody writes) rather than exec'ing
# sleep from the 9p root five times a second: under TCG that exec was a visible share
# of each guest's CPU.
mkfifo /tmp/.tick && exec 9<>/tmp/.tick
while [ ! -e "$CH/halt" ]; do
    for f in "$CH"/cmd/*.sh; do
        [ -e "$f" ] || continue
        id=${f##*/}
        id=${id%.sh}
        [ -e "/tmp/started/$id" ] && continue
        : >"/tmp/started/$id"
        (
            cd /tmp && sh "$f" >"$CH/out/$id.out" 2>&1 </dev/null 9<&-
            # One write of "N\n", which the host reads as a whole line (no mv to exec).
            echo $? >"$CH/out/$id.rc"
        ) &
    done
    # Not faster: scanning the command directory (a 9p readdir) ten times a second
    # made the GPIO cable's pings 3x slower (under TCG, QEMU's main loop serves 9p
    # and vhost-user notifications alike).
    read -r -t 0.2 -u 9 _ || :
done

echo "ssi-guest: node $NODE halting" >/dev/console
sync
echo o >/proc/sysrq-trigger
# Wait for the power-off with a shell builtin: the 9p root (and external `sleep`) may
# be gone already, and PID 1 must not exit.
while :; do read -r _ </dev/console || :; done
