#!/bin/sh
# libvirt-virsh.sh - Debian's unmodified virsh against the libvirt endpoint
# (sp-libvirt-testd: the real server code over the in-memory test backend).
# Every command's OUTPUT is checked against the backend's fixed figures
# (tests/libvirt/test-backend.c), not just its exit status.
. "${top_srcdir:-.}/tests/libvirt/common.sh"
echo "1..31"
lv_start || { echo "Bail out! no server"; exit 1; }

expect "list --all shows alpha running as id 1 and beta shut off" \
    '^ *1 +alpha +running' vsh list --all
grep -Eq '^ *- +beta +shut off' "$T/out" && ok "list --all: beta inactive (id -)" || notok "list --all: beta inactive (id -)"
expect "dominfo alpha: uuid, state, cpus, memory" \
    'UUID: +11111111-2222-3333-4444-555555555551' vsh dominfo alpha
grep -Eq 'Max memory: +524288 KiB' "$T/out" && grep -Eq 'CPU\(s\): +2' "$T/out" &&
    grep -Eq 'State: +running' "$T/out" && grep -Eq 'CPU time: +1.5s' "$T/out" &&
    ok "dominfo alpha: figures" || notok "dominfo alpha: figures"
expect "dominfo by uuid" 'Name: +beta' vsh dominfo 11111111-2222-3333-4444-555555555552
expect_fail "dominfo of a missing domain fails with virsh's lookup error" \
    "failed to get domain 'nosuch'" vsh dominfo nosuch
expect "dommemstat alpha: rss/actual/usable/available/swap" '^rss 123456$' vsh dommemstat alpha
grep -q '^actual 524288$' "$T/out" && grep -q '^usable 400000$' "$T/out" &&
    grep -q '^available 524288$' "$T/out" && grep -q '^swap_in 7$' "$T/out" &&
    grep -q '^swap_out 9$' "$T/out" && ok "dommemstat: all six figures" || notok "dommemstat: all six figures"
expect "domstats: standard and samepage.* keys" 'samepage.merged_pages=4242' vsh domstats alpha
grep -q 'state.state=1' "$T/out" && grep -q 'balloon.maximum=524288' "$T/out" &&
    grep -q 'samepage.sharing_domain=tenant-a' "$T/out" && grep -q 'block.0.name=vda' "$T/out" &&
    ok "domstats alpha: state, balloon, block, string key" || notok "domstats alpha: state, balloon, block, string key"
expect "domstats --state --list-shutoff: only beta" "Domain: 'beta'" vsh domstats --state --list-shutoff
grep -q "alpha" "$T/out" && notok "domstats --list-shutoff excludes alpha" || ok "domstats --list-shutoff excludes alpha"
expect "node-memory-tune read: the eight shm_* values" 'shm_full_scans +12' vsh_nq node-memory-tune
grep -Eq 'shm_pages_to_scan +100' "$T/out" && grep -Eq 'shm_merge_across_nodes +1' "$T/out" &&
    ok "node-memory-tune: defaults" || notok "node-memory-tune: defaults"
vsh node-memory-tune --shm-pages-to-scan 250 --shm-sleep-millisecs 35 --shm-merge-across-nodes 0 >"$T/out" 2>&1
expect "node-memory-tune write reads back" 'shm_pages_to_scan +250' vsh_nq node-memory-tune
grep -Eq 'shm_sleep_millisecs +35' "$T/out" && grep -Eq 'shm_merge_across_nodes +0' "$T/out" &&
    ok "node-memory-tune: sleep and merge written" || notok "node-memory-tune: sleep and merge written"
expect "nodememstats: total/free/buffers/cached" '^cached *: +2048 KiB' vsh nodememstats
expect "nodememstats --cell 0: total and free" '^free *: +4194304 KiB' vsh nodememstats --cell 0
expect_fail "nodememstats --cell 5: invalid cell error" 'cell number 5' vsh nodememstats --cell 5
expect "nodeinfo: 128-byte model decoded" '^CPU model: +x86_64$' vsh nodeinfo
expect "version: hypervisor samepage 0.1.0" 'Running hypervisor: samepage 0.1.0' vsh_nq version
expect "hostname" "^$(hostname)\$" vsh hostname

cat >"$T/g.xml" <<XML
<domain type='samepage'>
  <name>gamma</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type><kernel>/boot/vmlinuz</kernel><cmdline>console=ttyS0</cmdline></os>
  <devices><disk type='file'><source file='/tmp/g.img'/><target dev='vdb'/></disk></devices>
</domain>
XML
sed 's/gamma/delta/' "$T/g.xml" >"$T/d.xml"
vsh define "$T/g.xml" >"$T/out" 2>&1 && vsh start gamma >>"$T/out" 2>&1 &&
    vsh list >>"$T/out" 2>&1 && grep -Eq '^ *2 +gamma +running' "$T/out" &&
    ok "define + start: gamma runs as id 2" || notok "define + start: gamma runs as id 2"
expect "dumpxml gamma: id, memory, kernel, disk target" "<target dev='vdb'/>" vsh dumpxml gamma
grep -q "<domain type='samepage' id='2'>" "$T/out" && grep -q "<memory unit='KiB'>65536</memory>" "$T/out" &&
    grep -q "<kernel>/boot/vmlinuz</kernel>" "$T/out" && ok "dumpxml gamma: contents" || notok "dumpxml gamma: contents"
vsh destroy gamma >"$T/out" 2>&1 && vsh undefine gamma >>"$T/out" 2>&1 &&
    vsh list --all >>"$T/out" 2>&1 && ! grep -q gamma "$T/out" &&
    ok "destroy + undefine: gamma gone" || notok "destroy + undefine: gamma gone"
expect "create FILE.xml prints the new domain" "Domain 'delta' created" vsh_nq create "$T/d.xml"
vsh destroy delta >"$T/out" 2>&1 && vsh list --all >>"$T/out" 2>&1 && ! grep -q delta "$T/out" &&
    ok "destroy of a transient domain removes it" || notok "destroy of a transient domain removes it"
echo '<domain><name>bad</name><memory>1</memory><clockwork offset="utc"/></domain>' >"$T/bad.xml"
expect_fail "define with an unknown element names it" 'unsupported element <clockwork>' vsh define "$T/bad.xml"
lv_alive && ok "server still running" || notok "server still running"
lv_stop && [ ! -e "$SOCK" ] && [ ! -e "$ROSOCK" ] && ok "SIGTERM: clean exit, sockets removed" ||
    notok "SIGTERM: clean exit, sockets removed"
[ $fails -eq 0 ]
