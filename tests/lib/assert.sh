# shellcheck shell=bash
# Assertions for ssi's shell tests. Each assertion is one test case: it prints
# "ok NAME" or "FAIL NAME" with details, and records PASS/FAIL in $SSI_RESULTS, which
# scripts/run-tests.sh counts for the final summary. Each line carries the seconds since
# its suite started, so that a run over CI's time budget shows where the time went.

SSI_RESULTS=${SSI_RESULTS:-/dev/null}
t_suite=${t_suite:-cluster}

t_pass() {
    printf '    ok   [%4ds] %s\n' "$SECONDS" "$1"
    printf 'PASS %s::%s\n' "$t_suite" "$1" >>"$SSI_RESULTS"
}

t_failures=0

t_fail() {
    t_failures=$((t_failures + 1))
    printf '    FAIL [%4ds] %s\n' "$SECONDS" "$1"
    [ $# -gt 1 ] && printf '%s\n' "${@:2}" | sed 's/^/         | /'
    printf 'FAIL %s::%s\n' "$t_suite" "$1" >>"$SSI_RESULTS"
    return 0
}

# t_eq NAME EXPECTED ACTUAL
t_eq() {
    if [ "$2" == "$3" ]; then t_pass "$1"; else t_fail "$1" "expected: $2" "actual:   $3"; fi
}

# t_match NAME EXTENDED-REGEX TEXT
t_match() {
    if grep -qE -- "$2" <<<"$3"; then t_pass "$1"; else t_fail "$1" "no match for /$2/ in:" "$3"; fi
}

# t_nomatch NAME EXTENDED-REGEX TEXT
t_nomatch() {
    if grep -qE -- "$2" <<<"$3"; then t_fail "$1" "unexpected match for /$2/ in:" "$3"; else t_pass "$1"; fi
}

# t_ok NAME RC [OUTPUT]: passes when RC is 0.
t_ok() {
    if [ "$2" -eq 0 ]; then t_pass "$1"; else t_fail "$1" "exit code $2" "${3:-}"; fi
}

# t_err NAME RC [OUTPUT]: passes when RC is non-zero (an expected refusal).
t_err() {
    if [ "$2" -ne 0 ]; then t_pass "$1"; else t_fail "$1" "expected a failure, got exit 0" "${3:-}"; fi
}

# json_get JSON PYTHON-EXPR: evaluates EXPR over the parsed JSON `d`.
json_get() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2" 2>/dev/null || echo "<json error>"
}
