#!/bin/sh
# exporter.sh - Debian's prometheus-libvirt-exporter scraping samepaged over
# loopback: libvirt_up 1 and per-domain metrics for the running VMs.  TAP.
set -u
. "$(dirname "$0")/common.sh"
echo "1..5"
command -v prometheus-libvirt-exporter >/dev/null || {
    echo "Bail out! prometheus-libvirt-exporter is not installed (Debian package prometheus-libvirt-exporter)"
    exit 1
}
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }
vm_xml web1 >"$T/web1.xml"
vm_xml web2 >"$T/web2.xml"
virsh -c "$URI" define "$T/web1.xml" >/dev/null 2>&1
virsh -c "$URI" define "$T/web2.xml" >/dev/null 2>&1
virsh -c "$URI" start web1 >/dev/null 2>&1
# A free loopback port.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus-libvirt-exporter --libvirt.uri="$URI" --web.listen-address="127.0.0.1:$port" >"$T/exporter.log" 2>&1 &
EXP=$!
trap 'kill $EXP 2>/dev/null; cleanup' EXIT
i=0
until curl -sf "http://127.0.0.1:$port/metrics" >"$T/out" 2>/dev/null || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
check "libvirt_up 1" grep -q '^libvirt_up 1' "$T/out"
check "one active domain" grep -q '^libvirt_domains_number 1' "$T/out"
check "per-domain memory metric for web1" grep -Eq '^libvirt_domain_info_maximum_memory_bytes\{domain="web1".*\} 6\.7108864e\+07' "$T/out"
check "per-domain vCPU and CPU-time metrics for web1" sh -c "grep -Eq '^libvirt_domain_info_virtual_cpus\{domain=\"web1\".*\} 2' '$T/out' && grep -q '^libvirt_domain_info_cpu_time_seconds_total{domain=\"web1\"' '$T/out'"
check "block and interface stats from the XML's targets" sh -c "grep -q 'target_device=\"vda\"' '$T/out' && grep -q 'target_device=\"vnet-web1\"' '$T/out'"
kill $EXP 2>/dev/null
spd_stop
exit 0
