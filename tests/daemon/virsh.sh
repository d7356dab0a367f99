#!/bin/sh
# virsh.sh - samepaged with real memload VMs, driven by Debian's unmodified
# virsh over samepage+unix://: every command checked by its output.  TAP.
set -u
. "$(dirname "$0")/common.sh"
V() { virsh -c "$URI" "$@"; }
echo "1..33"
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }

vm_xml vm1 "seed=1,rate=100" >"$T/vm1.xml"
vm_xml vm2 "seed=1" >"$T/vm2.xml"
vm_xml tr1 "seed=2" 32 >"$T/tr1.xml"

V define "$T/vm1.xml" >"$T/out" 2>&1
check "define prints the domain name" grep -q "Domain 'vm1' defined" "$T/out"
V define "$T/vm2.xml" >/dev/null 2>&1
V list --all >"$T/out" 2>&1
check "list --all shows defined domains shut off" sh -c "grep -q '^ *- *vm1 *shut off' '$T/out' && grep -q '^ *- *vm2 *shut off' '$T/out'"
V start vm1 >"$T/out" 2>&1
check "start" grep -q "Domain 'vm1' started" "$T/out"
V list --all >"$T/out" 2>&1
check "list shows vm1 running with an id" grep -Eq '^ *[0-9]+ +vm1 +running' "$T/out"
sleep 2
V dominfo vm1 >"$T/out" 2>&1
check "dominfo: state, vCPUs, memory, persistence" sh -c "grep -q 'State: *running' '$T/out' && grep -q 'CPU(s): *2' '$T/out' && grep -q 'Max memory: *65536 KiB' '$T/out' && grep -q 'Persistent: *yes' '$T/out'"
cpu=$(awk '/CPU time/ {print $3}' "$T/out" | tr -d s)
check "dominfo: CPU time advances" awk -v c="$cpu" 'BEGIN { exit !(c + 0 > 0) }'
V dommemstat vm1 >"$T/out" 2>&1
rss=$(awk '$1 == "rss" {print $2}' "$T/out")
check "dommemstat: rss from samepage's accounting (KiB, > 0, <= memory)" sh -c "[ -n '$rss' ] && [ '$rss' -gt 1000 ] && [ '$rss' -le 65536 ]"
check "dommemstat: actual, usable, available, swap figures" sh -c "grep -q '^actual 65536' '$T/out' && grep -q '^usable' '$T/out' && grep -q '^available' '$T/out' && grep -q '^swap_in' '$T/out' && grep -q '^swap_out' '$T/out'"
V domstats vm1 >"$T/out" 2>&1
check "domstats: standard keys" sh -c "grep -q 'state.state=1' '$T/out' && grep -q 'vcpu.current=2' '$T/out' && grep -q 'balloon.maximum=65536' '$T/out'"
check "domstats: samepage.* keys" sh -c "grep -q 'samepage.dedup.pages_merged=' '$T/out' && grep -q 'samepage.pages_private=' '$T/out' && grep -q 'samepage.mappings=' '$T/out' && grep -q 'samepage.swap.pages=' '$T/out' && grep -q 'samepage.clone.pages_shared=' '$T/out' && grep -q 'samepage.profit_bytes=' '$T/out'"
V dumpxml vm1 >"$T/out" 2>&1
check "dumpxml: definition with id, payload metadata and device targets" sh -c "grep -q \"<domain type='samepage' id='[0-9]*'\" '$T/out' && grep -q '<name>vm1</name>' '$T/out' && grep -q 'memload' '$T/out' && grep -q \"target dev='vda'\" '$T/out' && grep -q \"target dev='vnet-vm1'\" '$T/out'"
V create "$T/tr1.xml" >"$T/out" 2>&1
check "create FILE.xml starts a transient domain" grep -q "Domain 'tr1' created" "$T/out"
V dominfo tr1 >"$T/out" 2>&1
check "the transient domain runs and is not persistent" sh -c "grep -q 'State: *running' '$T/out' && grep -q 'Persistent: *no' '$T/out'"
V destroy tr1 >/dev/null 2>&1
V list --all >"$T/out" 2>&1
check "a destroyed transient domain is gone" sh -c "! grep -q tr1 '$T/out'"
V version >"$T/out" 2>&1
check "version names the samepage hypervisor" grep -qi "hypervisor: samepage" "$T/out"
V nodeinfo >"$T/out" 2>&1
check "nodeinfo: CPU model and counts" sh -c "grep -q 'CPU model: *x86_64' '$T/out' && grep -q \"CPU(s): *$(nproc)\" '$T/out'"
V hostname >"$T/out" 2>&1
check "hostname" grep -qx "$(hostname)" "$T/out"
V nodememstats >"$T/out" 2>&1
total=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
check "nodememstats: total matches /proc/meminfo" grep -Eq "^total *: *$total KiB" "$T/out"
V nodememstats --cell 0 >"$T/out" 2>&1
check "nodememstats --cell 0" grep -Eq '^total *: *[0-9]+ KiB' "$T/out"
# freecell: the kernel's free memory of node 0 and of the host, within
# 256 MiB of what the kernel said a moment before (VMs are running).
V freecell --all >"$T/out" 2>&1
node0=$(awk '/MemFree/ {print $4}' /sys/devices/system/node/node0/meminfo)
got=$(awk '$1 == "0:" {print $2}' "$T/out")
check "freecell --all: node 0 free $got KiB, the kernel's $node0 KiB ($(tr '\n' ' ' <"$T/out"))" \
    sh -c "[ -n '$got' ] && [ \$(( $got - $node0 )) -lt 262144 ] && [ \$(( $node0 - $got )) -lt 262144 ]"
V freecell >"$T/out" 2>&1
free=$(awk '/MemFree/ {print $2}' /proc/meminfo)
got=$(sed -n 's/^Total: *\([0-9]*\) KiB/\1/p' "$T/out")
check "freecell: the host's free $got KiB, the kernel's $free KiB" \
    sh -c "[ -n '$got' ] && [ \$(( $got - $free )) -lt 262144 ] && [ \$(( $free - $got )) -lt 262144 ]"
cells=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
V freecell --cellno "$cells" >"$T/out" 2>&1
check "freecell of a cell that does not exist ($cells): an error naming it" grep -q "invalid cell number $cells" "$T/out"
V node-memory-tune >"$T/out" 2>&1
check "node-memory-tune read: the shm_* parameters" sh -c "grep -q 'Shared memory:' '$T/out' && grep -q 'shm_pages_to_scan' '$T/out' && grep -q 'shm_pages_sharing' '$T/out' && grep -q 'shm_full_scans' '$T/out' && grep -q 'shm_merge_across_nodes' '$T/out'"
V node-memory-tune --shm-pages-to-scan 777 --shm-sleep-millisecs 33 >/dev/null 2>&1
V node-memory-tune >"$T/out" 2>&1
check "node-memory-tune write is read back" sh -c "grep -q 'shm_pages_to_scan *777' '$T/out' && grep -q 'shm_sleep_millisecs *33' '$T/out'"
# The engine behind node-memory-tune: two VMs of one sharing domain share pages.
vm_xml s1 "seed=9" 64 tenant >"$T/s1.xml"
vm_xml s2 "seed=9" 64 tenant >"$T/s2.xml"
V node-memory-tune --shm-pages-to-scan 100000 --shm-sleep-millisecs 0 >/dev/null 2>&1
V create "$T/s1.xml" >/dev/null 2>&1
V create "$T/s2.xml" >/dev/null 2>&1
shm() { V node-memory-tune | awk -v k="$1" '$1 == k {print $2}'; }
i=0
while below "$(shm shm_pages_sharing)" 2000 && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
check "the engine merges the two VMs' common pages (shm_pages_sharing $(shm shm_pages_sharing))" sh -c "[ $(shm shm_pages_sharing) -ge 2000 ] && [ $(shm shm_pages_shared) -ge 1000 ]"
V domstats s1 >"$T/out" 2>&1
merged=$(sed -n 's/.*samepage.dedup.pages_merged=//p' "$T/out")
check "domstats shows the VM's merged pages ($merged)" sh -c "[ '${merged:-0}' -ge 1000 ]"
# A write through node-memory-tune changes what the engine does: a long sleep stops its scans.
V node-memory-tune --shm-pages-to-scan 1 --shm-sleep-millisecs 600000 >/dev/null 2>&1
sleep 0.5
a=$(shm shm_full_scans); sleep 2; b=$(shm shm_full_scans)
check "shm_sleep_millisecs=600000 stops full scans ($a -> $b)" sh -c "[ '$a' = '$b' ]"
V node-memory-tune --shm-pages-to-scan 100000 --shm-sleep-millisecs 0 >/dev/null 2>&1
end=$(($(date +%s) + 15 * SLOW)) c=$b
while below "$c" $((b + 1)) && [ "$(date +%s)" -lt $end ]; do sleep 0.5; c=$(shm shm_full_scans); done
check "back to 0 ms: scans resume ($b -> $c)" sh -c "[ '$c' -gt '$b' ]"
V destroy s1 >/dev/null 2>&1
V destroy s2 >/dev/null 2>&1

virsh -r -c "$ROURI" destroy vm1 >"$T/out" 2>&1
check "virsh -r: destroy refused (operation forbidden)" grep -q "read only access prevents" "$T/out"
V destroy vm1 >"$T/out" 2>&1
check "destroy" grep -q "Domain 'vm1' destroyed" "$T/out"
V undefine vm2 >"$T/out" 2>&1
check "undefine" grep -q "Domain 'vm2' has been undefined" "$T/out"
V dominfo nosuchvm >"$T/out" 2>&1
check "unknown domain: virsh's error" grep -q "failed to get domain 'nosuchvm'" "$T/out"
spd_stop
check "SIGTERM: samepaged exits 0 and removes its sockets" sh -c "[ $? = 0 ] && [ ! -e '$SOCK' ] && [ ! -e '$ROSOCK' ]"
exit 0
