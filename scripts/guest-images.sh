#!/bin/bash
# scripts/guest-images.sh - build the Linux-guest and emulated-host images
# from Debian packages.
#
# What it makes (in the image cache, $SAMEPAGE_IMAGES or <builddir>/images):
#   vmlinuz                  Debian's linux-image-6.1.0-*-amd64 kernel (bzImage)
#   linux-guest-initrd.gz    busybox initramfs for Linux guests: guest-tools/linux/init
#                            and sp-memfacts (prints RAM/vCPU facts, a marker, poweroff -f)
#   emuhost-initrd.gz        initramfs of the emulated host: busybox, kvm modules
#                            (irqbypass, kvm, ccp, kvm-amd), samepage's binaries with their
#                            shared libraries, the payloads, the guest kernel and initrd
#                            above, and tests/emuhost/emuhost-init as /init
#
# Only `apt-get download` and `dpkg-deb -x` touch packages: nothing is
# installed, nothing fetched is committed (images/ is in .gitignore).
#
# Caching: each product records a hash of its inputs (files and package
# names) in <product>.inputs and is rebuilt only when that hash changes.
# The .deb files stay in <cache>/debs.  When the package lists cannot be read
# (no network) but a kernel is already cached, the cached one is used.
#
# Errors: a missing tool, a failed apt-get or a broken package is one clear
# message on stderr and exit status 1, never a hang (apt-get runs under
# `timeout`).
#
# Usage: guest-images.sh [--images DIR] [--builddir DIR] [--quiet] [TARGET...]
#   TARGET: kernel | linux-guest | emuhost | all (default: all)
# Prints "NAME=PATH" lines for the products built (vmlinuz, linux_guest_initrd,
# emuhost_initrd) on stdout; progress goes to stderr.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${top_builddir:-$PWD}
images=${SAMEPAGE_IMAGES:-}
quiet=0
targets=()
apt_timeout=${SAMEPAGE_APT_TIMEOUT:-300}

# Modules the emulated host loads, in load order after dependency resolution:
# KVM, and 9p over virtio for scripts/in-emuhost.sh (this machine's root
# file system inside the emulated host).
emuhost_modules=(kvm-amd virtio-pci 9pnet-virtio 9p)

die() { echo "guest-images: error: $*" >&2; exit 1; }
say() { [ "$quiet" = 1 ] || echo "guest-images: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --images) images=$2; shift 2 ;;
    --builddir) builddir=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    kernel|linux-guest|emuhost|all) targets+=("$1"); shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(all)
builddir=$(cd "$builddir" && pwd)
images=${images:-$builddir/images}
mkdir -p "$images/debs" || die "cannot create $images"
images=$(cd "$images" && pwd)

for tool in apt-get apt-cache dpkg-deb cpio gzip objcopy sha256sum ldd; do
    command -v "$tool" >/dev/null || die "'$tool' not found (Debian 12 host with dpkg, cpio, binutils expected)"
done

# Hash of the given files' contents and names plus extra strings.
inputs_hash() {
    { for f in "$@"; do
        if [ -f "$f" ]; then printf '%s ' "$f"; sha256sum < "$f"; else printf '%s\n' "$f"; fi
    done; } | sha256sum | cut -d' ' -f1
}
up_to_date() { [ -f "$1" ] && [ -f "$1.inputs" ] && [ "$(cat "$1.inputs")" = "$2" ]; }

# ---- packages ---------------------------------------------------------------

# The concrete kernel package linux-image-amd64 depends on.
kernel_pkg_resolve() {
    local name
    name=$(apt-cache depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1) || true
    if [ -z "$name" ]; then
        say "package lists lack linux-image-amd64: running apt-get update"
        timeout "$apt_timeout" apt-get update -qq >&2 ||
            { echo ""; return 0; }
        name=$(apt-cache depends linux-image-amd64 2>/dev/null |
               sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1) || true
    fi
    echo "$name"
}

# deb_fetch PKG -> path of its .deb in the cache (downloads it if absent).
deb_fetch() {
    local pkg=$1 ver deb
    ver=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] ||
        die "package '$pkg' is not known to apt (run apt-get update; is the Debian 12 archive reachable?)"
    ver=${ver//:/%3a}
    deb=$(ls "$images/debs/${pkg}_${ver}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        say "downloading $pkg ($ver)"
        (cd "$images/debs" && timeout "$apt_timeout" apt-get download -q "$pkg" >&2 2>"$images/debs/apt.log") ||
            { cat "$images/debs/apt.log" >&2; die "apt-get download $pkg failed"; }
        deb=$(ls "$images/debs/${pkg}_${ver}_"*.deb 2>/dev/null | head -n1 || true)
        [ -n "$deb" ] || die "apt-get download $pkg produced no .deb in $images/debs"
    fi
    dpkg-deb --info "$deb" >/dev/null 2>&1 || { rm -f "$deb"; die "$deb is not a valid Debian package (removed; run again)"; }
    echo "$deb"
}

# ---- kernel -----------------------------------------------------------------

# Module dependencies from the module's own .modinfo section (no kmod needed).
module_depends() {
    objcopy -O binary --only-section=.modinfo "$1" /dev/stdout 2>/dev/null |
        tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

# Resolve module names into a load order (dependencies first) of .ko paths.
# Globals: modtree (root of lib/modules/VER/kernel), modorder (output array).
module_add() {
    local name=$1 path dep b
    name=${name//_/-}
    for p in "${modorder[@]+"${modorder[@]}"}"; do
        b=$(basename "$p" .ko)
        [ "${b//_/-}" = "$name" ] && return 0
    done
    path=$(find "$modtree" \( -name "$name.ko" -o -name "${name//-/_}.ko" -o -name "$name.ko.xz" \
           -o -name "${name//-/_}.ko.xz" \) | head -n1)
    [ -n "$path" ] || die "module '$name' not found in the kernel package"
    case "$path" in
    *.xz) command -v xz >/dev/null || busybox xz --help >/dev/null 2>&1 || die "xz needed to unpack $path"
          (xz -dc "$path" 2>/dev/null || busybox xz -dc "$path") > "${path%.xz}" || die "cannot decompress $path"
          path=${path%.xz} ;;
    esac
    for dep in $(module_depends "$path"); do module_add "$dep"; done
    modorder+=("$path")
}

kernel_build() {
    local pkg deb kdir stamp
    pkg=$(kernel_pkg_resolve)
    if [ -z "$pkg" ]; then
        if [ -f "$images/kernel/vmlinuz" ]; then
            say "apt cannot resolve linux-image-amd64 (offline?): using the cached $(cat "$images/kernel/package")"
            ln -sf kernel/vmlinuz "$images/vmlinuz"
            return 0
        fi
        die "cannot resolve linux-image-amd64 to a kernel package: apt-get update failed or the Debian archive is unreachable"
    fi
    kdir=$images/kernel
    stamp="$pkg $(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p') modules=${emuhost_modules[*]}"
    if [ -f "$kdir/vmlinuz" ] && [ "$(cat "$kdir/stamp" 2>/dev/null)" = "$stamp" ]; then
        ln -sf kernel/vmlinuz "$images/vmlinuz"
        return 0
    fi
    deb=$(deb_fetch "$pkg")
    say "unpacking $(basename "$deb")"
    local tmp
    tmp=$(mktemp -d "$images/unpack.XXXXXX")
    trap 'rm -rf "$tmp"' RETURN
    dpkg-deb -x "$deb" "$tmp" || die "dpkg-deb -x $deb failed"
    rm -rf "$kdir"
    mkdir -p "$kdir/modules"
    cp "$tmp"/boot/vmlinuz-* "$kdir/vmlinuz" 2>/dev/null || die "$deb holds no /boot/vmlinuz-*"
    cp "$tmp"/boot/config-* "$kdir/config" 2>/dev/null || true
    modtree=$(echo "$tmp"/lib/modules/*/kernel)
    [ -d "$modtree" ] || die "$deb holds no /lib/modules/*/kernel"
    modorder=()
    for m in "${emuhost_modules[@]}"; do module_add "$m"; done
    : > "$kdir/modules/order"
    for p in "${modorder[@]}"; do
        cp "$p" "$kdir/modules/" && basename "$p" >> "$kdir/modules/order"
    done
    echo "$pkg" > "$kdir/package"
    echo "$stamp" > "$kdir/stamp"
    ln -sf kernel/vmlinuz "$images/vmlinuz"
    say "kernel $pkg, modules: $(tr '\n' ' ' < "$kdir/modules/order")"
}

busybox_get() {
    if [ ! -x "$images/busybox" ] || [ ! -s "$images/busybox.stamp" ]; then
        local deb tmp
        deb=$(deb_fetch busybox-static)
        tmp=$(mktemp -d "$images/unpack.XXXXXX")
        dpkg-deb -x "$deb" "$tmp" || { rm -rf "$tmp"; die "dpkg-deb -x $deb failed"; }
        cp "$tmp/bin/busybox" "$images/busybox" || { rm -rf "$tmp"; die "$deb holds no /bin/busybox"; }
        rm -rf "$tmp"
        basename "$deb" > "$images/busybox.stamp"
    fi
}

# ---- initramfs helpers -------------------------------------------------------

# cpio_pack DIR OUT.gz: a newc archive of DIR, owned by root.
cpio_pack() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
        gzip -6 -n > "$2.tmp" || die "cpio/gzip of $1 failed"
    mv "$2.tmp" "$2"
}

# Copy a dynamic binary's shared libraries (ldd) into the root ROOT.
copy_libs() {
    local root=$1 bin=$2 lib
    for lib in $(ldd "$bin" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
        mkdir -p "$root$(dirname "$lib")"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib" || die "cannot copy $lib"
    done
}

memfacts_build() {
    local src=$srcdir/guest-tools/linux/sp-memfacts.c out=$images/sp-memfacts h
    h=$(inputs_hash "$src" "${CC:-cc}")
    up_to_date "$out" "$h" && return 0
    "${CC:-cc}" -std=gnu11 -Wall -Wextra -Werror -O2 -static -o "$out" "$src" ||
        die "cannot build sp-memfacts statically (libc6-dev provides libc.a)"
    echo "$h" > "$out.inputs"
}

linux_guest_build() {
    local out=$images/linux-guest-initrd.gz h root
    busybox_get
    memfacts_build
    h=$(inputs_hash "$images/busybox" "$images/sp-memfacts" "$srcdir/guest-tools/linux/init" "$0")
    if up_to_date "$out" "$h"; then return 0; fi
    say "building $(basename "$out")"
    root=$(mktemp -d "$images/root.XXXXXX")
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc}
    cp "$images/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    cp "$images/sp-memfacts" "$root/bin/sp-memfacts"
    cp "$srcdir/guest-tools/linux/init" "$root/init"
    chmod 755 "$root/init"
    cpio_pack "$root" "$out"
    rm -rf "$root"
    echo "$h" > "$out.inputs"
}

emuhost_build() {
    local out=$images/emuhost-initrd.gz h root bins=() payloads=() b
    for b in samepage samepaged samepage-vm tests/emuhost/kvm-keeper; do
        [ -x "$builddir/$b" ] && bins+=("$builddir/$b")
    done
    payloads=($(ls "$builddir"/guest-tools/*.elf 2>/dev/null || true))
    h=$(inputs_hash "$images/busybox" "$images/kernel/stamp" "$images/kernel/vmlinuz" \
        "$images/linux-guest-initrd.gz" "$srcdir/tests/emuhost/emuhost-init" "$0" \
        "${bins[@]+"${bins[@]}"}" "${payloads[@]+"${payloads[@]}"}")
    if up_to_date "$out" "$h"; then return 0; fi
    say "building $(basename "$out") (binaries: ${bins[*]:-none}; payloads: ${#payloads[@]})"
    root=$(mktemp -d "$images/root.XXXXXX")
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,opt/samepage/bin,opt/samepage/payloads,opt/samepage/images}
    cp "$images/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    cp "$images/kernel/modules/"* "$root/lib/modules/"
    for b in "${bins[@]+"${bins[@]}"}"; do
        cp "$b" "$root/opt/samepage/bin/"
        copy_libs "$root" "$b"
    done
    for b in "${payloads[@]+"${payloads[@]}"}"; do cp "$b" "$root/opt/samepage/payloads/"; done
    cp "$images/kernel/vmlinuz" "$root/opt/samepage/images/vmlinuz"
    cp "$images/linux-guest-initrd.gz" "$root/opt/samepage/images/linux-guest-initrd.gz"
    cp "$srcdir/tests/emuhost/emuhost-init" "$root/init"
    chmod 755 "$root/init"
    # VM processes switch to an unprivileged user after their setup.
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    cpio_pack "$root" "$out"
    rm -rf "$root"
    echo "$h" > "$out.inputs"
}

# ---- main -------------------------------------------------------------------

# Only one builder per cache at a time (tests may run in parallel).
exec 9> "$images/.lock"
flock -w 900 9 || die "timed out waiting for the lock on $images"

want() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] || [ "$t" = all ] && return 0; done; return 1; }

start=$(date +%s%N)
if want kernel || want emuhost || want linux-guest; then kernel_build; echo "vmlinuz=$images/vmlinuz"; fi
if want linux-guest || want emuhost; then
    linux_guest_build
    echo "linux_guest_initrd=$images/linux-guest-initrd.gz"
fi
if want emuhost; then
    emuhost_build
    echo "emuhost_initrd=$images/emuhost-initrd.gz"
fi
say "done in $(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"
