# shellcheck shell=bash
# The ssi cluster harness: boots N QEMU guests of the guest kernel and runs commands on
# them. Source it (after lib.sh) from a test or the demo (tests/lib/suite.sh does, for
# the test suites). Guest G is node G: the node id of a guest is its number.
#
#   cluster_start N              boot nodes 0..N-1 (TCG), wait until each is up
#   cluster_bring_up NODE [OPTION...]
#                                load ssi on NODE: insmod ssi_core (node_id NODE), then
#                                per option: rdma (an rxe device on eth0, then
#                                ssi_rdma; or either alone: rxe, ssi_rdma), migrate
#                                (ssi_migrate), gpio (ssi_gpio_bus peered with
#                                the other node of a pair), cable (the same on the lines
#                                of the guest's virtio GPIO chip, with SSI_GPIO_CABLE=1),
#                                peers (`ssictl node add` of every other node),
#                                down_after_ms=MS (ssi_core's failure timeout). Prints
#                                the output and returns the exit code
#   cluster_run NODE CMD         run a shell command on NODE; prints its output and
#                                returns its exit code (timeout: $SSI_CMD_TIMEOUT s)
#   cluster_spawn NODE CMD       start CMD on NODE in the background; prints a job id
#   cluster_wait NODE JOB        wait for a spawned job: prints its output, returns its rc
#   cluster_wait_line NODE FILE REGEX SECS
#                                wait on NODE until a line of FILE matches REGEX,
#                                polling with shell builtins (no exec per poll)
#   cluster_kill NODE            pull the plug: kill the node's QEMU (no shutdown)
#   cluster_pause NODE SECONDS   stop the node's QEMU for SECONDS, as an overloaded host
#                                that deschedules a virtual machine does
#   cluster_restart NODE         boot a killed node again (fresh guest, same address)
#   cluster_console NODE         the node's serial console log (kernel messages included)
#   cluster_perftest TIMEOUT TOOL ARG...
#                                a perftest latency run over rxe0, server on node 1,
#                                client on node 0; prints the client's output
#   cluster_check_kernel_logs    fails if any console or dmesg shows BUG:/WARNING:/Oops/
#                                Call Trace (prints the offending lines)
#   cable_cmd CMD                with SSI_GPIO_CABLE=1: a command to the cable's control
#                                socket (stats, flip LINE N [a|b], hold LINE 0|1, ...)
#   cable_stat KEY               with SSI_GPIO_CABLE=1: one key=value of the cable's stats
#   cluster_stop                 power the guests off; kill what does not stop. Installed
#                                as an EXIT trap by cluster_start: no orphan QEMU. After
#                                a failed assertion (assert.sh) it first prints each
#                                node's last $SSI_FAIL_LOG_LINES ssi/rxe kernel messages.
#
# Guests share the host's root read-only over 9p (so host binaries, perftest and the
# repository's build outputs run unchanged) and a writable per-run directory that
# carries commands and results (see guest-init.sh). The root is mounted cache=loose:
# nothing on it changes while guests run (the build comes first), and without the
# guest's page cache every exec under TCG read its binary and libraries over 9p again,
# which made a command's round trip 1.5 s instead of about 0.4 s. Their NICs are linked by QEMU
# `-netdev dgram` sockets on 127.0.0.1 only: a direct pair for 2 nodes, through
# tests/lib/nethub.py (a learning switch on loopback UDP) for more. Node N has address
# 10.99.0.(10+N)/24 on eth0, reachable only from the other guests.
#
# SSI_GPIO_CABLE=1 (2 nodes): the guests also get a virtio GPIO controller each
# (vhost-user-gpio-pci, QEMU 10 from scripts/setup.sh qemu-gpio; guest RAM is a shared
# memfd, as vhost-user needs) whose ten lines are wired to the other guest's by
# target/release/ssi-gpio-cable (userspace-tools/gpio-cable): the emulated ribbon
# cable of ssi_gpio_bus, with its control socket at $cluster_dir/cable.ctl.

. "$SSI_ROOT/tests/lib/paths.sh"

SSI_CMD_TIMEOUT=${SSI_CMD_TIMEOUT:-180}
SSI_GUEST_MEM=${SSI_GUEST_MEM:-1024}
SSI_FAIL_LOG_LINES=${SSI_FAIL_LOG_LINES:-25}
# ssi_core's down_after_ms for long, busy runs (regions, migration, demo, benchmark).
# The default (1000) keeps the 2 s detection promise, but three TCG guests on a busy
# 2-core host are sometimes descheduled for more than a second, and a node declared
# down loses its pages and the regions it homes. The messaging suite checks the
# default's promise; the others pass this.
SSI_TCG_DOWN_AFTER_MS=${SSI_TCG_DOWN_AFTER_MS:-4000}
cluster_dir=
cluster_pids=()
cluster_hub_pid=
cluster_nodes=0
cluster_base=0
cluster_kernel=
cluster_cable_pid=
SSI_GPIO_CABLE=${SSI_GPIO_CABLE:-0}

cluster_ip() { printf '10.99.0.%d' $((10 + $1)); }

cluster_start() {
    local n=$1 kdir kernel base i
    kdir=${SSI_GUEST_KDIR:-$(ssi_guest_kdir)}
    kernel=$kdir/arch/x86/boot/bzImage
    [ -f "$kernel" ] || ssi_die "no guest kernel at $kernel: run make setup"
    command -v qemu-system-x86_64 >/dev/null || ssi_die "qemu-system-x86_64 missing: run make setup"
    cluster_dir=$(mktemp -d /tmp/ssi-cluster.XXXXXX)
    chmod 755 "$cluster_dir"
    # cluster_wait's pause: a read with a timeout on a FIFO nobody writes, a builtin,
    # rather than a fork and exec of sleep twenty times a second on a busy host.
    mkfifo "$cluster_dir/.tick"
    cluster_nodes=$n
    trap cluster_stop EXIT
    trap 'exit 130' INT TERM

    # Pick a free-looking base port; each node uses base+1+i, the hub base.
    cluster_base=$((20000 + (RANDOM % 2000) * 10))
    cluster_kernel=$kernel
    if [ "$SSI_GPIO_CABLE" = 1 ]; then
        [ "$n" -eq 2 ] || ssi_die "the GPIO cable joins exactly 2 nodes"
        [ -x "$CABLE" ] || ssi_die "no $CABLE: run scripts/build.sh ssictl"
        ssi_qemu_gpio_root >/dev/null || ssi_die "no QEMU with vhost-user-gpio-pci: run make setup"
        "$CABLE" --socket-a "$cluster_dir/gpio0.sock" --socket-b "$cluster_dir/gpio1.sock" \
            --control "$cluster_dir/cable.ctl" >"$cluster_dir/cable.log" 2>&1 &
        cluster_cable_pid=$!
        for ((i = 0; i < 50; i++)); do
            [ -S "$cluster_dir/gpio1.sock" ] && [ -S "$cluster_dir/cable.ctl" ] && break
            sleep 0.1
        done
    fi
    if [ "$n" -gt 2 ]; then
        python3 "$SSI_ROOT/tests/lib/nethub.py" "$cluster_base" "$n" >"$cluster_dir/hub.log" 2>&1 &
        cluster_hub_pid=$!
    fi
    for ((i = 0; i < n; i++)); do
        cluster_boot "$i"
    done
    for ((i = 0; i < n; i++)); do
        cluster_wait_ready "$i"
    done
    ssi_info "cluster of $n up in $cluster_dir"
}

# Starts node $1's QEMU (its command directory emptied first).
cluster_boot() {
    local i=$1 remote base=$cluster_base n=$cluster_nodes
    if [ "$n" -eq 1 ]; then
        remote=$((base + 9))
    elif [ "$n" -eq 2 ]; then
        remote=$((base + 1 + (1 - i)))
    else
        remote=$base
    fi
    rm -rf "$cluster_dir/node$i"
    mkdir -p "$cluster_dir/node$i"
    # A restarted node appends to its console log.
    # SSI_GUEST_CPU (e.g. max: AVX under TCG) for tests that need more than qemu64.
    # tsc=reliable: a guest that the host deschedules (or cluster_pause stops) would
    # otherwise find the TSC "unstable" against the HPET watchdog and switch to the
    # HPET, whose every read is an emulated MMIO access: the guest then runs at half
    # speed for the rest of the run. check_pages=1: the page allocator checks every
    # page it frees and hands out (a page freed while locked or mapped is a BUG).
    local qemu=(qemu-system-x86_64) cable=() r
    if [ "$SSI_GPIO_CABLE" = 1 ]; then
        # Its own firmware and module directories (else it loads QEMU 7.2's modules);
        # env execs QEMU, so $! is QEMU's pid (cluster_kill, cluster_pause).
        r=$(ssi_qemu_gpio_root)
        qemu=(env "QEMU_MODULE_DIR=$r/usr/lib/x86_64-linux-gnu/qemu" "$r/usr/bin/qemu-system-x86_64"
            -L "$r/usr/share/qemu")
        cable=(-object "memory-backend-memfd,id=mem,size=${SSI_GUEST_MEM}M,share=on"
            -machine memory-backend=mem
            -chardev "socket,path=$cluster_dir/gpio$i.sock,id=gpio0"
            -device vhost-user-gpio-pci,chardev=gpio0,id=gpio0)
    fi
    "${qemu[@]}" -accel tcg ${SSI_GUEST_CPU:+-cpu "$SSI_GUEST_CPU"} -m "$SSI_GUEST_MEM" -smp 1 -nographic -no-reboot \
        "${cable[@]}" \
        -kernel "$cluster_kernel" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs local,path="$cluster_dir",mount_tag=ssirun,security_model=none,multidevs=remap \
        -netdev "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$((base + 1 + i)),remote.type=inet,remote.host=127.0.0.1,remote.port=$remote" \
        -device "virtio-net-pci,netdev=n0,mac=52:54:00:55:00:$(printf %02x "$i")" \
        -append "console=ttyS0 root=hostroot rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose ro init=$SSI_ROOT/tests/lib/guest-init.sh panic=-1 oops=panic check_pages=1 tsc=reliable ssi.node=$i ssi.ip=$(cluster_ip "$i")/24" \
        </dev/null >>"$cluster_dir/node$i.console" 2>&1 &
    cluster_pids[i]=$!
}

cluster_wait_ready() {
    local i=$1 deadline=$((SECONDS + 120))
    while [ ! -e "$cluster_dir/node$i/ready" ]; do
        if ! kill -0 "${cluster_pids[i]}" 2>/dev/null; then
            tail -n 30 "$cluster_dir/node$i.console" >&2
            ssi_die "node $i exited while booting (console: $cluster_dir/node$i.console)"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -n 30 "$cluster_dir/node$i.console" >&2
            ssi_die "node $i not up after 120 s (console: $cluster_dir/node$i.console)"
        fi
        sleep 0.2
    done
}

cluster_kill() {
    kill -9 "${cluster_pids[$1]}" 2>/dev/null || true
    wait "${cluster_pids[$1]}" 2>/dev/null || true
    printf '\n=== ssi-cluster: node %s killed ===\n' "$1" >>"$cluster_dir/node$1.console"
}

cluster_pause() {
    kill -STOP "${cluster_pids[$1]}"
    sleep "$2"
    kill -CONT "${cluster_pids[$1]}"
    printf '\n=== ssi-cluster: node %s paused for %s s ===\n' "$1" "$2" >>"$cluster_dir/node$1.console"
}

cluster_restart() {
    cluster_boot "$1"
    cluster_wait_ready "$1"
}

cluster_spawn() {
    local node=$1 cmd=$2 id
    # Usually called in $(...), a subshell: the id must not depend on shell state.
    id=j$(date +%s%N)$RANDOM
    printf '%s\n' "$cmd" >"$cluster_dir/node$node/cmd/.$id.tmp"
    mv "$cluster_dir/node$node/cmd/.$id.tmp" "$cluster_dir/node$node/cmd/$id.sh"
    printf '%s\n' "$id"
}

cluster_wait() {
    local node=$1 id=$2 timeout=${3:-$SSI_CMD_TIMEOUT} out=$cluster_dir/node$1/out
    local deadline=$((SECONDS + timeout)) rc
    # The guest writes the exit code with one write ("N\n"): read succeeds only on a
    # whole line.
    while ! { IFS= read -r rc <"$out/$id.rc"; } 2>/dev/null; do
        if ! kill -0 "${cluster_pids[node]}" 2>/dev/null; then
            printf 'ssi: node %s is gone (console: %s)\n' "$node" "$cluster_dir/node$node.console" >&2
            return 125
        fi
        if [ $SECONDS -ge $deadline ]; then
            printf 'ssi: command %s on node %s timed out after %s s\n' "$id" "$node" "$timeout" >&2
            cat "$out/$id.out" 2>/dev/null
            return 124
        fi
        # A pause on a FIFO nobody writes; its timeout is a failure status, which must
        # not end a caller that runs with `set -e` (the bench scripts).
        read -r -t 0.05 _ <>"$cluster_dir/.tick" || :
    done
    cat "$out/$id.out"
    # A finished command leaves the command directory, which the guest scans five times
    # a second: it stays as small as the number of running commands.
    rm -f "$cluster_dir/node$node/cmd/$id.sh"
    return "$rc"
}

cluster_run() {
    local node=$1 id
    id=$(cluster_spawn "$node" "$2")
    cluster_wait "$node" "$id" "${3:-$SSI_CMD_TIMEOUT}"
}

# perftest converts cycles to microseconds with a clock rate it samples at start; under
# TCG the samples sometimes correlate too poorly (it prints "Correlation coefficient")
# and every figure comes out as "inf". The run itself was fine, so it is repeated, at
# most 3 times, for that reason only.
cluster_perftest() { # TIMEOUT TOOL ARG...
    local timeout=$1 tool=$2 srv out rc try
    shift 2
    for try in 1 2 3; do
        srv=$(cluster_spawn 1 "timeout $timeout $tool -d rxe0 $*")
        # The client starts once the server listens on perftest's TCP port (18515).
        cluster_run 1 "for i in \$(seq 150); do ss -Hltn 'sport = :18515' | grep -q . && exit 0; sleep 0.2; done; exit 1" >/dev/null || {
            printf 'ssi: %s server did not start on node 1\n' "$tool"
            return 1
        }
        out=$(cluster_run 0 "timeout $timeout $tool -d rxe0 $* $(cluster_ip 1)" $((timeout + 60)))
        rc=$?
        cluster_wait 1 "$srv" 60 >/dev/null
        grep -q 'Correlation coefficient' <<<"$out" || break
        printf 'ssi: %s could not calibrate its clock (try %s of 3)\n' "$tool" "$try" >&2
    done
    printf '%s\n' "$out"
    return $rc
}

cluster_console() {
    cat "$cluster_dir/node$1.console"
}

# Lines that mean the kernel is unhappy. The guest kernel runs atomic-sleep, list,
# KFENCE, page-state (check_pages=1) and hung-task checks (scripts/guest-x86_64.config;
# lockdep with SSI_LOCKDEP=1):
# their reports carry "WARNING:", "BUG:" or "INFO: task ... blocked" and a "Call Trace".
cluster_bad_kernel_lines() {
    grep -E 'BUG:|WARNING:|Oops|Call Trace|Kernel panic|general protection fault|UBSAN:|INFO: task .* blocked|possible (circular|recursive) locking'
}

cluster_check_kernel_logs() {
    local i bad=0 lines
    for ((i = 0; i < cluster_nodes; i++)); do
        lines=$({
            cluster_console "$i"
            kill -0 "${cluster_pids[i]}" 2>/dev/null && cluster_run "$i" dmesg 30
        } | cluster_bad_kernel_lines)
        if [ -n "$lines" ]; then
            printf 'node %d kernel log:\n%s\n' "$i" "$lines" >&2
            bad=1
        fi
    done
    return $bad
}

cluster_stop() {
    # Runs as an EXIT trap, possibly under `set -e`: nothing here may fail.
    local i deadline
    [ -n "$cluster_dir" ] || return 0
    # A suite with failures shows each node's latest ssi kernel messages: CI keeps only
    # the output, not the consoles.
    if [ "${t_failures:-0}" -gt 0 ]; then
        for ((i = 0; i < cluster_nodes; i++)); do
            printf '    node%d kernel messages (last %d from ssi, rxe):\n' "$i" "$SSI_FAIL_LOG_LINES"
            grep -aE 'ssi|rxe|infiniband' "$cluster_dir/node$i.console" 2>/dev/null |
                tail -n "$SSI_FAIL_LOG_LINES" | sed 's/^/         | /' || true
        done
    fi
    for ((i = 0; i < cluster_nodes; i++)); do
        : >"$cluster_dir/node$i/halt" 2>/dev/null || true
    done
    deadline=$((SECONDS + 15))
    for ((i = 0; i < cluster_nodes; i++)); do
        while kill -0 "${cluster_pids[i]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.2
        done
        kill -9 "${cluster_pids[i]}" 2>/dev/null || true
        wait "${cluster_pids[i]}" 2>/dev/null || true
    done
    if [ -n "$cluster_hub_pid" ]; then
        kill "$cluster_hub_pid" 2>/dev/null || true
        wait "$cluster_hub_pid" 2>/dev/null || true
    fi
    if [ -n "$cluster_cable_pid" ]; then
        kill "$cluster_cable_pid" 2>/dev/null || true
        wait "$cluster_cable_pid" 2>/dev/null || true
    fi
    # Keep the logs of the last run for inspection.
    rm -rf /tmp/ssi-cluster-last || true
    mv "$cluster_dir" /tmp/ssi-cluster-last 2>/dev/null || true
    cluster_dir=
    cluster_pids=()
    cluster_hub_pid=
    cluster_cable_pid=
    cluster_nodes=0
    return 0
}

cable_cmd() {
    python3 - "$cluster_dir/cable.ctl" "$*" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.decode().strip())
EOF
}

cable_stat() {
    cable_cmd stats | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# A guest shell command that prints the number of the guest's virtio GPIO chip
# (/dev/gpiochipN).
SSI_VIRTIO_GPIO_CHIP='for c in /sys/bus/gpio/devices/gpiochip*; do readlink -f $c | grep -q virtio && { n=${c##*gpiochip}; break; }; done; echo ${n:?no virtio gpio chip}'

cluster_bring_up() {
    local g=$1 opt core_args="node_id=$1" rxe=0 rdma=0 migrate=0 gpio=0 cable=0 peers=0 cmd m
    shift
    for opt in "$@"; do
        case $opt in
        rdma) rxe=1 rdma=1 ;;
        rxe) rxe=1 ;;
        ssi_rdma) rdma=1 ;;
        migrate) migrate=1 ;;
        gpio) gpio=1 ;;
        cable) gpio=1 cable=1 ;;
        peers) peers=1 ;;
        down_after_ms=*) core_args="$core_args $opt" ;;
        *) ssi_die "cluster_bring_up: unknown option '$opt'" ;;
        esac
    done
    cmd="insmod $KO_CORE $core_args"
    if [ $rxe = 1 ]; then
        cmd="$cmd && rdma link add rxe0 type rxe netdev eth0"
    fi
    if [ $rdma = 1 ]; then
        cmd="$cmd && insmod $KO_RDMA"
    fi
    if [ $migrate = 1 ]; then
        cmd="$cmd && insmod $KO_MIGRATE"
    fi
    if [ $cable = 1 ]; then
        cmd="chip=\$($SSI_VIRTIO_GPIO_CHIP) && $cmd && insmod $KO_GPIO gpio_chip=\$chip peer_node=$((1 - g))"
    elif [ $gpio = 1 ]; then
        cmd="$cmd && insmod $KO_GPIO peer_node=$((1 - g))"
    fi
    if [ $peers = 1 ]; then
        for ((m = 0; m < cluster_nodes; m++)); do
            [ "$m" = "$g" ] || cmd="$cmd && $SSICTL node add $m $(cluster_ip "$m")"
        done
    fi
    cluster_run "$g" "$cmd"
}

# --- jobs in guests (the migration and thread suites) -----------------------------------

# Starts `ssictl daemon` on guest $1 (it takes migrated processes and threads).
start_daemon() {
    cluster_spawn "$1" "exec $SSICTL daemon >>/tmp/daemon.log 2>&1" >/dev/null
}

# Starts "$2" in the background on guest $1 with output in /tmp/$3.out and its exit code
# appended as "rc=N" when it ends (the shell there is its parent); waits until it printed
# "ready PID" (or $4 seconds), prints the PID.
start_job() {
    local g=$1 cmd=$2 name=$3 secs=${4:-30}
    cluster_run "$g" "rm -f /tmp/$name.out; ( $cmd >/tmp/$name.out 2>&1; echo rc=\$? >>/tmp/$name.out ) >/dev/null 2>&1 </dev/null &" >/dev/null
    cluster_run "$g" "for i in \$(seq $((secs * 10))); do p=\$(sed -n 's/^ready \([0-9]*\).*/\1/p' /tmp/$name.out 2>/dev/null); [ -n \"\$p\" ] && { echo \$p; exit 0; }; sleep 0.1; done; exit 1"
}

# Waits until /tmp/$2.out on guest $1 has an rc= line (at most $3 s); prints the output.
wait_job() {
    cluster_wait_line "$1" "/tmp/$2.out" '^rc=' "$3"
    cluster_run "$1" "cat /tmp/$2.out"
}

# cluster_wait_line NODE FILE REGEX SECS: waits on NODE until a line of FILE matches
# the bash regular expression REGEX (no single quote in it), at most SECS s; returns 0
# if one did. It polls five times a second with shell builtins only: under TCG every
# exec costs the guest's one vCPU about 80 ms, which a loop of grep and sleep would
# take from the programs under test.
cluster_wait_line() {
    local node=$1 file=$2 re=$3 secs=$4
    cluster_run "$node" "bash <<'SSI_EOF'
re='$re'
for ((i = 0; i < $((secs * 5)); i++)); do
    while IFS= read -r l; do [[ \$l =~ \$re ]] && exit 0; done 2>/dev/null <'$file'
    read -r -t 0.2 _ <>/tmp/.tick
done
exit 1
SSI_EOF" $((secs + 30))
}
