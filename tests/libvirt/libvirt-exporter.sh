#!/bin/sh
# libvirt-exporter.sh - Debian's prometheus-libvirt-exporter scraping the
# libvirt endpoint over loopback: libvirt_up 1, the running domain's info,
# block and interface metrics (names from our dumpxml <target dev>), and no
# metrics for the shut-off domain.  Read-only socket, as an exporter should.
. "${top_srcdir:-.}/tests/libvirt/common.sh"
echo "1..7"
lv_start || { echo "Bail out! no server"; exit 1; }
PORT=$((20000 + $$ % 20000))
prometheus-libvirt-exporter --libvirt.uri="$ROURI" --web.listen-address="127.0.0.1:$PORT" \
    >"$T/exporter.log" 2>&1 &
EXP_PID=$!
trap 'kill $EXP_PID 2>/dev/null; cleanup' EXIT
i=0
until curl -sf "http://127.0.0.1:$PORT/metrics" >"$T/metrics" 2>/dev/null || [ $i -ge 50 ]; do
    sleep 0.1; i=$((i + 1))
done
cp "$T/metrics" "$T/out"
m() { grep -E "$1" "$T/metrics" >/dev/null; }
U='uuid="11111111-2222-3333-4444-555555555551"'
m '^libvirt_up 1$' && ok "libvirt_up 1" || notok "libvirt_up 1"
m '^libvirt_domains_number 1$' && ok "libvirt_domains_number 1 (active only)" || notok "libvirt_domains_number 1 (active only)"
m "^libvirt_domain_info_maximum_memory_bytes\\{domain=\"alpha\",$U\\} 5.36870912e\\+08$" &&
    m "^libvirt_domain_info_virtual_cpus\\{domain=\"alpha\",$U\\} 2$" &&
    m "^libvirt_domain_info_cpu_time_seconds_total\\{domain=\"alpha\",$U\\} 1.5$" &&
    ok "alpha: memory, vcpus, cpu time" || notok "alpha: memory, vcpus, cpu time"
m "^libvirt_domain_state_code\\{domain=\"alpha\",$U\\} 1$" && ok "alpha: state running" || notok "alpha: state running"
m '^libvirt_domain_block_stats_read_bytes_total\{domain="alpha",source_file="/var/lib/sp/alpha.img",target_device="vda",' &&
    ok "alpha: block stats for vda" || notok "alpha: block stats for vda"
m '^libvirt_domain_interface_stats_transmit_bytes_total\{domain="alpha",source_bridge="br0",target_device="vnet0",.*\} 2000$' &&
    ok "alpha: interface stats for vnet0" || notok "alpha: interface stats for vnet0"
m 'domain="beta"' && notok "no metrics for shut-off beta" || ok "no metrics for shut-off beta"
kill $EXP_PID 2>/dev/null
[ $fails -eq 0 ]
