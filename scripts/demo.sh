#!/bin/sh
# demo.sh - the main job: four memload VMs of one tenant (one sharing domain)
# side by side (shared, unique, zero and image pages made from real files),
# churning and verifying their memory while samepage's engine shares their
# identical pages, with live per-VM status and engine statistics.  Runs for $DEMO_SECONDS (default 120) or until
# Ctrl-C.  Extra arguments go to `samepage run`.
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
exec ./samepage run --timeout "$secs" --status 5 \
    --vm "name=web1,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    --vm "name=web2,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    --vm "name=db1,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    --vm "name=db2,mem=256M,vcpus=2,domain=tenant-a,payload=memload,${img}args=$args" \
    "$@"
