#!/usr/bin/env bash
# Process migration on 3 guests (node ids 0, 1, 2; QEMU's "max" CPU, so AVX is there):
# bad requests are refused with clear errors; a process holding known values in its
# general, SSE/AVX, MXCSR and TLS registers keeps them across a migration; unmodified
# programs (a shell loop, sha256sum of a stream on stdin, python3) give the output of an
# unmigrated run; exit codes and signals travel between home and the running node; a
# process with dirty memory hops 0 -> 1 -> 2 -> 0 with every page verified; ssictl ps
# shows it cluster-wide; a destination killed mid-run ends its stand-in, a killed home
# makes the process's next remote fault SIGBUS; modules unload afterwards.
export SSI_GUEST_CPU=${SSI_GUEST_CPU:-max}
. "$(dirname "$0")/../lib/suite.sh" migrate

# Memory of the hop chain (MiB).
CHAIN_MIB=${SSI_CHAIN_MIB:-16}

# The local PID of the process with cluster-wide id $2 on node $3, as ssictl ps on guest
# $1 reports it.
pid_on() {
    json_get "$(cluster_run "$1" "$SSICTL ps --json")" \
        "next((p['pid'] for p in d['processes'] if p['id'] == '$2' and p['node'] == $3 and p['role'] == 'running'), 0)"
}

cluster_start 3
for g in 0 1 2; do
    out=$(cluster_bring_up $g rdma migrate peers down_after_ms=$SSI_TCG_DOWN_AFTER_MS 2>&1)
    t_ok "node$g: loads ssi_core, ssi_rdma, ssi_migrate and configures its peers" $? "$out"
done
for g in 0 1; do start_daemon $g; done
sleep 3
out=$(cluster_run 0 "$SSICTL nodes --json")
t_eq "node0: nodes 1 and 2 are up" "up up" \
    "$(json_get "$out" '" ".join(n["state"] for n in d["nodes"] if n["id"] in (1, 2))')"
avx=$(cluster_run 0 "grep -c ' avx ' /proc/cpuinfo")

# --- bad requests ---------------------------------------------------------------------------
out=$(cluster_run 0 "$SSICTL migrate 999999 1 2>&1")
t_err "node0: unknown pid refused" $? "$out"
t_match "node0: ... ESRCH, no such process" 'No such process.*: no process 999999' "$out"
out=$(cluster_run 0 "$SSICTL migrate 1 1 2>&1")
t_err "node0: pid 1 refused" $? "$out"
t_match "node0: ... EPERM, it is init" 'Operation not permitted.*: pid 1 is init' "$out"
out=$(cluster_run 0 "$SSICTL migrate 2 1 2>&1")
t_err "node0: a kernel thread refused" $? "$out"
t_match "node0: ... EINVAL, kernel thread" 'Invalid argument.*: pid 2 is a kernel thread' "$out"
sleeper=$(start_job 0 "sh -c 'echo ready \$\$; exec sleep 600'" sleeper)
out=$(cluster_run 0 "$SSICTL migrate $sleeper 7 2>&1")
t_err "node0: an unknown node refused" $? "$out"
t_match "node0: ... EHOSTDOWN" 'Host is down.*: node 7 is not up' "$out"
out=$(cluster_run 0 "$SSICTL migrate $sleeper 0 2>&1")
t_err "node0: migrating to its own node refused" $? "$out"
out=$(cluster_run 0 "setpriv --reuid=1000 --regid=1000 --clear-groups $SSICTL migrate $sleeper 1 2>&1")
t_err "node0: uid 1000 may not migrate root's process" $? "$out"
t_match "node0: ... EPERM, not allowed to trace" 'Operation not permitted.*: not allowed to trace pid' "$out"
out=$(cluster_run 0 "$SSICTL migrate $sleeper 2 2>&1")
t_err "node0: a node without a migration daemon refuses" $? "$out"
t_match "node0: ... ECONNREFUSED, says so" 'Connection refused.*: node 2 runs no migration daemon' "$out"
out=$(cluster_run 0 "kill -0 $sleeper && grep -c . /proc/ssi/ps")
t_eq "node0: after the refusals the process still runs here, ps lists nothing" "1" "$out"
start_daemon 2
fd=$(start_job 0 "sh -c 'echo ready \$\$; exec sleep 600' 5</dev/null" fdjob)
out=$(cluster_run 0 "$SSICTL migrate $fd 1 2>&1")
t_err "node0: a process with an extra descriptor refused" $? "$out"
t_match "node0: ... EBUSY, naming it" 'Device or resource busy.*: open file descriptor 5 \(null\) cannot migrate' "$out"
thr=$(start_job 0 "python3 -c 'import os,threading,time; threading.Thread(target=time.sleep,args=(600,),daemon=True).start(); print(\"ready\", os.getpid(), flush=True); time.sleep(600)'" thrjob)
out=$(cluster_run 0 "$SSICTL migrate $thr 1 2>&1")
t_ok "node0: a multi-threaded process moves with all its threads (one at a time)" $? "$out"
t_match "node0: ... ssictl says so" "^pid $thr now runs on node 1: its 2 threads" "$out"
out=$(cluster_run 0 "kill -9 $thr; for i in \$(seq 100); do kill -0 $thr 2>/dev/null || exit 0; sleep 0.1; done; exit 1")
t_ok "node0: ... and ends when killed at home" $? "$out"
cluster_run 0 "$MEMTEST create pinreg 1M >/dev/null"
pin=$(start_job 0 "sh -c 'echo ready \$\$; exec $MEMTEST touch pinreg --pages 0 --loop'" pinjob)
out=$(cluster_run 0 "$SSICTL migrate $pin 1 2>&1")
t_err "node0: a process mapping device-like (PFN) memory refused" $? "$out"
t_match "node0: ... EBUSY, pinned to node 0 by the mapping" 'Device or resource busy.*: pinned to node 0 by \[ssi-region\]' "$out"
out=$(cluster_run 0 "cat /proc/ssi/ps")
t_match "node0: /proc/ssi/ps lists it as pinned to node 0, naming the mapping" \
    "^0:$pin +0 +$pin +pinned +0 +0 ssi-memtest \(pinned by \[ssi-region\] at 0x[0-9a-f]+\)" "$out"
out=$(cluster_run 1 "$SSICTL ps --json")
t_eq "node1: ssictl ps shows node 0's pinned process (role, node, command)" "pinned 0 ssi-memtest" \
    "$(json_get "$out" "' '.join(str(x) for p in d['processes'] if p['pid'] == $pin for x in (p['role'], p['listed_by'], p['command']))")"
cluster_run 0 "kill $fd $thr $pin $sleeper; $MEMTEST remove pinreg" >/dev/null

# --- registers ------------------------------------------------------------------------------
# Spins about 40 s (a busy loop calibrated at start: on a loaded host it may end much
# sooner), so that it is still running when ps looks.
rt=$(start_job 0 "$REGTEST 40" regs)
t_ok "node0: ssi-regtest holds its registers (pid $rt)" $? "$rt"
out=$(cluster_run 0 "$SSICTL migrate $rt 1 --json")
t_ok "node0: migrates it to node 1 mid-spin" $? "$out"
freeze=$(json_get "$out" 'd["freeze_ms"]')
out=$(cluster_run 0 "$SSICTL ps")
t_match "node0: ssictl ps shows it running on node 1" "0:$rt +1 +[0-9]+ +running +1 .*ssi-regtest" "$out"
t_match "node0: ... and its home stand-in on node 0" "0:$rt +0 +$rt +home +1 .*ssi-regtest" "$out"
out=$(wait_job 0 regs 240)
if [ "$avx" -gt 0 ]; then want='ok: 9 general, 16 ymm \(256-bit\), mxcsr, tls'; else want='ok: 9 general, 16 xmm, mxcsr, tls'; fi
t_match "node0: after the migration every register checks out" "$want" "$out"
t_match "node0: ... exit 0 reaches the parent on node 0" '^rc=0$' "$out"
echo "    freeze time (1 hop, small process): ${freeze} ms"

# --- unmodified programs ----------------------------------------------------------------------
cluster_run 0 "head -c 6000000 /dev/urandom >/tmp/stream && sha256sum </tmp/stream | cut -c1-64 >/tmp/stream.sum" >/dev/null
want_sum=$(cluster_run 0 "cat /tmp/stream.sum")
cluster_run 0 "mkfifo /tmp/gate" >/dev/null
sha=$(start_job 0 "sh -c 'echo ready \$\$ >&2; exec sh -c \"head -c 3000000 /tmp/stream; cat /tmp/gate >/dev/null; tail -c +3000001 /tmp/stream\" | sha256sum'" sha)
shapid=$(cluster_run 0 "for i in \$(seq 50); do p=\$(pgrep -x sha256sum) && break; sleep 0.1; done; echo \$p")
out=$(cluster_run 0 "$SSICTL migrate $shapid 1")
t_ok "node0: sha256sum (pid $shapid) moves to node 1 in the middle of its stdin stream" $? "$out"
cluster_run 0 "echo go >/tmp/gate" >/dev/null
out=$(wait_job 0 sha 180)
t_match "node0: its digest equals the unmigrated one" "^$want_sum " "$out"

loop=$(start_job 0 "sh -c 'echo ready \$\$; i=0; while [ \$i -lt 40 ]; do echo line \$i; i=\$((i+1)); sleep 0.3; done'" loop)
out=$(cluster_run 0 "$SSICTL migrate $loop 2")
t_ok "node0: a shell loop moves to node 2" $? "$out"
out=$(wait_job 0 loop 120)
t_eq "node0: its output is complete and in order, exit 0" \
    "$(printf 'line %d\n' $(seq 0 39); echo rc=0)" "$(grep -v '^ready' <<<"$out")"

py="import os, sys, time
print('ready', os.getpid(), flush=True)
time.sleep(10)
d = {i: i * i for i in range(200000)}
s = sum(v % 7919 for v in d.values())
print('sum', s, sorted(d)[-1], flush=True)"
want=$(cluster_run 0 "python3 -c \"$py\" | tail -1")
pyp=$(start_job 0 "python3 -c \"$py\"" py)
out=$(cluster_run 0 "$SSICTL migrate $pyp 1")
t_ok "node0: python3 moves to node 1 while it sleeps" $? "$out"
out=$(wait_job 0 py 180)
t_match "node0: python3 computes what it computes unmigrated ($want)" "^$want\$" "$out"

# --- exit codes and signals; fault pages found locked ----------------------------------------
# The fault handler locks the page it allocates; one that somebody else holds locked is
# left to its holder and the fault is taken again (a hang in __do_fault's lock_page was
# seen once after the hop chain below). Injected here: node 1 treats its next 3 fresh
# fault pages as locked; the process must still find every word of its memory.
params=/sys/module/ssi_migrate/parameters
before=$(cluster_run 1 "cat $params/locked_fresh_pages")
out=$(cluster_run 1 "echo 3 >$params/inject_locked_fresh_pages && cat $params/inject_locked_fresh_pages")
t_eq "node1: its next 3 fresh fault pages will be found locked (injected)" "3" "$out"
# It ends only once /tmp/exit42.go exists where it runs (-f): on a loaded host a fixed
# run time can end before the move.
cluster_run 1 "rm -f /tmp/exit42.go" >/dev/null
cluster_run 0 "rm -f /tmp/exit42.go" >/dev/null
ex=$(start_job 0 "$COUNTER -m 4 -t 10 -i 300 -x 42 -f /tmp/exit42.go" exit42)
out=$(cluster_run 0 "$SSICTL migrate $ex 1")
t_ok "node0: a process that will exit with 42 moves to node 1" $? "$out"
cluster_run 1 "touch /tmp/exit42.go" >/dev/null
cluster_run 0 "touch /tmp/exit42.go" >/dev/null
out=$(wait_job 0 exit42 120)
t_match "node0: exit code 42 of the migrated process reaches its parent" '^rc=42$' "$out"
t_match "node0: ... after it checked all its memory on node 1" '^final ok ' "$out"
out=$(cluster_run 1 "echo \$((\$(cat $params/locked_fresh_pages) - $before)) \$(cat $params/inject_locked_fresh_pages) \$(dmesg | grep -c 'treated as locked (injected): faulting again')")
t_eq "node1: ... those 3 faults were taken again, counted and logged" "3 0 3" "$out"
sig=$(start_job 0 "$COUNTER -m 4 -t 600 -i 200" term)
out=$(cluster_run 0 "$SSICTL migrate $sig 2")
t_ok "node0: a long-running process moves to node 2" $? "$out"
sleep 2
cluster_run 0 "kill -TERM $sig"
out=$(wait_job 0 term 60)
t_match "node0: kill -TERM to the home pid ends the process on node 2 (the parent sees 143)" '^rc=143$' "$out"
# The kernel reports the death home at exit; the daemon logs it when it reaps the child,
# which may come later: wait a little for its line.
out=$(cluster_run 2 "for i in \$(seq 50); do n=\$(grep -c 'killed by signal 15' /tmp/daemon.log); [ \"\$n\" -ge 1 ] && break; sleep 0.1; done; echo \$n")
t_eq "node2: its daemon saw the process die of SIGTERM" "1" "$out"

# --- memory: a chain of hops 0 -> 1 -> 2 -> 0 --------------------------------------------------
# The process ends only when the test says so (-f), so its daemon's pull-in at home never
# races its end: on a loaded host the pull-in can outlast any fixed run time.
cluster_run 0 "rm -f /tmp/chain.go" >/dev/null
ch=$(start_job 0 "$COUNTER -m $CHAIN_MIB -t 60 -i 1000 -w -f /tmp/chain.go" chain 120)
t_ok "node0: a ${CHAIN_MIB} MiB process that rewrites its memory starts (pid $ch)" $? "$ch"
sleep 2
out=$(cluster_run 0 "$SSICTL migrate $ch 1")
t_ok "node0: hop 1: node 0 -> node 1" $? "$out"
sleep 3
p1=$(pid_on 0 "0:$ch" 1)
out=$(cluster_run 1 "$SSICTL migrate $p1 2")
t_ok "node1: hop 2: node 1 -> node 2 (local pid $p1)" $? "$out"
sleep 3
p2=$(pid_on 0 "0:$ch" 2)
out=$(cluster_run 0 "$SSICTL ps")
t_match "node0: ps shows the relay on node 1" "0:$ch +1 +$p1 +relay +2 " "$out"
out=$(cluster_run 2 "$SSICTL migrate $p2 0")
t_ok "node2: hop 3: node 2 -> node 0, home (local pid $p2)" $? "$out"
# Pulling in the pages takes minutes on a loaded TCG host: wait up to 10 min.
# It ends early with the daemon's error line if the pull-in failed.
cluster_wait_line 0 /tmp/daemon.log 'is home again|pulling its pages in' 600 >/dev/null
out=$(cluster_run 0 "grep -E 'is home again|pulling its pages in' /tmp/daemon.log")
t_match "node0: home again, its daemon pulls every page in (no page left only elsewhere)" 'home again: [0-9]+ pages pulled in' "$out"
cluster_run 0 "touch /tmp/chain.go" >/dev/null
out=$(wait_job 0 chain 600)
t_match "node0: after 3 hops every page verifies (dirty pages followed it)" '^final ok ' "$out"
t_match "node0: ... and the parent sees exit 0" '^rc=0$' "$out"
t_nomatch "node0: ... no tick saw a wrong word" 'BAD' "$out"
sleep 2
out=$(cluster_run 1 "cat /proc/ssi/ps | grep -c ssi-counter")
t_eq "node1: its relay stand-in is gone after the exit" "0" "$out"

# --- failures ---------------------------------------------------------------------------------
rmm=$(start_job 0 "$COUNTER -m 4 -t 600 -i 200" held)
out=$(cluster_run 0 "$SSICTL migrate $rmm 1")
t_ok "node0: another process moves to node 1" $? "$out"
out=$(cluster_run 0 "rmmod ssi_migrate 2>&1")
t_err "node0: rmmod ssi_migrate is refused while a stand-in exists" $? "$out"
out=$(cluster_run 1 "rmmod ssi_migrate 2>&1")
t_err "node1: ... and while a migrated process runs there" $? "$out"
t0=$(date +%s%N)
cluster_kill 1
out=$(wait_job 0 held 30)
t_match "node0: destination killed: the stand-in ends (SIGKILL, 137) instead of hanging" '^rc=137$' "$out"
echo "    stand-in noticed the dead destination after $((($(date +%s%N) - t0) / 1000000)) ms"

bus=$(start_job 2 "$COUNTER -m 8 -t 600 -i 100" bus)
out=$(cluster_run 2 "$SSICTL migrate $bus 0")
t_ok "node2: a process moves to node 0" $? "$out"
sleep 2
cluster_kill 2
out=$(cluster_run 0 "for i in \$(seq 100); do grep -q 'killed by signal' /tmp/daemon.log && break; sleep 0.2; done; grep 'killed by signal' /tmp/daemon.log | tail -1")
t_match "node0: home killed: the process's next remote fault is SIGBUS (signal 7)" 'killed by signal 7' "$out"

out=$(cluster_run 0 "pkill -f 'ssictl daemon'; sleep 0.5; rmmod ssi_migrate && rmmod ssi_rdma && rmmod ssi_core && echo unloaded" 60)
t_match "node0: ssi_migrate, ssi_rdma and ssi_core unload afterwards" 'unloaded' "$out"

out=$(cluster_check_kernel_logs 2>&1)
t_ok "no BUG/WARNING/Oops in any guest log" $? "$out"
