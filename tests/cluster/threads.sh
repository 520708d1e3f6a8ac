#!/usr/bin/env bash
# Distributed threads on 3 guests (node ids 0, 1, 2): `ssictl migrate TID NODE` moves one
# thread of a multi-threaded process (tests/tools/ssi-threads.c) to another node while
# its siblings keep running at home, in one coherent address space with cluster-wide
# futexes. Four threads, three of them moved to nodes 1, 1 and 2 (while they run), add
# to a shared atomic counter and to a plain one under a spinlock, then to one under a
# pthread_mutex: no increment is lost; a pthread_cond queue carries numbered items from
# node 0 to node 1 in order; a pthread_barrier of 3 threads on 3 nodes completes every
# round; the message-passing and store-buffering litmus tests with one thread on node 1
# find no outcome x86-TSO forbids; a thread on node 1 returns its value to pthread_join
# at home; exit_group from a thread on node 2, or from one it started there, ends the
# whole process with its code;
# fork is refused (EBUSY) while posix_spawn works; pthread_kill reaches a thread on
# node 1, whose handler runs there; SIGTERM to the home pid ends the process everywhere;
# the futex2 system calls (futex_wait, futex_wake, futex_requeue) work between nodes and
# futex_waitv is refused (ENOSYS); a timed wait from before the process became
# distributed is woken from node 1; a thread on node 1 that ends holding a robust mutex
# gives the next locker at home EOWNERDEAD;
# rmmod is refused while a distributed process lives; a node that runs a thread is
# killed: the process ends with SIGKILL within the failure detector's delay, and the
# log names the node; refusals (unknown node, kernel thread, own node, a main thread's
# id); ssictl ps lists a thread that is away; threads move on (named by their id at
# home) and back home, keeping their ids; a moved thread's getpid(), getppid() and
# gettid() answer its ids at home, and its pthread_kill(), kill() and raise() reach
# the right threads; `ssictl migrate PID NODE` of a multi-threaded process moves every
# thread; ssictl ps lists every thread of a distributed process where it runs; memory
# mapped (mmap, malloc, a new thread's stack) or unmapped on either side after the
# threads spread is seen on the other; a library loaded with dlopen on node 1 is one
# library at home too (its code, data and bss), dlclose unloads it everywhere, and
# pthread_exit on node 1 (which loads libgcc_s) works; a library node 0 lacks, or has
# another file under its name, fails dlopen cleanly with a log line; malloc arenas
# reserved before the threads spread
# grow (mprotect) into memory every node sees; a thread moves while its process maps
# memory and opens a reservation, and sees every change; processes with many private
# mappings distribute run after run and leave no region behind; no
# BUG/WARNING/Oops; modules unload.
. "$(dirname "$0")/../lib/suite.sh" threads

[ -x "$THREADS" ] || ssi_die "no $THREADS: run scripts/build.sh tools"

# make test's sizes; make soak (SSI_SOAK=1) runs longer ones. Each can be set on its own.
if [ "${SSI_SOAK:-0}" = 1 ]; then
    COUNT_ITERS=${SSI_THREADS_ITERS:-1000000} LITMUS_ITERS=${SSI_THREADS_LITMUS:-20000}
    MUTEX_ITERS=${SSI_THREADS_MUTEX:-1000000} QUEUE_ITEMS=${SSI_THREADS_QUEUE:-100000}
    BARRIER_ROUNDS=${SSI_THREADS_ROUNDS:-2000}
else
    # The mutex, queue, barrier and litmus sizes are those the feature is specified
    # with; the atomic counter (no futex, only the page) does with fewer rounds.
    COUNT_ITERS=${SSI_THREADS_ITERS:-50000} LITMUS_ITERS=${SSI_THREADS_LITMUS:-2000}
    MUTEX_ITERS=${SSI_THREADS_MUTEX:-200000} QUEUE_ITEMS=${SSI_THREADS_QUEUE:-20000}
    BARRIER_ROUNDS=${SSI_THREADS_ROUNDS:-500}
fi
# How long a job may run (s): every remote access of a contended page is a page fault
# answered over the network, and TCG is slow.
JOB_SECS=${SSI_THREADS_JOB_SECS:-900}

# start_threads GUEST NAME GOFILE MODE-ARGS...: `ssi-threads MODE-ARGS GOFILE` as job NAME
# on GUEST, GOFILE removed first (its workers wait for it); prints the PID.
start_threads() {
    local g=$1 name=$2 go=$3
    shift 3
    cluster_run "$g" "rm -f $go" >/dev/null
    start_job "$g" "$THREADS $* $go" "$name"
}

# The thread ids job $2 on guest $1 reported ("tid I TID"), waiting until there are $3;
# printed in worker order on one line.
job_tids() {
    cluster_run "$1" "for i in \$(seq 100); do [ \$(grep -c '^tid ' /tmp/$2.out 2>/dev/null) -ge $3 ] 2>/dev/null && break; sleep 0.1; done; sed -n 's/^tid [0-9]* \([0-9]*\)\$/\1/p' /tmp/$2.out" | xargs
}

# one_worker_away NAME GOFILE NODE MODE-ARGS...: starts `ssi-threads MODE-ARGS GOFILE`
# (one worker) as job NAME on node 0, moves the worker to NODE and lets it go; sets pid
# and tid. Both steps are test cases.
one_worker_away() {
    local name=$1 go=$2 node=$3 out
    shift 3
    pid=$(start_threads 0 "$name" "$go" "$@")
    t_ok "node0: ssi-threads $1 starts one worker (pid $pid)" $? "$pid"
    tid=$(job_tids 0 "$name" 1)
    out=$(cluster_run 0 "$SSICTL migrate $tid $node 2>&1")
    t_ok "node0: the worker (tid $tid) moves to node $node" $? "$out"
    cluster_run 0 "touch $go" >/dev/null
}

# The value of key $2 in the `key=value` line $1.
kv() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1" | head -n 1; }

cluster_start 3
for g in 0 1 2; do
    out=$(cluster_bring_up $g rdma migrate peers down_after_ms=$SSI_TCG_DOWN_AFTER_MS 2>&1)
    t_ok "node$g: loads ssi_core, ssi_rdma, ssi_migrate and configures its peers" $? "$out"
done
for g in 0 1 2; do start_daemon $g; done
sleep 3
out=$(cluster_run 0 "$SSICTL nodes --json")
t_eq "node0: nodes 1 and 2 are up" "up up" \
    "$(json_get "$out" '" ".join(n["state"] for n in d["nodes"] if n["id"] in (1, 2))')"

# --- bad requests ---------------------------------------------------------------------------
# A thread that waits for /tmp/go0 and then returns 1. (The exact texts of the refusals
# are to be settled with the kernel side: the patterns are loose.)
ref=$(start_threads 0 refused /tmp/go0 join 1)
t_ok "node0: ssi-threads join starts one worker (pid $ref)" $? "$ref"
rt=$(job_tids 0 refused 1)
t_match "node0: ... and reports its thread id" '^[0-9]+$' "$rt"
out=$(cluster_run 0 "$SSICTL migrate $rt 9 2>&1")
t_err "node0: moving a thread to an unknown node is refused" $? "$out"
# exact text to be settled (migrate.sh has 'Host is down.*: node 7 is not up' for a process)
t_match "node0: ... with a message naming the node" '[Nn]ode 9' "$out"
out=$(cluster_run 0 "$SSICTL migrate 2 1 2>&1")
t_err "node0: moving a kernel thread's tid (kthreadd, 2) is refused" $? "$out"
# exact text to be settled (EPERM or EINVAL; migrate.sh has 'Invalid argument.*: pid 2 is a
# kernel thread' for the process)
t_match "node0: ... as a kernel thread" 'Operation not permitted|Invalid argument|kernel thread' "$out"
out=$(cluster_run 0 "$SSICTL migrate $rt 0 2>&1")
t_err "node0: moving a thread to the node it runs on is refused" $? "$out"
# exact text to be settled
t_match "node0: ... with a message" '.' "$out"
out=$(cluster_run 0 "setpriv --reuid=1000 --regid=1000 --clear-groups $SSICTL migrate $rt 1 2>&1")
t_err "node0: another user cannot move the thread (ptrace rules)" $? "$out"
t_match "node0: ... Operation not permitted" 'Operation not permitted' "$out"
out=$(cluster_run 0 "setpriv --reuid=1000 --regid=1000 --clear-groups $SSICTL migrate $ref 1 2>&1")
t_err "node0: ... nor the whole process" $? "$out"
t_match "node0: ... and no thread moved" 'no thread moved.*Operation not permitted' "$out"
cluster_run 0 "touch /tmp/go0" >/dev/null
out=$(wait_job 0 refused 120)
t_match "node0: after the refusals the thread still runs at home and returns 1 to its join" \
    '^joined value=1$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- counter: 4 threads on 3 nodes, one shared atomic counter, one spinlock -----------------
pid=$(start_threads 0 counter /tmp/go1 counter 4 "$COUNT_ITERS")
t_ok "node0: ssi-threads counter starts 4 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 counter 4)"
t_eq "node0: ... and reports 4 thread ids" "4" "${#tids[@]}"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: worker 1 (tid ${tids[1]}) moves to node 1 before the workers start" $? "$out"
out=$(cluster_run 0 "$SSICTL ps 2>&1")
t_match "node0: ssictl ps lists thread ${tids[1]} running on node 1" \
    "^0:${tids[1]} +1 +[0-9]+ +running .*ssi-threads" "$out"
# The workers stop half-way until /tmp/go1.half exists: the next two moves happen while
# they run.
cluster_run 0 "touch /tmp/go1" >/dev/null
out=$(cluster_run 0 "$SSICTL migrate ${tids[2]} 1 2>&1")
t_ok "node0: worker 2 (tid ${tids[2]}) moves to node 1 while the workers run" $? "$out"
out=$(cluster_run 0 "$SSICTL migrate ${tids[3]} 2 2>&1")
t_ok "node0: worker 3 (tid ${tids[3]}) moves to node 2 while the workers run" $? "$out"
cluster_run 0 "touch /tmp/go1.half" >/dev/null
out=$(wait_job 0 counter "$JOB_SECS")
want=$((4 * COUNT_ITERS)) want_locked=$((4 * ((COUNT_ITERS + 15) / 16)))
t_match "node0: every worker finished its loop (0 at home, 1-3 on nodes 1, 1, 2)" '^workers done$' "$out"
line=$(grep '^counter ' <<<"$out")
t_eq "node0: no increment of the shared atomic counter was lost" "$want $want" \
    "$(kv "$line" total) $(kv "$line" expected)"
t_eq "node0: no increment of the plain counter under the spinlock was lost" \
    "$want_locked $want_locked" "$(kv "$line" locked) $(kv "$line" expected_locked)"
t_match "node0: each thread's own count is exact" '^per-thread ok$' "$out"
t_match "node0: ... exit 0 reaches the parent on node 0" '^rc=0$' "$out"

# --- mutex: the same under a pthread_mutex (cluster-wide futexes) ---------------------------
pid=$(start_threads 0 mutex /tmp/go6 mutex 4 "$MUTEX_ITERS")
t_ok "node0: ssi-threads mutex starts 4 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 mutex 4)"
cluster_run 0 "touch /tmp/go6" >/dev/null
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: worker 1 (tid ${tids[1]}) moves to node 1 while the workers run" $? "$out"
out=$(cluster_run 0 "$SSICTL migrate ${tids[2]} 1 2>&1")
t_ok "node0: worker 2 (tid ${tids[2]}) moves to node 1 while the workers run" $? "$out"
out=$(cluster_run 0 "$SSICTL migrate ${tids[3]} 2 2>&1")
t_ok "node0: worker 3 (tid ${tids[3]}) moves to node 2 while the workers run" $? "$out"
cluster_run 0 "touch /tmp/go6.half" >/dev/null
out=$(wait_job 0 mutex "$JOB_SECS")
want=$((4 * MUTEX_ITERS))
line=$(grep '^mutex ' <<<"$out")
t_eq "node0: 4 threads on nodes 0, 1, 1, 2 add $MUTEX_ITERS each under one pthread_mutex" \
    "$want $want" "$(kv "$line" total) $(kv "$line" expected)"
t_match "node0: ... exit 0" '^rc=0$' "$out"
# The traffic it made, by message type: node 1's faults went to the home (node 0) as
# page-faults, answered by page-plans or, for a page busy with another node's fault
# (often, with four threads on one lock), by an error and asked again; its futex calls
# went as migration service calls.
out=$(cluster_run 1 "cat /proc/ssi/messages")
read -r faults plans errors <<<"$(awk '$1 == "page-fault" { f = $2 } $1 == "page-plan" { p = $3 } $1 == "error" { e = $3 } END { print f + 0, p + 0, e + 0 }' <<<"$out")"
t_eq "node1: /proc/ssi/messages: $faults page-faults sent, $plans page-plans and $errors errors received" \
    "True" "$(python3 -c "print(0 < $plans <= $faults)")"
t_match "node1: ... and migration service calls both ways" '^service:migrate +[1-9][0-9]* +[1-9][0-9]*$' "$out"

# --- queue: pthread_cond producer on node 0, consumer on node 1 ------------------------------
pid=$(start_threads 0 queue /tmp/go7 queue "$QUEUE_ITEMS")
t_ok "node0: ssi-threads queue starts producer and consumer (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 queue 2)"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: the consumer (tid ${tids[1]}) moves to node 1" $? "$out"
cluster_run 0 "touch /tmp/go7" >/dev/null
out=$(wait_job 0 queue "$JOB_SECS")
line=$(grep '^queue ' <<<"$out")
t_eq "node0: $QUEUE_ITEMS numbered items pass a pthread_cond queue between nodes, in order" \
    "$QUEUE_ITEMS $QUEUE_ITEMS" "$(kv "$line" items) $(kv "$line" in_order)"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- barrier: 3 threads on 3 nodes ------------------------------------------------------------
pid=$(start_threads 0 barrier /tmp/go8 barrier 3 "$BARRIER_ROUNDS")
t_ok "node0: ssi-threads barrier starts 3 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 barrier 3)"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: worker 1 (tid ${tids[1]}) moves to node 1" $? "$out"
out=$(cluster_run 0 "$SSICTL migrate ${tids[2]} 2 2>&1")
t_ok "node0: worker 2 (tid ${tids[2]}) moves to node 2" $? "$out"
cluster_run 0 "touch /tmp/go8" >/dev/null
out=$(wait_job 0 barrier "$JOB_SECS")
line=$(grep '^barrier ' <<<"$out")
t_eq "node0: a pthread_barrier of 3 threads on 3 nodes: every round complete" \
    "$BARRIER_ROUNDS $BARRIER_ROUNDS" "$(kv "$line" rounds) $(kv "$line" ok)"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- the futex2 system calls: futex_wait, futex_wake, futex_requeue, futex_waitv ---------------
# They bypass futex(2); a distributed process's go to the cluster's futexes too. Each wait
# of the ping-pong is bounded by 2 s, so that a lost wake is counted, not a hang.
one_worker_away futex2 /tmp/go22 1 futex2 50
out=$(wait_job 0 futex2 "$JOB_SECS")
t_match "node0: futex_wait/futex_wake between home and node 1: 50 rounds each way, no wake lost" \
    '^futex2 rounds=50 lost=0 ' "$out"
t_match "node0: ... a futex_wait on node 1 times out on CLOCK_MONOTONIC and CLOCK_REALTIME" \
    ' timed=ok ' "$out"
t_match "node0: ... futex_requeue at home moves the waiter on node 1, woken on the other word" \
    ' requeue=ok ' "$out"
t_match "node0: ... futex_waitv is refused (ENOSYS), bad flags are EINVAL" \
    ' waitv=ENOSYS flags=ok$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"
out=$(cluster_run 1 "dmesg | grep 'futex_waitv refused'")
t_match "node1: ... its kernel log says why futex_waitv was refused" \
    'futex_waitv refused \(ENOSYS\): not supported in a distributed process' "$out"

# A timed wait under way when the process becomes distributed is interrupted and restarts
# from the kernel's restart block: it must restart as a cluster wait, or the wake from
# node 1 would not reach it before its 60 s timeout.
pid=$(start_threads 0 timedwait /tmp/go23 timedwait)
t_ok "node0: ssi-threads timedwait starts a worker in a 60 s futex wait (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 timedwait 2)"
cluster_run 0 "sleep 1" >/dev/null
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: the other worker (tid ${tids[1]}) moves to node 1 while it waits" $? "$out"
cluster_run 0 "touch /tmp/go23" >/dev/null
out=$(wait_job 0 timedwait 120)
t_match "node0: the wake from node 1 ends the wait that began before the move (not its timeout)" \
    '^timedwait ret=0 errno=0 ' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# A moved thread that ends holding a robust mutex: its mutex names its id at home, which
# the kernel's cleanup on node 1 must see as the exiting thread's, and the waiter at home
# must be woken across nodes. Without both it waits for ever.
one_worker_away robust /tmp/go24 1 robust
out=$(wait_job 0 robust 120)
t_match "node0: a thread on node 1 ends holding a robust mutex: the lock at home returns EOWNERDEAD" \
    '^robust lock=EOWNERDEAD ' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"
echo "    $(grep '^robust ' <<<"$out")"

# --- litmus tests: thread 1 on node 1 -------------------------------------------------------
pid=$(start_threads 0 mp /tmp/go2 mp "$LITMUS_ITERS")
t_ok "node0: ssi-threads mp starts writer and reader (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 mp 2)"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: the reader (tid ${tids[1]}) moves to node 1" $? "$out"
cluster_run 0 "touch /tmp/go2" >/dev/null
out=$(wait_job 0 mp "$JOB_SECS")
line=$(grep '^mp ' <<<"$out")
t_eq "node0: mp, writer on node 0, reader on node 1: all iterations, none forbidden" \
    "$LITMUS_ITERS 0" "$(kv "$line" iterations) $(kv "$line" forbidden)"
t_match "node0: ... exit 0" '^rc=0$' "$out"

pid=$(start_threads 0 sb /tmp/go3 sb "$LITMUS_ITERS")
t_ok "node0: ssi-threads sb starts 2 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 sb 2)"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: thread 1 (tid ${tids[1]}) moves to node 1" $? "$out"
cluster_run 0 "touch /tmp/go3" >/dev/null
out=$(wait_job 0 sb "$JOB_SECS")
line=$(grep '^sb ' <<<"$out")
t_eq "node0: sb with mfence, threads on nodes 0 and 1: all iterations, never r0 = r1 = 0" \
    "$LITMUS_ITERS 0" "$(kv "$line" iterations) $(kv "$line" forbidden)"
t_match "node0: ... exit 0" '^rc=0$' "$out"
echo "    sb outcomes (r0 r1): ${line#*outcomes }"

# --- a remote thread's end: pthread_join at home, exit_group ---------------------------------
one_worker_away join /tmp/go4 1 join 42
out=$(wait_job 0 join "$JOB_SECS")
t_match "node0: pthread_join at home gets the value the thread on node 1 returned" \
    '^joined value=42$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

one_worker_away exitcode /tmp/go5 2 exitcode 7
out=$(wait_job 0 exitcode 120)
t_match "node0: exit_group(7) on node 2 ends the whole process: its parent at home sees 7" \
    '^rc=7$' "$out"
# From a thread that the moved one started on node 2, and with 0: the whole process ends
# too (not only the moved thread, which would let the join at home return).
one_worker_away exitstarted /tmp/go28 2 exitstarted 0
out=$(wait_job 0 exitstarted 120)
t_match "node0: exit_group(0) from a thread started on node 2 ends the whole process with 0" \
    '^rc=0$' "$out"
t_nomatch "node0: ... not only the thread that moved there" 'FAIL' "$out"

# --- threads move on and back home --------------------------------------------------------------
# Named by their ids at home wherever they run (the home asks the node running one to
# move it), or by their pid where they run.
pid=$(start_threads 0 wander /tmp/go13 wander 3)
t_ok "node0: ssi-threads wander starts 3 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 wander 3)"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 1 2>&1")
t_ok "node0: worker 1 (tid ${tids[1]}) moves to node 1" $? "$out"
cluster_run 0 "touch /tmp/go13; sleep 2" >/dev/null
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 2 2>&1")
t_ok "node0: worker 1, named by its id at home, moves on from node 1 to node 2" $? "$out"
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 2 2>&1")
t_err "node0: moving it to node 2 again is refused" $? "$out"
t_match "node0: ... saying where it runs" "thread ${tids[1]} runs on node 2 already" "$out"
out=$(cluster_run 0 "$SSICTL migrate ${tids[2]} 1 2>&1")
t_ok "node0: worker 2 (tid ${tids[2]}) moves to node 1" $? "$out"
out=$(cluster_run 1 "$SSICTL ps")
t_match "node1: ssictl ps lists the main thread running at home" "^0:$pid +0 +$pid +running " "$out"
t_match "node1: ... worker 0 running at home" "^0:${tids[0]} +0 +${tids[0]} +running " "$out"
t_match "node1: ... worker 1 running on node 2" "^0:${tids[1]} +2 +[0-9]+ +running " "$out"
t_match "node1: ... and worker 2 running on node 1" \
    "^0:${tids[2]} +1 +[0-9]+ +running .*ssi-threads" "$out"
t_ok "node1: ... and nothing of worker 1 (it left no task there)" \
    "$(grep -qE "^0:${tids[1]} +1 " <<<"$out"; [ $? = 1 ]; echo $?)"
cluster_run 0 "sleep 2" >/dev/null
out=$(cluster_run 0 "$SSICTL migrate ${tids[1]} 0 2>&1")
t_ok "node0: worker 1 comes home from node 2 (ssictl migrate TID 0 at home)" $? "$out"
out=$(cluster_run 0 "$SSICTL ps")
t_match "node0: ssictl ps: worker 2 is away on node 1" "^0:${tids[2]} +1 " "$out"
t_match "node0: ... worker 1 runs at home as itself" "^0:${tids[1]} +0 +${tids[1]} +running " "$out"
t_eq "node0: ... and is listed only there (no stand-in, no task elsewhere)" "1" \
    "$(grep -c "^0:${tids[1]} " <<<"$out")"
local_pid=$(cluster_run 1 "$SSICTL ps" |
    awk -v id="0:${tids[2]}" '$1 == id && $4 == "running" { print $3 }')
out=$(cluster_run 1 "$SSICTL migrate $local_pid 0 2>&1")
t_ok "node1: worker 2, named by its pid on node 1 ($local_pid), moves back home" $? "$out"
cluster_run 0 "sleep 2; touch /tmp/go13.stop" >/dev/null
out=$(wait_job 0 wander "$JOB_SECS")
line=$(grep '^wander ' <<<"$out")
t_ok "node0: no increment under the pthread_mutex was lost ($line)" \
    "$([ -n "$line" ] && [ "$(kv "$line" total)" = "$(kv "$line" sum)" ]; echo $?)"
t_match "node0: worker 1 ran on nodes 1, 2 and 0 in that order" \
    '^path 1: ssi-node1 ssi-node2 ssi-node0$' "$out"
t_match "node0: worker 2 ran on nodes 0, 1 and 0" '^path 2: ssi-node0 ssi-node1 ssi-node0$' "$out"
t_match "node0: worker 1 keeps its thread id through every hop" \
    "^tid 1 start=${tids[1]} end=${tids[1]}\$" "$out"
t_match "node0: ... and so does worker 2" "^tid 2 start=${tids[2]} end=${tids[2]}\$" "$out"
t_match "node0: ... exit 0 (no worker looked ended to pthread_tryjoin_np while it ran)" \
    '^rc=0$' "$out"
for g in 1 2; do
    out=$(cluster_run $g "pgrep -c -x ssi-threads")
    t_eq "node$g: no task of the process is left there" "0" "$out"
done

# --- a whole multi-threaded process moves: every thread, one at a time ---------------------------
pid=$(start_threads 0 whole /tmp/go15 counter 3 "$COUNT_ITERS")
t_ok "node0: ssi-threads counter starts 3 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 whole 3)"
out=$(cluster_run 0 "$SSICTL migrate $pid 1 2>&1")
t_match "node0: ssictl migrate PID 1 moves all 4 threads of the process (its main thread last)" \
    "^pid $pid now runs on node 1: its 4 threads" "$out"
out=$(cluster_run 1 "$SSICTL ps")
t_eq "node1: ssictl ps lists the 4 threads running there" "4" \
    "$(grep -cE "^0:($pid|${tids[0]}|${tids[1]}|${tids[2]}) +1 +[0-9]+ +running " <<<"$out")"
# Its main thread, on node 1 now, looks for its go files there.
for g in 0 1; do cluster_run $g "touch /tmp/go15 /tmp/go15.half" >/dev/null; done
out=$(wait_job 0 whole "$JOB_SECS")
want=$((3 * COUNT_ITERS))
line=$(grep '^counter ' <<<"$out")
t_eq "node0: 3 workers on node 1 lose no increment of the shared atomic counter" "$want $want" \
    "$(kv "$line" total) $(kv "$line" expected)"
t_match "node0: ... each thread's own count is exact" '^per-thread ok$' "$out"
t_match "node0: ... and the exit status reaches the parent at home" '^rc=0$' "$out"

# The same with signals: the main thread is away too, so its stand-in forwards the
# signals sent to the process.
pid=$(start_threads 0 wholeids /tmp/go16 ids)
t_ok "node0: ssi-threads ids starts one worker (pid $pid)" $? "$pid"
tid=$(job_tids 0 wholeids 1)
out=$(cluster_run 0 "$SSICTL migrate $pid 1 2>&1")
t_match "node0: ssictl migrate PID 1 moves both threads" "^pid $pid now runs on node 1: its 2 threads" "$out"
for g in 0 1; do cluster_run $g "touch /tmp/go16" >/dev/null; done
out=$(wait_job 0 wholeids 120)
t_match "node0: both threads on node 1 see the process's ids at home" \
    "^ids pid=$pid ppid=[0-9]+ tid=$tid same\$" "$out"
t_match "node0: pthread_kill() to the main thread, kill() of the pid (through the home) and raise() run their handlers in the right threads there" \
    '^signals pthread_kill=ok kill=ok raise=ok$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- fork of a distributed process: refused; posix_spawn works; execve away from home: refused ---
one_worker_away fork /tmp/go12 1 fork
out=$(wait_job 0 fork 120)
t_match "node0: fork() in a process with a thread on node 1 fails with EBUSY" '^fork errno=16$' "$out"
t_match "node0: ... posix_spawn (vfork) of /bin/true works and exits 0" '^spawn status=0$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"
out=$(cluster_run 0 "dmesg | grep 'fork refused'")
t_match "node0: ... the kernel log says why" "pid $pid: fork refused \\(EBUSY\\)" "$out"

one_worker_away exec /tmp/go19 2 exec
out=$(wait_job 0 exec 120)
t_match "node0: execve() by the thread on node 2 fails with EBUSY (the process goes on)" \
    '^exec errno=16$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"
out=$(cluster_run 2 "dmesg | grep 'execve refused'")
t_match "node2: ... its kernel log says why" 'execve refused \(EBUSY\): its process runs threads on other nodes' "$out"

# --- memory mapped after the threads spread is one address space too ---------------------------
# The worker on node 1 maps memory (mmap, a big malloc served by mmap, a small one from
# its own malloc arena) and starts a thread there; the main thread at home reads all of
# it, writes into it and maps memory of its own, which the worker reads; the worker's
# munmap reaches home. The break cannot move and mremap fails (malloc and realloc do
# without them).
one_worker_away newmem /tmp/go18 1 newmem
out=$(wait_job 0 newmem "$JOB_SECS")
t_match "node0: memory the worker maps on node 1 (mmap, malloc of 1 MiB and of 4000 B) reads back at home" \
    '^newmem worker_map=ok worker_big=ok worker_small=ok ' "$out"
t_match "node0: ... a store at home reads back on node 1, and so does memory mapped at home" \
    ' written=ok home_map=ok ' "$out"
t_match "node0: ... the stack of a thread started on node 1 reads back at home" ' stack=ok ' "$out"
t_match "node0: ... memory unmapped on node 1 is gone at home" ' unmapped=ok ' "$out"
t_match "node0: ... sbrk and mremap fail with ENOMEM" \
    ' sbrk=Cannot allocate memory mremap=Cannot allocate memory$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- libraries loaded after the threads spread are one address space too -------------------------
# The worker on node 1 loads a library with dlopen: its text and read-only data are
# mapped from the same file on every node, its data and bss are shared memory. The main
# thread at home calls into it and shares its variables; the worker unloads it (gone at
# home too), then ends with pthread_exit, whose first call loads libgcc_s on node 1.
one_worker_away dlopen /tmp/go25 1 dlopen "$SSI_ROOT/target/libssi-dl.so"
out=$(wait_job 0 dlopen "$JOB_SECS")
t_match "node0: a library dlopen'd on node 1 has its data and read-only data there" \
    '^dlopen loaded=ok data=ok rodata=ok ' "$out"
t_match "node0: ... the main thread at home calls its code, sees the worker's stores and the worker sees its own" \
    ' home_call=ok home_seen=ok away_seen=ok ' "$out"
t_match "node0: ... dlclose on node 1 unmaps it at home" ' unmapped=ok ' "$out"
t_match "node0: ... pthread_exit on node 1 (loading libgcc_s there) returns its value to pthread_join" \
    ' exit=77$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"
# dlopen_unlike N GOFILE NODE0-CMD WHAT LOG: node 1 has the library /tmp/libssi-dl-N.so,
# node 0 gets it from NODE0-CMD (run with the path as $p); a worker on node 1 dlopens
# it: dlopen fails there, cleanly (the process exits 1), and node 0's log says LOG of
# the file. WHAT names node 0's file in the case names.
dlopen_unlike() {
    local n=$1 go=$2 prep=$3 what=$4 log=$5 lib=/tmp/libssi-dl-$1.so out
    cluster_run 1 "cp $SSI_ROOT/target/libssi-dl.so $lib" >/dev/null
    cluster_run 0 "p=$lib; $prep" >/dev/null
    one_worker_away "dlopen$n" "$go" 1 dlopen "$lib"
    out=$(wait_job 0 "dlopen$n" "$JOB_SECS")
    t_match "node0: dlopen on node 1 of a library that $what fails" "^dlopen failed: .*$lib" "$out"
    t_match "node0: ... and the process exits with its own status" '^rc=1$' "$out"
    out=$(cluster_run 0 "dmesg | grep '$lib'")
    t_match "node0: ... its kernel log names the file and why" "$lib$log" "$out"
}
# A library that only node 1 has cannot be mapped alike.
dlopen_unlike 1 /tmp/go26 'rm -f $p' "node 0 does not have" \
    ', which its thread mapped, does not exist here'
# One that node 0 has under the same name, but another file: not mapped either.
dlopen_unlike 2 /tmp/go27 'head -c 5000 /dev/zero >$p' "differs on node 0" \
    ' here is not the file its thread mapped'
# A FIFO under that name on node 0: not opened (that would wait for a writer for ever).
dlopen_unlike 3 /tmp/go29 'mkfifo $p' "is a FIFO on node 0" \
    ' here is not the file its thread mapped'

# --- malloc arenas made before the threads spread grow in shared memory -------------------------
# glibc reserves a thread's malloc arena PROT_NONE and opens it with mprotect as it grows.
# Both workers make theirs before the process becomes distributed; worker 0 then runs on
# node 2, and each grows its arena by 400 blocks, which a thread on the other node reads.
pid=$(start_threads 0 arenas /tmp/go20 arenas)
t_ok "node0: ssi-threads arenas starts 2 workers, each with its malloc arena (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 arenas 2)"
out=$(cluster_run 0 "$SSICTL migrate ${tids[0]} 2 2>&1")
t_ok "node0: worker 0 (tid ${tids[0]}) moves to node 2" $? "$out"
cluster_run 0 "touch /tmp/go20" >/dev/null
out=$(wait_job 0 arenas "$JOB_SECS")
t_match "node0: blocks malloc'd on node 2 from the arena made before the move read back at home" \
    '^arenas remote=ok home=ok ' "$out"
t_match "node0: ... blocks malloc'd at home read back on node 2, and so does a store at home" \
    ' seen_away=ok written=ok ' "$out"
t_match "node0: ... every block came from its worker's arena made before the move" \
    ' same_arena=yes$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- a thread moves while its process's memory map changes ----------------------------------------
# Worker 1 opens the pages of a reservation with mprotect and maps memory, a round trip
# each, while worker 0 moves to node 1: the home holds the changes back until node 1
# holds worker 0's address space, so none is lost; worker 0 then reads them all there.
pid=$(start_threads 0 churn /tmp/go21 churn)
t_ok "node0: ssi-threads churn starts 2 workers (pid $pid)" $? "$pid"
read -r -a tids <<<"$(job_tids 0 churn 2)"
cluster_run 0 "touch /tmp/go21; sleep 1" >/dev/null
out=$(cluster_run 0 "$SSICTL migrate ${tids[0]} 1 2>&1")
t_ok "node0: worker 0 (tid ${tids[0]}) moves to node 1 while worker 1 changes the memory map" $? "$out"
cluster_run 0 "sleep 2; touch /tmp/go21.half" >/dev/null
out=$(wait_job 0 churn "$JOB_SECS")
t_match "node0: every page opened and mapped at home before, during and after the move reads back on node 1" \
    '^churn opened=[0-9]+ maps=[0-9]+ pages=ok maps=ok$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# --- private memory leaves nothing behind ---------------------------------------------------------
# Each run distributes a process with 120 private writable mappings that do not touch (a
# region each); the regions have no bookkeeping key, so run after run fits (the store
# holds 256 keys), and when a process ends every node drops its regions (hundreds of
# removals at once).
for run in 1 2 3; do
    one_worker_away "maps$run" "/tmp/go17.$run" $((run % 2 + 1)) mappings 120
    out=$(wait_job 0 "maps$run" "$JOB_SECS")
    t_match "node0: run $run: the worker on node $((run % 2 + 1)) read all 120 mappings and wrote each" \
        '^mappings n=120 sum=7260 written=120$' "$out"
    t_match "node0: ... exit 0" '^rc=0$' "$out"
done
for g in 0 1 2; do
    left=$(cluster_run $g "for i in \$(seq 50); do n=\$(grep -c '^\.p' /proc/ssi/regions); [ \$n = 0 ] && break; sleep 0.2; done; echo \$n")
    t_eq "node$g: no private-memory region is left once the processes ended" 0 "$left"
done

# --- signals: pthread_kill to a remote thread, SIGTERM to the home pid, rmmod refused ---------
one_worker_away signal /tmp/go9 1 signal
out=$(wait_job 0 signal 120)
t_match "node0: pthread_kill(SIGUSR1) to the thread on node 1 runs its handler in that thread" \
    '^signal handled_by=worker$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

# A moved thread's ids are those it has at home, and its signals reach their threads.
one_worker_away ids /tmp/go14 1 ids
out=$(wait_job 0 ids 120)
t_match "node0: on node 1 getpid(), getppid() and gettid() answer the thread's ids at home" \
    "^ids pid=$pid ppid=[0-9]+ tid=$tid same\$" "$out"
t_match "node0: pthread_kill() to the main thread, kill() of the pid and raise() from node 1 run their handlers in the right threads" \
    '^signals pthread_kill=ok kill=ok raise=ok$' "$out"
t_match "node0: ... exit 0" '^rc=0$' "$out"

one_worker_away sleepy /tmp/go10 2 sleepy
out=$(cluster_run 0 "rmmod ssi_migrate 2>&1")
t_err "node0: rmmod ssi_migrate is refused while a distributed process lives here" $? "$out"
out=$(cluster_run 2 "rmmod ssi_migrate 2>&1")
t_err "node2: ... and while one of its threads runs there" $? "$out"
cluster_run 0 "kill -TERM $pid" >/dev/null
out=$(wait_job 0 sleepy 60)
t_match "node0: kill -TERM to the home pid ends the whole process (the parent sees 143)" \
    '^rc=143$' "$out"
out=$(cluster_run 2 "for i in \$(seq 50); do pgrep -x ssi-threads >/dev/null || break; sleep 0.2; done; pgrep -c -x ssi-threads")
t_eq "node2: ... and its thread there" "0" "$out"

# --- a node that runs a thread dies ------------------------------------------------------------
one_worker_away sleepy /tmp/go11 2 sleepy
sleep 1
t0=$(date +%s%N)
cluster_kill 2
out=$(wait_job 0 sleepy 60)
ms=$((($(date +%s%N) - t0) / 1000000))
t_match "node0: node 2 killed: the process ends with SIGKILL (the parent sees 137)" '^rc=137$' "$out"
echo "    the process ended ${ms} ms after node 2 was killed (failure detector: ${SSI_TCG_DOWN_AFTER_MS} ms)"
t_ok "node0: ... within the failure detector's delay plus 3 s (${ms} ms)" \
    "$([ "$ms" -le $((SSI_TCG_DOWN_AFTER_MS + 3000)) ]; echo $?)"
# Whichever comes first: the thread's stand-in sees node 2 down, or a thread at home
# faults on memory only node 2 held.
out=$(cluster_run 0 "dmesg | grep -E 'went down; killing its process|was lost with node'")
t_match "node0: ... and its kernel log names the lost node" \
    "thread $tid: node 2 that ran it went down|pid $pid: its memory .* was lost with node 2" "$out"

sleep 2
for g in 0 1; do
    out=$(cluster_run $g "grep -c ssi-threads /proc/ssi/ps")
    t_eq "node$g: no ssi-threads process or thread is left after the runs" "0" "$out"
done

# The survivors: each ran a thread of a distributed process.
for g in 0 1; do
    out=$(cluster_run $g "pkill -f 'ssictl daemon'; sleep 2; rmmod ssi_migrate && rmmod ssi_rdma && rmmod ssi_core && echo unloaded" 60)
    t_match "node$g: ssi_migrate, ssi_rdma and ssi_core unload afterwards" 'unloaded' "$out"
done

out=$(cluster_check_kernel_logs 2>&1)
t_ok "no BUG/WARNING/Oops in any guest log" $? "$out"
