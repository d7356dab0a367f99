#!/bin/sh
# domxml.sh - domain XML as libvirt users write it, through a real
# samepaged and Debian's virsh: a definition in the shape virt-install
# writes (features, cpu, clock, pm, on_*, emulator, serial and console,
# controllers, input, graphics, video, memballoon, rng, channel, libosinfo
# metadata, seclabel, vcpu placement/current, memoryBacking, memtune,
# numatune) defines, starts and runs a memload guest (numatune binds its
# RAM), and dumpxml returns
# what was kept; <memoryBacking><nosharepages/> keeps a VM out of sharing
# (the engine's per-VM figures say so while its twins share); a serial port
# of type file logs there; what samepage would get wrong is refused with
# the element's name, in one line, and nothing is defined.  TAP.
set -u
. "$(dirname "$0")/common.sh"
echo "1..17"
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }

# virt_install NAME SEED SHARING-DOMAIN [EXTRA-BACKING]: what virt-install
# 4.1 writes for a Debian guest, plus samepage's metadata for the payload.
virt_install() {
    cat <<XML
<domain type='kvm'>
  <name>$1</name>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    <sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1">
      <sp:payload>memload</sp:payload>
      <sp:args>seed=$2,rate=200,interval=50</sp:args>
      <sp:domain>$3</sp:domain>
    </sp:samepage>
  </metadata>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <memoryBacking><source type='anonymous'/><access mode='private'/>${4:-}</memoryBacking>
  <memtune><hard_limit unit='MiB'>256</hard_limit></memtune>
  <numatune><memory mode='strict' nodeset='0'/></numatune>
  <vcpu placement='static' current='1'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/><vmport state='off'/></features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' index='0' model='qemu-xhci' ports='15'/>
    <controller type='pci' index='0' model='pcie-root'/>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/><source network='default'/><model type='virtio'/>
      <target dev='vnet-$1'/>
    </interface>
    <serial type='pty'><target type='isa-serial' port='0'><model name='isa-serial'/></target></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <input type='tablet' bus='usb'/>
    <input type='mouse' bus='ps2'/>
    <graphics type='spice' autoport='yes'><listen type='address'/></graphics>
    <video><model type='virtio' heads='1' primary='yes'/></video>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'/>
</domain>
XML
}

virt_install vi1 5 vi1 >"$T/vi1.xml"
V define "$T/vi1.xml" >"$T/out" 2>&1
check "virsh define of virt-install's XML" grep -q "Domain 'vi1' defined" "$T/out"
V start vi1 >"$T/out" 2>&1
check "virsh start" grep -q "Domain 'vi1' started" "$T/out"
wait_rounds vi1 2
check "the guest runs: memload verifies $(rounds vi1) rounds, $(stat_of vi1 samepage.guest.integrity_errors) integrity errors" \
    sh -c "[ $(rounds vi1) -ge 2 ] && [ '$(stat_of vi1 samepage.guest.integrity_errors)' = 0 ]"
# <numatune><memory mode='strict' nodeset='0'/>: the VM process's guest RAM
# (its largest anonymous mapping) is bound to node 0, as the kernel says.
vpid=$(sed -n 's/.*event=started domain=vi1 .*pid=\([0-9]*\).*/\1/p' "$T/daemon.log" | tail -1)
awk '/anon=/ { for (i = 1; i <= NF; i++) if ($i ~ /^anon=/) { split($i, a, "="); if (a[2] > best) { best = a[2]; line = $0 } } }
     END { print line }' /proc/${vpid:-0}/numa_maps >"$T/maps" 2>/dev/null
check "honoured: <numatune><memory mode='strict' nodeset='0'/> binds guest RAM to node 0 (pid ${vpid:-?}: $(cut -c1-50 "$T/maps"))" \
    grep -q ' bind:0 ' "$T/maps"
V dominfo vi1 >"$T/out" 2>&1
check "honoured: <vcpu current='1'>2</vcpu> runs 1 vCPU, 64 MiB" \
    sh -c "grep -Eq '^CPU\(s\): +1$' '$T/out' && grep -q 'Max memory: *65536 KiB' '$T/out'"
check "honoured: the serial port (type pty) logs to the console log" \
    grep -q memload "$T/state/console/vi1.log"
V dumpxml vi1 >"$T/dump.xml" 2>&1
missing=
for want in "<libosinfo:os id='http://debian.org/debian/12'/>" "<acpi/>" "<vmport state='off'/>" \
    "<cpu mode='host-passthrough' check='none' migratable='on'/>" "<timer name='hpet' present='no'/>" \
    "<suspend-to-disk enabled='no'/>" "<emulator>/usr/bin/qemu-system-x86_64</emulator>" \
    "model='qemu-xhci'" "<input type='tablet' bus='usb'/>" "<graphics type='spice' autoport='yes'>" \
    "<model type='virtio' heads='1' primary='yes'/>" "<memballoon model='virtio'/>" \
    "<backend model='random'>/dev/urandom</backend>" "name='org.qemu.guest_agent.0'" \
    "<seclabel type='dynamic' model='dac' relabel='yes'/>" "<boot dev='hd'/>" \
    "<on_crash>destroy</on_crash>" "<vcpu placement='static' current='1'>2</vcpu>" \
    "<hard_limit unit='KiB'>262144</hard_limit>" "<memory mode='strict' nodeset='0'/>" \
    "<model name='isa-serial'/>" "<target type='serial' port='0'/>" "machine='pc-q35-7.2'"; do
    grep -qF "$want" "$T/dump.xml" || missing="$missing $want"
done
check "dumpxml returns every kept element verbatim${missing:+ (missing:$missing)}" [ -z "$missing" ]
V dumpxml vi1 | V define /dev/stdin >"$T/out" 2>&1
check "dumpxml's output defines again (round trip through virsh)" grep -q "Domain 'vi1' defined" "$T/out"

# nosharepages: t1, t2 and t3 run the same memload in one sharing domain;
# t3 says <nosharepages/>.
V node-memory-tune --shm-pages-to-scan 100000 --shm-sleep-millisecs 0 >/dev/null 2>&1
for t in t1 t2 t3; do
    extra=; [ $t = t3 ] && extra="<nosharepages/>"
    virt_install $t 9 tenant "$extra" >"$T/$t.xml"
    V create "$T/$t.xml" >/dev/null 2>&1
done
i=0
while below "$(shm pages_sharing)" 2000 && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
sleep 2
m1=$(stat_of t1 samepage.dedup.pages_merged); m3=$(stat_of t3 samepage.dedup.pages_merged)
z3=$(stat_of t3 samepage.dedup.pages_zero); p3=$(stat_of t3 samepage.pages_private)
check "its twins share (t1 merged $m1 pages, shm_pages_sharing $(shm pages_sharing))" \
    sh -c "[ '${m1:-0}' -ge 1000 ]"
check "nosharepages: t3 takes no part in sharing (merged $m3, zero $z3, private $p3)" \
    sh -c "[ '$m3' = 0 ] && [ '$z3' = 0 ] && [ '${p3:-0}' -gt 1000 ]"
check "nosharepages: t3 runs and verifies" eval '[ "$(rounds t3)" -ge 1 ]'
for t in t1 t2 t3; do V destroy $t >/dev/null 2>&1; done

# A nodeset naming a node this host lacks: the start fails naming it.
nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
sed "s|nodeset='0'|nodeset='$nodes'|; s|<name>vi1</name>|<name>vn</name>|" "$T/vi1.xml" >"$T/vn.xml"
V create "$T/vn.xml" >"$T/out" 2>&1
listed=$(V list --all 2>/dev/null | grep -cw vn)
check "<numatune nodeset='$nodes'> (no such node here): the start fails naming node $nodes" \
    sh -c "grep -q 'no NUMA node $nodes' '$T/out' && [ $listed = 0 ]"

# A serial port of type file: its console goes there.
sed "s|<serial type='pty'><target|<serial type='file'><source path='$T/serial.log'/><target|; s|<name>vi1</name>|<name>vf</name>|" "$T/vi1.xml" >"$T/vf.xml"
V create "$T/vf.xml" >"$T/out" 2>&1
i=0
while ! grep -q memload "$T/serial.log" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "<serial type='file'>: the guest's console goes to that file" grep -q memload "$T/serial.log"
V destroy vf >/dev/null 2>&1

# Refused: one line naming the element; nothing defined.
refused=0
n_ref=0
for bad in "s|<devices>|<devices><hostdev mode='subsystem' type='pci'/>|@<hostdev> (at domain/devices/hostdev)" \
    "s|<memoryBacking>|<memoryBacking><hugepages/>|@<hugepages>" \
    "s|<devices>|<devices><watchdog model='i6300esb' action='reset'/>|@<watchdog>" \
    "s|<os>|<os firmware='efi'>|@no firmware" \
    "s|<devices>|<devices><filesystem type='mount'><source dir='/x'/><target dir='y'/></filesystem>|@<filesystem>"; do
    n_ref=$((n_ref + 1))
    sed "s|<name>vi1</name>|<name>bad$n_ref</name>|; ${bad%%@*}" "$T/vi1.xml" >"$T/bad.xml"
    V define "$T/bad.xml" >"$T/out" 2>&1 && continue
    msg=$(grep -v '^error: Failed to define' "$T/out" | grep -v '^$')
    echo "# $msg"
    case $msg in *"${bad#*@}"*) [ "$(echo "$msg" | wc -l)" = 1 ] && refused=$((refused + 1)) ;; esac
done
V list --all >"$T/out" 2>&1
check "refused with the element's name: hostdev, hugepages, watchdog, firmware, filesystem ($refused/$n_ref)" \
    [ "$refused" = "$n_ref" ]
check "... and none of them was defined" sh -c "! grep -q ' bad[0-9]' '$T/out'"
printf '<domain><name>x</name>' >"$T/broken.xml"
V create "$T/broken.xml" >"$T/out" 2>&1
check "malformed XML: an error, the daemon goes on" sh -c "grep -q 'malformed domain XML' '$T/out' && virsh -c '$URI' list >/dev/null"
V undefine vi1 >/dev/null 2>&1
spd_stop
check "SIGTERM: samepaged exits 0" [ $? = 0 ]
exit 0
