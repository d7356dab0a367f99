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
# test is about the boot path.  Prints TAP.
echo "1..7"
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
