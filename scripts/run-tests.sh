#!/usr/bin/env bash
# make test: runs ssi's test suites and ends with one summary line "N passed, N failed".
#
#   scripts/run-tests.sh [all|host|kunit|cluster|pizero|soak]
#   TEST=PATTERN narrows: host -> cargo test filter, kunit -> suite glob (e.g.
#   'ssi_transport*'), cluster and soak -> test file name (e.g. foundation).
#
# soak runs the cluster suites at their long sizes (SSI_SOAK=1: the 64 MiB region and
# the 10 000-round ping-pong of regions, and three litmus runs), which
# make test keeps small enough for CI's time budget.
#
# Every test case counts once: each cargo test, each KUnit case, each assertion of a
# cluster test. A suite that cannot run at all (build error, guest that does not boot)
# counts as a failure, never as nothing.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

what=${1:-all}
filter=${TEST:-}
results=$(mktemp /tmp/ssi-results.XXXXXX)
export SSI_RESULTS=$results

record() { printf '%s %s\n' "$1" "$2" >>"$results"; }

# Every stage's wall time, printed at the end.
durations=$(mktemp /tmp/ssi-durations.XXXXXX)
trap 'rm -f "$results" "$durations"' EXIT
run_started=$(date +%s)

# timed NAME COMMAND...: runs COMMAND, then notes how long it took under NAME.
timed() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    "$@"
    rc=$?
    printf '%s %s\n' "$(($(date +%s) - t0))" "$name" >>"$durations"
    return $rc
}

run_host() {
    ssi_step "host: cargo test (rust/, userspace-tools/)"
    local log=$ssi_log_dir/test-host.log
    cargo test --no-fail-fast --manifest-path "$SSI_ROOT/Cargo.toml" --workspace ${filter:+"$filter"} 2>&1 | tee "$log" |
        grep -E '^(test |test result|error)' | grep -v '^test result' | sed 's/^/    /'
    local rc=${PIPESTATUS[0]} p f lines
    lines=$(grep -E '^test result:' "$log")
    if [ -z "$lines" ] || grep -qE '^error(\[E[0-9]+\])?: could not compile|^error\[E[0-9]+\]' "$log"; then
        record FAIL "host::build (see $log)"
        echo "    host tests did not build or run: see $log"
        return
    fi
    p=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i - 1) } END { print s + 0 }' <<<"$lines")
    f=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i - 1) } END { print s + 0 }' <<<"$lines")
    grep -E '^test .* FAILED$' "$log" | sed 's/^test \(.*\) \.\.\. FAILED$/\1/' | while read -r t; do
        record FAIL "host::$t"
    done
    local known_failed
    known_failed=$(grep -c '^FAIL host::' "$results")
    for ((i = 0; i < p; i++)); do record PASS host; done
    for ((i = known_failed; i < f; i++)); do record FAIL "host::unnamed"; done
    # A test binary that crashed prints no "test result" line: only the exit code tells.
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then record FAIL "host::exit-$rc (see $log)"; fi
    echo "    host: $p passed, $f failed (cargo exit $rc)"
}

run_kunit() {
    ssi_step "KUnit: Rust suites in UML (kunit-tests/)"
    local log=$ssi_log_dir/test-kunit.log
    "$SSI_ROOT/scripts/kunit.sh" run ${filter:+"$filter"} >"$log" 2>&1
    local rc=$?
    grep -E '\[(PASSED|FAILED|SKIPPED|CRASHED)\]|Testing complete|ERROR|error\[' "$log" | sed 's/^/    /'
    local p f
    p=$(grep -cE '\[PASSED\] ' "$log")
    f=$(grep -cE '\[(FAILED|CRASHED)\] ' "$log")
    if ! grep -q 'Testing complete' "$log"; then
        record FAIL "kunit::run (exit $rc; see $log)"
        echo "    KUnit did not complete: see $log"
        tail -n 20 "$log" | sed 's/^/    | /'
        return
    fi
    # Suite lines are also "[PASSED] suite": count only cases (indented entries).
    p=$(grep -cE '^\[[0-9:]+\] +\[PASSED\] ' "$log")
    f=$(grep -cE '^\[[0-9:]+\] +\[(FAILED|CRASHED)\] ' "$log")
    for ((i = 0; i < p; i++)); do record PASS kunit; done
    grep -E '^\[[0-9:]+\] +\[(FAILED|CRASHED)\] ' "$log" | sed -E 's/^\[[0-9:]+\] +\[[A-Z]+\] //' |
        while read -r t; do record FAIL "kunit::$t"; done
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then record FAIL "kunit::exit-$rc"; fi
    echo "    KUnit: $p passed, $f failed"
}

# Builds the modules, ssictl and the hostile test client; each is a test case. Returns non-zero if either failed.
run_build() {
    local ok=0 what
    for what in modules ssictl hostile tools; do
        ssi_step "build: $what"
        if "$SSI_ROOT/scripts/build.sh" "$what" >"$ssi_log_dir/build-$what.log" 2>&1; then
            record PASS "build::$what"
        else
            record FAIL "build::$what (see $ssi_log_dir/build-$what.log)"
            tail -n 20 "$ssi_log_dir/build-$what.log" | sed 's/^/    | /'
            ok=1
        fi
    done
    return $ok
}

run_cluster() {
    local t name before rc
    for t in "$SSI_ROOT"/tests/cluster/*.sh; do
        name=$(basename "$t" .sh)
        [ -n "$filter" ] && [ "$name" != "$filter" ] && continue
        ssi_step "cluster: $name"
        before=$(grep -c '' "$results")
        timed "cluster: $name" bash "$t"
        rc=$?
        if [ "$rc" -ne 0 ] || [ "$(grep -c '' "$results")" -eq "$before" ]; then
            record FAIL "cluster::$name::harness (exit $rc)"
            echo "    cluster test $name aborted (exit $rc); logs of the last run: /tmp/ssi-cluster-last"
        fi
    done
}

# The Pi Zero stage: cross-builds (each part a test case; the kernel is cached by make
# setup) and boots the result under qemu-system-arm -M raspi0 (tests/pizero/raspi0.sh).
run_pizero_builds() {
    local what ok=0
    for what in kernel modules ssictl overlay userspace; do
        ssi_step "Pi Zero: $what"
        if "$SSI_ROOT/scripts/pizero.sh" "$what" >"$ssi_log_dir/pizero-$what.log" 2>&1; then
            record PASS "pizero::build-$what"
            grep -E '32-bit|64-bit|built in|ELF' "$ssi_log_dir/pizero-$what.log" | sed 's/^ */    /'
        else
            record FAIL "pizero::build-$what (see $ssi_log_dir/pizero-$what.log)"
            tail -n 20 "$ssi_log_dir/pizero-$what.log" | sed 's/^/    | /'
            ok=1
        fi
    done
    if [ $ok != 0 ]; then
        record FAIL "pizero::raspi0 (skipped: the build failed)"
        return 1
    fi
}

run_pizero_board() {
    ssi_step "Pi Zero: raspi0 board (qemu-system-arm -M raspi0)"
    local before rc
    before=$(grep -c '' "$results")
    timed "pizero: raspi0 board" bash "$SSI_ROOT/tests/pizero/raspi0.sh"
    rc=$?
    if [ "$rc" -ne 0 ] || [ "$(grep -c '' "$results")" -eq "$before" ]; then
        record FAIL "pizero::raspi0::harness (exit $rc)"
    fi
}

case $what in
all)
    timed "host" run_host
    timed "kunit" run_kunit
    timed "pizero: builds" run_pizero_builds && run_pizero_board
    if timed "builds" run_build; then run_cluster; else record FAIL "cluster::skipped (build failed)"; fi
    ;;
pizero) timed "pizero: builds" run_pizero_builds && run_pizero_board ;;
host) timed "host" run_host ;;
kunit) timed "kunit" run_kunit ;;
cluster | soak)
    [ "$what" = soak ] && export SSI_SOAK=1
    if timed "builds" run_build; then run_cluster; else record FAIL "cluster::skipped (build failed)"; fi
    ;;
*) ssi_die "usage: $0 [all|host|kunit|cluster|pizero|soak]" ;;
esac

passed=$(grep -c '^PASS' "$results")
failed=$(grep -c '^FAIL' "$results")
if [ "$failed" -gt 0 ]; then
    echo
    echo "Failed:"
    grep '^FAIL' "$results" | sed 's/^FAIL /  /' | sort
fi
echo
echo "Durations (wall seconds):"
sort -rn "$durations" | while read -r secs name; do printf '  %5d  %s\n' "$secs" "$name"; done
total=$(($(date +%s) - run_started))
echo "  $(printf '%5d' "$total")  total"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
