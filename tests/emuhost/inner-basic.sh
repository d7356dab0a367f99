#!/bin/sh
# tests/emuhost/inner-basic.sh - runs INSIDE the emulated host (busybox sh).
#
# Checks what every emulated-host test relies on: the KVM modules gave a
# /dev/kvm backed by SVM, the host has two NUMA nodes, and samepage runs a
# payload VM there (`samepage run` with the hello payload, 2 vCPUs).
# Prints TAP; run-in-emuhost.sh carries it to the outer test.
echo "1..4"

if [ -c /dev/kvm ]; then
    echo "ok 1 - /dev/kvm exists after loading the kvm modules"
else
    echo "not ok 1 - /dev/kvm missing (modules: $(cat /proc/modules | cut -d' ' -f1 | tr '\n' ' '))"
fi

if grep -qw svm /proc/cpuinfo && grep -q '^kvm_amd ' /proc/modules; then
    echo "ok 2 - CPU has svm and kvm_amd is loaded"
else
    echo "not ok 2 - svm flag or kvm_amd module missing"
fi

nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
if [ "$nodes" = 2 ]; then
    echo "ok 3 - the emulated host has 2 NUMA nodes"
else
    echo "not ok 3 - expected 2 NUMA nodes, found $nodes"
fi

if ! command -v samepage >/dev/null; then
    echo "not ok 4 - samepage binary missing from the emulated-host image (build it: make; then rerun)"
    exit 1
fi
out=$(timeout 120 samepage run --vm name=a,mem=64M,vcpus=2,payload=hello 2>&1)
rc=$?
echo "$out" | sed 's/^/# samepage: /'
if [ "$rc" = 0 ] && echo "$out" | grep -q "hello from vcpu 1 of 2 on a"; then
    echo "ok 4 - samepage run boots the hello payload with 2 vCPUs under SVM KVM"
else
    echo "not ok 4 - samepage run hello: exit status $rc"
fi
