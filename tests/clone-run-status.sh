#!/bin/sh
# clone-run-status.sh - `samepage run --clone`'s live status output: a VM in
# a clone family shows its clone-shared pages, group and generation, and
# each clone group gets a "[group N]" line (text) or a clone_group object
# (--json); a VM outside any family shows none of it.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..4"
VM="--vm name=t,mem=32M,vcpus=1,payload=memload,args=rounds=0"
LONE="--vm name=lone,mem=16M,vcpus=1,payload=memload,args=rounds=0,seed=9"

timeout $((30 * SLOW)) "$SP" run -q --status 1 --timeout $((3 * SLOW)) $VM $LONE --clone t,count=2 >"$T/out" 2>&1
if grep -Eq '^\[status\] t-c2 .* \| clone-shared [1-9][0-9]* group [1-9][0-9]* gen 1$' "$T/out" &&
    grep -Eq '^\[status\] t .* \| clone-shared [1-9][0-9]* group [1-9][0-9]* gen 0$' "$T/out"; then
    ok "status: children and source show clone-shared pages, group and generation"
else
    notok "status: children and source show clone-shared pages, group and generation"
fi
if grep -q '^\[status\] lone ' "$T/out" && ! grep -q '^\[status\] lone .*clone-shared' "$T/out"; then
    ok "status: a VM outside any clone family has no clone figures"
else
    notok "status: a VM outside any clone family has no clone figures"
fi
if grep -Eq '^\[group [1-9][0-9]*\] parent 0 members 3 pages [1-9][0-9]* mappings [1-9][0-9]* shared [1-9][0-9]* saved [1-9][0-9]* \(' "$T/out"; then
    ok "status: one [group N] line with members 3 and saved pages"
else
    notok "status: one [group N] line with members 3 and saved pages"
fi

timeout $((30 * SLOW)) "$SP" run -q --json --status 1 --timeout $((3 * SLOW)) $VM --clone t,count=1 >"$T/out" 2>&1
if /usr/bin/python3 - "$T/out" <<'PY'
import json, sys
vms, groups = {}, []
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    o = json.loads(line)
    if "vm" in o:
        vms[o["vm"]] = o
    elif "clone_group" in o:
        groups.append(o["clone_group"])
c = vms["t-c1"]
assert c["clone_generation"] == 1 and c["clone_shared_pages"] > 0 and c["clone_group"] > 0, c
assert any(g["id"] == c["clone_group"] and g["members"] == 2 and g["pages_saved"] > 0
           for g in groups), groups
PY
then
    ok "status --json: clone_shared_pages/clone_group/clone_generation and clone_group objects"
else
    notok "status --json: clone_shared_pages/clone_group/clone_generation and clone_group objects"
fi
[ $fails = 0 ]
