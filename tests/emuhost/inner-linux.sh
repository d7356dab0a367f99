#!/bin/sh
# tests/emuhost/inner-linux.sh - runs INSIDE the emulated host (busybox sh).
#
# samepage boots two Linux guests at once (Debian kernel + the busybox
# initramfs of guest-tools/linux): l1 with 256 MiB and 2 vCPUs, l2 with
# 256 MiB and 1 vCPU.  Each guest's init prints SP-GUEST-FACTS (what its
# kernel sees) and SP-GUEST-BOOTED, then `poweroff -f`.  Checks, per guest:
# the marker, the vCPU count, the RAM (the e820 RAM the kernel reports equals
# the VM's RAM minus the 0x9fc00-0x100000 hole), and a clean power-off
# (samepage reports "exited with status 0").  The sharing engine is off: this
# test is about the boot path.  Then under samepaged, over its libvirt
# socket: a Linux guest defined from domain XML boots, suspends and
# resumes, and `samepage reboot` boots its kernel again (same id, a new VM
# process); then Debian's virsh (shipped in with run-in-emuhost.sh --virsh)
# reboots it once more, and `virsh dominfo` shows it running with the same
# id.  Prints TAP.
echo "1..14"
K=$SP_IMAGES/vmlinuz
I=$SP_IMAGES/linux-guest-initrd.gz
hole=394240   # 0x100000 - 0x9fc00, reserved in the e820 map
mem=268435456
t0=$(cut -d' ' -f1 /proc/uptime)
timeout 500 samepage run --engine=off \
    --vm "name=l1,mem=256M,vcpus=2,kernel=$K,initrd=$I,cmdline=console=ttyS0 quiet panic=-1" \
    --vm "name=l2,mem=256M,vcpus=1,kernel=$K,initrd=$I,cmdline=console=ttyS0 quiet panic=-1" \
    > /tmp/run.out 2>&1
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
grep -v '^\[status\]' /tmp/run.out | grep -v '^\[l[12]\] \[' | sed 's/^/# /'
echo "# samepage run: exit status $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s of emulated-host time"

# A timeout makes samepage stop the VMs and exit 0: that is a failure here.
if [ "$rc" = 0 ] && ! grep -q "stopping all VMs" /tmp/run.out; then
    echo "ok 1 - samepage run of two Linux guests ends by itself with status 0"
else
    echo "not ok 1 - samepage run: status $rc$(grep -q 'stopping all VMs' /tmp/run.out && echo ', stopped by the 500 s timeout')"
    grep '^\[l[12]\] \[' /tmp/run.out | tail -n 20 | sed 's/^/#   /'
fi

check_guest() { # n name vcpus
    facts=$(grep "^\[$2\] SP-GUEST-FACTS" /tmp/run.out | head -n1)
    if grep -q "^\[$2\] SP-GUEST-BOOTED" /tmp/run.out && [ -n "$facts" ]; then
        echo "ok $1 - $2 booted to its init marker"
    else
        echo "not ok $1 - $2 never printed SP-GUEST-BOOTED"
    fi
    nproc=$(echo "$facts" | sed -n 's/.* nproc=\([0-9-]*\).*/\1/p')
    ram=$(echo "$facts" | sed -n 's/.* e820_ram_bytes=\([0-9-]*\).*/\1/p')
    if [ "$nproc" = "$3" ] && [ "$ram" = "$((mem - hole))" ]; then
        echo "ok $(($1 + 1)) - $2 sees $3 vCPU(s) and 256 MiB of RAM (e820 $ram bytes)"
    else
        echo "not ok $(($1 + 1)) - $2 sees nproc=$nproc e820_ram_bytes=$ram (want $3 and $((mem - hole)))"
    fi
    if grep -q "^\[$2\] exited with status 0" /tmp/run.out; then
        echo "ok $(($1 + 2)) - $2 powered off cleanly (poweroff -f -> exit status 0)"
    else
        echo "not ok $(($1 + 2)) - $2 did not power off cleanly: $(grep "^\[$2\] \(exited\|crashed\|stopped\)" /tmp/run.out | head -n1)"
    fi
}
check_guest 2 l1 2
check_guest 5 l2 1

# --- samepaged: reboot of a Linux guest ---
S=/tmp/spd
mkdir -p $S
samepaged -d $S/state -s $S/sock --runtime-dir $S/run >$S/daemon.log 2>&1 &
SPD=$!
i=0
while [ ! -S $S/sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
C="--connect $S/sock"
# Every client call is bounded (a hang shows where it waits, not the whole
# tier's timeout): samepaged's and the VM processes' threads and the
# daemon's last log lines.
stuck() {
    echo "#   $1 did not return within 150 s; where samepaged and its VM processes wait:"
    for p in $SPD $(vm_pid); do
        for t in /proc/$p/task/*; do
            echo "#   $p/${t##*/} $(cat $t/comm 2>/dev/null) wchan=$(cat $t/wchan 2>/dev/null) $(head -c 200 $t/stack 2>/dev/null | tr '\n' ' ')"
        done
    done
    tail -n 10 $S/daemon.log | sed 's/^/#   daemon: /'
}
exec 3>&1 # the TAP stream, whatever a caller redirects
sp() {
    timeout 150 samepage "$@"
    rc=$?
    case $rc in 124 | 143) stuck "samepage $1" >&3 ;; esac
    return $rc
}
cat >$S/lx.xml <<XML
<domain type='kvm'>
  <name>lx</name>
  <memory unit='MiB'>256</memory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>$K</kernel><initrd>$I</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 sp.hold=600</cmdline></os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices><serial type='pty'><target port='0'/></serial></devices>
</domain>
XML
LOG=$S/state/console/lx.log
boots() { cat $LOG 2>/dev/null | grep -c SP-GUEST-BOOTED; }
wait_boots() { # N: up to 240 s of emulated-host time
    i=0
    while [ "$(boots)" -lt "$1" ] && [ $i -lt 480 ]; do sleep 0.5; i=$((i + 1)); done
    [ "$(boots)" -ge "$1" ]
}
lx_row() { sp list $C | awk '$2 == "lx"'; }
vm_pid() { # the VM process (the image has no pgrep; a process may end meanwhile)
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <$p/cmdline; } 2>/dev/null | grep -q "listen=$S/run/vms/[l]x.sock" && echo ${p#/proc/}
    done
}
if sp define $S/lx.xml $C >/tmp/out 2>&1 && sp start lx $C >>/tmp/out 2>&1 && wait_boots 1; then
    echo "ok 8 - samepaged: a Linux guest defined from domain XML boots"
else
    echo "not ok 8 - samepaged: the Linux guest did not boot"
    { cat /tmp/out; tail -n 5 $LOG; tail -n 5 $S/daemon.log; } | sed 's/^/#   /'
fi
sp suspend lx $C >/dev/null
st1=$(lx_row | awk '{print $3}')
sp resume lx $C >/dev/null
st2=$(lx_row | awk '{print $3}')
if [ "$st1" = paused ] && [ "$st2" = running ]; then
    echo "ok 9 - samepage suspend / resume: paused, then running"
else
    echo "not ok 9 - samepage suspend / resume: $st1, then $st2"
fi
id1=$(lx_row | awk '{print $1}'); p1=$(vm_pid)
sp reboot lx $C >/tmp/out 2>&1
rrc=$?
id2=$(lx_row | awk '{print $1}'); p2=$(vm_pid)
if [ $rrc = 0 ] && [ -n "$id1" ] && [ "$id1" = "$id2" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ]; then
    echo "ok 10 - samepage reboot: same id $id1, new VM process ($p1 -> $p2)"
else
    echo "not ok 10 - samepage reboot: status $rrc, id $id1 -> $id2, VM process $p1 -> $p2"
    sed 's/^/#   /' /tmp/out
fi
t0=$(cut -d' ' -f1 /proc/uptime)
if wait_boots 2; then
    echo "ok 11 - the rebooted guest boots its kernel again ($(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { print b - a }') s)"
else
    echo "not ok 11 - the rebooted guest did not boot again ($(boots) boots)"
    tail -n 5 $LOG | sed 's/^/#   /'
fi
# Debian's virsh, over the same socket
VIRSH="/usr/bin/virsh -c samepage+unix:///system?socket=$S/sock"
vsh() { # bounded as sp() is
    timeout 150 $VIRSH "$@"
    rc=$?
    case $rc in 124 | 143) stuck "virsh $1" >&3 ;; esac
    return $rc
}
if [ -x /usr/bin/virsh ]; then
    p2=$(vm_pid)
    t0=$(cut -d' ' -f1 /proc/uptime)
    vsh reboot lx >/tmp/out 2>&1
    vrc=$?
    p3=$(vm_pid)
    if [ $vrc = 0 ] && grep -q "Domain 'lx' is being rebooted" /tmp/out && [ -n "$p3" ] && [ "$p3" != "$p2" ] && wait_boots 3; then
        echo "ok 12 - virsh reboot: the Linux guest boots its kernel again in a new VM process ($p2 -> $p3, $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { print b - a }') s)"
    else
        echo "not ok 12 - virsh reboot: status $vrc, VM process $p2 -> $p3, $(boots) boots"
        { cat /tmp/out; tail -n 5 $LOG; } | sed 's/^/#   /'
    fi
    vsh dominfo lx >/tmp/out 2>&1
    if grep -q "^Id: *$id1\$" /tmp/out && grep -q "^State: *running" /tmp/out; then
        echo "ok 13 - virsh dominfo after the reboot: running, id $id1"
    else
        echo "not ok 13 - virsh dominfo after the reboot"
        sed 's/^/#   /' /tmp/out
    fi
else
    echo "not ok 12 - /usr/bin/virsh is missing in the emulated host (run-in-emuhost.sh --virsh ships it)"
    echo "not ok 13 - virsh dominfo: no virsh"
fi
sp destroy lx $C >/dev/null
kill -TERM $SPD 2>/dev/null
i=0
while kill -0 $SPD 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $SPD 2>/dev/null && { stuck "samepaged (SIGTERM)"; kill -KILL $SPD; }
wait $SPD
if samepage list $C >/dev/null 2>&1; then
    echo "not ok 14 - samepaged exits on SIGTERM"
else
    echo "ok 14 - samepaged exits on SIGTERM"
fi
