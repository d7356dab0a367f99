#!/bin/sh
# demo.sh - the main job: four memload VMs of one tenant (one sharing domain)
# side by side (shared, unique, zero and image pages made from real files),
# churning and verifying their memory while samepage's engine shares their
# identical pages.  On a terminal it shows the live view of `samepage top`
# (q stops the VMs); otherwise a compact status every 5 s.  The guests'
# own lines (memload's results, phases, console) go to per-VM logs whose
# directory is printed at the end.  Runs for $DEMO_SECONDS (default 120) or
# until q / Ctrl-C.  Extra arguments go to `samepage run`.
set -eu
cd "$(dirname "$0")/.."
secs=${DEMO_SECONDS:-120}
# Image pages: real files from this host, the same for every VM.
images=""
for f in /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/bin/bash /usr/lib/x86_64-linux-gnu/libglib-2.0.so.0; do
    [ -r "$f" ] && images="${images:+$images:}$(readlink -f "$f")"
done
img=${images:+image=$images,}
args="seed=42,shared=45,unique=20,zero=20,image=15,rate=2000,dup=50,interval=2000"
view="--top --status 1"
if ! [ -t 0 ] || ! [ -t 1 ] || [ -z "${TERM:-}" ] || [ "${TERM:-}" = dumb ]; then
    view="--status 5"
fi
exec ./samepage run --timeout "$secs" $view \
    --vm "name=web1,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    --vm "name=web2,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    --vm "name=db1,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    --vm "name=db2,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    "$@"
