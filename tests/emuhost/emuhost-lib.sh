# tests/emuhost/emuhost-lib.sh - what run-in-emuhost.sh and
# scripts/in-emuhost.sh share (sourced by bash; both define fail()).
#
# emuhost_images: build or refresh the images (cached: about a second when
#   up to date); sets vmlinuz and hostrd.  Reads srcdir, builddir, images.
# emuhost_machine_args MEM: sets the array qemu_machine to QEMU's options for
#   the emulated host: TCG with every CPU feature (SVM), 2 vCPUs, MEM MB
#   split over two NUMA nodes, serial console on stdio, no devices else.

emuhost_images() {
    command -v qemu-system-x86_64 >/dev/null ||
        fail "qemu-system-x86_64 not found: install the Debian package qemu-system-x86"
    local imgargs=(--builddir "$builddir" --quiet) paths
    [ -n "$images" ] && imgargs+=(--images "$images")
    paths=$("$srcdir/scripts/guest-images.sh" "${imgargs[@]}" emuhost 2>&1) ||
        fail "building the emulated-host image failed: $(echo "$paths" | grep -m1 error: || echo "$paths" | tail -n1)"
    vmlinuz=$(echo "$paths" | sed -n 's/^vmlinuz=//p')
    hostrd=$(echo "$paths" | sed -n 's/^emuhost_initrd=//p')
    [ -f "$vmlinuz" ] && [ -f "$hostrd" ] || fail "image script printed no kernel/initrd paths"
}

emuhost_machine_args() {
    local mem=$1 half=$(($1 / 2))
    qemu_machine=(-accel tcg -cpu max -smp 2 -m "$mem"
        -object "memory-backend-ram,id=m0,size=${half}M" -object "memory-backend-ram,id=m1,size=$((mem - half))M"
        -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1
        -nographic -no-reboot -nodefaults -serial stdio -monitor none)
}
