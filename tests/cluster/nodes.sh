#!/usr/bin/env bash
# The node table: `ssictl node add|remove`, `ssictl nodes`, /proc/ssi/nodes, and the
# refusals of bad input and unprivileged callers. (Peers stay "configured" until the
# messaging layer connects them.)
. "$(dirname "$0")/../lib/suite.sh" nodes

cluster_start 2
for n in 0 1; do
    out=$(cluster_bring_up $n)
    t_ok "node$n: insmod ssi_core" $? "$out"
done

out=$(cluster_run 0 "$SSICTL node add 1 $(cluster_ip 1) && $SSICTL nodes --json")
t_ok "node0: node add 1" $? "$out"
t_eq "node0: nodes lists self and node 1" \
    '[[0, "self", null, true], [1, "configured", "10.99.0.11:7471", false]]' \
    "$(json_get "$out" '[[n["id"], n["state"], n["address"], n["leader"]] for n in d["nodes"]]')"
out=$(cluster_run 1 "$SSICTL node add 0 $(cluster_ip 0):9000 && $SSICTL nodes --json")
t_eq "node1: node 0 added with an explicit port; node 1 leads alone" '1 [0, "10.99.0.10:9000"]' \
    "$(json_get "$out" '"%d %s" % (d["leader"], json.dumps([d["nodes"][1]["id"], d["nodes"][1]["address"]]))')"
out=$(cluster_run 0 "cat /proc/ssi/nodes")
t_match "node0: /proc/ssi/nodes lists node 1" "^1 +10\.99\.0\.11:7471 +configured +1 +0 +0 +0 +0 +0 +0 +0$" "$out"
t_match "node0: /proc/ssi/nodes names the leader" "^leader: 0\$" "$out"

# --- bad input ------------------------------------------------------------------------------
out=$(cluster_run 0 "$SSICTL node add 1 $(cluster_ip 1) 2>&1")
t_err "node0: duplicate node add refused" $? "$out"
t_match "node0: duplicate explained" 'File exists.*already configured' "$out"
for bad in "0 10.99.0.10" "64 10.99.0.99" "2 0.0.0.0" "2 224.0.0.1" "2 255.255.255.255"; do
    out=$(cluster_run 0 "$SSICTL node add $bad 2>&1")
    t_err "node0: node add $bad refused" $? "$out"
done
t_match "node0: EINVAL explained" 'Invalid argument' "$out"
out=$(cluster_run 0 "$SSICTL node add 2 not-an-address 2>&1")
t_err "node0: unparsable address refused by ssictl" $? "$out"
out=$(cluster_run 0 "$SSICTL node remove 7 2>&1")
t_match "node0: removing an unknown node gives ENOENT" 'No such file or directory' "$out"

# --- unprivileged callers: allowed to open, refused by the capability check ------------------
out=$(cluster_run 0 "chmod 0666 /dev/ssi && setpriv --reuid=65534 --regid=65534 --clear-groups $SSICTL node add 3 10.99.0.13 2>&1")
t_err "node0: node add without CAP_SYS_ADMIN refused" $? "$out"
t_match "node0: EPERM explained" 'Operation not permitted.*CAP_SYS_ADMIN' "$out"
out=$(cluster_run 0 "setpriv --reuid=65534 --regid=65534 --clear-groups $SSICTL nodes --json")
t_eq "node0: unprivileged listing allowed, unchanged" 2 "$(json_get "$out" 'len(d["nodes"])')"

# --- capacity: every other id fits --------------------------------------------------------------
out=$(cluster_run 0 "for i in \$(seq 2 63); do $SSICTL node add \$i 10.99.1.\$i || exit 1; done; $SSICTL node add 1 10.99.0.11 2>/dev/null; $SSICTL nodes --json")
t_eq "node0: 64 nodes listed (self + 63 peers)" 64 "$(json_get "$out" 'len(d["nodes"])')"
t_eq "node0: the last peer has the address given" '"10.99.1.63:7471"' "$(json_get "$out" 'json.dumps(d["nodes"][63]["address"])')"

out=$(cluster_run 0 "$SSICTL node remove 1 && $SSICTL node remove 1 2>&1")
t_err "node0: second remove of node 1 refused" $? "$out"
out=$(cluster_run 0 "$SSICTL nodes --json")
t_eq "node0: 63 nodes after removing one" 63 "$(json_get "$out" 'len(d["nodes"])')"

# --- unload with a full table -------------------------------------------------------------------
out=$(cluster_run 0 "rmmod ssi_core && insmod $KO_CORE node_id=0 && $SSICTL nodes --json")
t_eq "node0: reload starts with an empty table" 1 "$(json_get "$out" 'len(d["nodes"])')"
if bad=$(cluster_check_kernel_logs 2>&1); then
    t_pass "no BUG/WARNING/Oops/Call Trace on any node"
else
    t_fail "no BUG/WARNING/Oops/Call Trace on any node" "$bad"
fi
