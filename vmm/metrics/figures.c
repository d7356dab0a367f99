/* SPDX-License-Identifier: MIT */
/*
 * figures.c - the tables of figures.h, and reading and formatting values.
 *
 * The order of each table is the order of every output: Prometheus
 * families, JSON keys, libvirt parameters, status-line fields and top
 * columns.  Names of existing outputs are kept: run --json's keys,
 * domstats' samepage.* keys, node-memory-tune's shm_* parameters.
 */
#include "vmm/metrics/figures.h"

#include <math.h>

#include "sharing/knobs.h"

#define NODE(field) offsetof(SpFigNodeSrc, field)
#define VM(field)   offsetof(SpFigVmSrc, field)
#define GRP(field)  offsetof(SpCloneGroupStats, field)

static const SpFigure node_figures[] = {
    {"pages_shared", "samepage_pages_shared", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.pages_shared),
     SP_FIG_COUNT, "shm_pages_shared", "shared", 0, false, "shared", 0,
     "Shared frames in use (KSM's pages_shared)"},
    {"pages_sharing", "samepage_pages_sharing", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.pages_sharing),
     SP_FIG_COUNT, "shm_pages_sharing", "sharing", 0, false, "sharing", 0,
     "Guest pages mapping a shared frame, minus one per frame: the pages saved (KSM's "
     "pages_sharing)"},
    {"pages_unshared", "samepage_pages_unshared", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.pages_unshared), SP_FIG_COUNT, "shm_pages_unshared", "unshared", 0, false, "unshared",
     0, "Unique stable pages in the unstable table at the last full scan"},
    {"pages_volatile", "samepage_pages_volatile", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.pages_volatile), SP_FIG_COUNT, "shm_pages_volatile", "volatile", 0, false, "volatile",
     0, "Pages written since the previous scan, at the last full scan"},
    {"zero_pages", "samepage_zero_pages", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.zero_pages),
     SP_FIG_COUNT, "shm_zero_pages", "zero", 0, false, "zero", 0,
     "Pages dropped to the zero page and still zero"},
    {"full_scans", "samepage_full_scans_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(eng.full_scans),
     SP_FIG_COUNT, "shm_full_scans", "full_scans", 0, false, "scans", 0,
     "Completed scans over every VM"},
    {"pages_scanned", "samepage_pages_scanned_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(eng.pages_scanned), SP_FIG_COUNT, "shm_pages_scanned", NULL, 0, false, NULL, 0,
     "Pages examined by the scanner"},
    {"pages_skipped", "samepage_pages_skipped_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(eng.pages_skipped), SP_FIG_COUNT, "shm_pages_skipped", NULL, 0, false, NULL, 0,
     "Pages smart_scan left out of a pass (unmerged and unwritten for a while)"},
    {"saved_bytes", "samepage_saved_bytes", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.saved_bytes),
     SP_FIG_BYTES, "shm_saved_bytes", "saved", 0, false, "saved", 0,
     "Memory the sharing saves: (pages_sharing + zero_pages) x 4096"},
    {"general_profit", "samepage_general_profit_bytes", SP_FIG_GAUGE, SP_FIG_I64,
     NODE(eng.general_profit), SP_FIG_BYTES, "shm_general_profit", "profit", 0, false, "profit", 0,
     "Saved bytes minus the engine's metadata (KSM's general_profit)"},
    {"metadata_bytes", "samepage_metadata_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_bytes), SP_FIG_BYTES, "shm_metadata_bytes", NULL, 0, false, "metadata", 0,
     "The engine's own memory: page states, hashes, frames, index tables"},
    {"metadata_vm_bytes", "samepage_metadata_vm_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_vm_bytes), SP_FIG_BYTES, NULL, NULL, 0, false, NULL, 0,
     "Of metadata_bytes: in the VM processes, a state word per guest page (which holds an unmerged "
     "page's hash) and five bitmaps"},
    {"metadata_frame_ids_bytes", "samepage_metadata_frame_ids_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_frame_ids_bytes), SP_FIG_BYTES, NULL, NULL, 0, false, NULL, 0,
     "Of metadata_bytes: the index's frame id per guest page, and the mapping budget's refused "
     "bits"},
    {"metadata_frames_bytes", "samepage_metadata_frames_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_frames_bytes), SP_FIG_BYTES, NULL, NULL, 0, false, NULL, 0,
     "Of metadata_bytes: the shared frames' records and the pools' offset tables"},
    {"metadata_mappers_bytes", "samepage_metadata_mappers_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_mappers_bytes), SP_FIG_BYTES, NULL, NULL, 0, false, NULL, 0,
     "Of metadata_bytes: the shared frames' mapper lists (the reverse map)"},
    {"metadata_stable_bytes", "samepage_metadata_stable_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_stable_bytes), SP_FIG_BYTES, NULL, NULL, 0, false, NULL, 0,
     "Of metadata_bytes: the stable index's table"},
    {"metadata_unstable_bytes", "samepage_metadata_unstable_bytes", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.metadata_unstable_bytes), SP_FIG_BYTES, NULL, NULL, 0, false, NULL, 0,
     "Of metadata_bytes: the unstable table, emptied each full scan and sized for a scan's peak"},
    {"merges", "samepage_merges_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(eng.merges), SP_FIG_COUNT,
     "shm_merges", "merges", 0, false, "merges", 0, "Pages merged onto a frame"},
    {"cow_breaks", "samepage_cow_breaks_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(eng.cow_breaks),
     SP_FIG_COUNT, "shm_cow_breaks", "cow-breaks", 0, false, "cow-breaks", 0,
     "Shares broken by a guest write (copy-on-write)"},
    {"frames_freed", "samepage_frames_freed_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(eng.frames_freed), SP_FIG_COUNT, "shm_frames_freed", NULL, 0, false, NULL, 0,
     "Frames given back to the host when their last mapper went"},
    {"layer_pages_given_back", "samepage_layer_pages_given_back_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(eng.layer_pages_given_back), SP_FIG_COUNT, NULL, NULL, 0, false, NULL, 0,
     "Pages of clone groups' files that no VM mapped any more, given back to the host "
     "(docs/clones.md)"},
    {"pool_frames", "samepage_pool_frames", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.pool_frames),
     SP_FIG_COUNT, "shm_pool_frames", NULL, 0, false, "frames", 0,
     "Frames allocated in the frame pools"},
    {"numa_frames_rehomed", "samepage_numa_frames_rehomed_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(eng.numa_frames_rehomed), SP_FIG_COUNT, "shm_numa_frames_rehomed", NULL, 0, false, NULL,
     0, "Shared frames moved to the NUMA node most of their sharers want (docs/numa.md)"},
    {"numa_frames_misplaced", "samepage_numa_frames_misplaced", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.numa_frames_misplaced), SP_FIG_COUNT, "shm_numa_frames_misplaced", NULL, 0, false,
     NULL, 0, "Shared frames the last re-homing pass wanted on another node and could not move"},
    {"numa_pages_split", "samepage_numa_pages_split_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(eng.numa_pages_split), SP_FIG_COUNT, "shm_numa_pages_split", NULL, 0, false, NULL, 0,
     "Guest pages split off another node's frames after a NUMA move (merge_across_nodes=0)"},
    {"engine_cpu_ns", "samepage_engine_cpu_seconds_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(engine_cpu_ns), SP_FIG_NS, "shm_engine_cpu_ns", NULL, 0, false, "cpu", 0,
     "CPU time of the supervisor's engine (index) thread; hashing and merging run in each VM "
     "process"},
    {"scan_time_ms", "samepage_scan_time_seconds", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.scan_time_ms),
     SP_FIG_MS, "shm_scan_time_ms", NULL, 0, false, NULL, 0,
     "Wall time of the last full scan, start to start (advisor_mode=1 aims it at "
     "advisor_target_scan_time)"},
    {"scan_cpu_permille", "samepage_scan_cpu_ratio", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(eng.scan_cpu_permille), SP_FIG_PERMILLE, "shm_scan_cpu_permille", NULL, 0, false, NULL, 0,
     "CPU of the engine thread and the VMs' agent threads in the last full scan, per mille of "
     "one CPU (advisor_mode=1 keeps it under advisor_max_cpu)"},
    {"mappings", "samepage_mappings", SP_FIG_GAUGE, SP_FIG_U64, NODE(mappings), SP_FIG_COUNT, NULL,
     NULL, 0, false, NULL, 0, "Host mappings (VMAs) of every VM's guest RAM, summed"},
    {"map_skipped", "samepage_map_skipped_pages", SP_FIG_GAUGE, SP_FIG_U64, NODE(eng.map_skipped),
     SP_FIG_COUNT, NULL, "map-skipped", 0, false, NULL, 0,
     "Merges the mapping budget refused in the last full pass, all VMs: sharing left on the "
     "table (pages)"},
    {"vms", "samepage_vms", SP_FIG_GAUGE, SP_FIG_U64, NODE(vms), SP_FIG_COUNT, NULL, NULL, 0, false,
     NULL, 0, "VMs with figures (running, paused or just ended)"},
    {"swap_enabled", "samepage_swap_enabled", SP_FIG_GAUGE, SP_FIG_BOOL, NODE(swap.enabled),
     SP_FIG_COUNT, "shm_swap_enabled", NULL, SP_FIG_LINE_SWAP, false, NULL, 0,
     "1 while samepage swaps guest memory (a limit or a swap file is set)"},
    {"pages_swapped", "samepage_swap_pages", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.pages_swapped),
     SP_FIG_COUNT, "shm_swap_pages", "swapped", SP_FIG_LINE_SWAP, false, "swapped", 0,
     "Contents swapped out now: private pages, and shared frames once for all their sharers"},
    {"frames_swapped", "samepage_swap_frames", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.frames_swapped),
     SP_FIG_COUNT, "shm_swap_frames", "frames", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Of them shared frames (one slot each, whatever the number of sharers)"},
    {"layer_pages_swapped", "samepage_swap_layer_pages", SP_FIG_GAUGE, SP_FIG_U64,
     NODE(swap.layer_pages), SP_FIG_COUNT, NULL, NULL, SP_FIG_LINE_SWAP, false, NULL, 0,
     "Of those, pages of clone layers (out once for the whole clone family)"},
    {"swap_outs", "samepage_swap_outs_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(swap.swap_outs),
     SP_FIG_COUNT, "shm_swap_outs", "outs", SP_FIG_LINE_SWAP, false, "outs", 0,
     "Contents evicted (a shared frame once)"},
    {"swap_ins", "samepage_swap_ins_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(swap.swap_ins),
     SP_FIG_COUNT, "shm_swap_ins", "ins", SP_FIG_LINE_SWAP, false, "ins", 0,
     "Contents brought back (a shared frame once)"},
    {"frame_outs", "samepage_swap_frame_outs_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.frame_outs), SP_FIG_COUNT, "shm_swap_frame_outs", NULL, SP_FIG_LINE_SWAP, false,
     NULL, 0, "Shared frames evicted"},
    {"frame_ins", "samepage_swap_frame_ins_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(swap.frame_ins),
     SP_FIG_COUNT, "shm_swap_frame_ins", NULL, SP_FIG_LINE_SWAP, false, NULL, 0,
     "Shared frames brought back, shared as before"},
    {"refaults", "samepage_swap_refaults_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(swap.refaults),
     SP_FIG_COUNT, "shm_swap_refaults", "refaults", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Contents back within 60 s of leaving"},
    {"prefetched", "samepage_swap_prefetched_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.prefetched), SP_FIG_COUNT, NULL, "prefetched", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Of the swap-ins, pages read ahead: brought back with a faulting page of their block"},
    {"swapin_copies", "samepage_swapin_copies_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.swapin_copies), SP_FIG_COUNT, "shm_swapin_copies", "swapin-copies", SP_FIG_LINE_SWAP,
     false, NULL, 0,
     "Sharers that got a private copy of a swapped shared frame (KSM's ksm_swpin_copy): stays 0"},
    {"merged_instead", "samepage_swap_merged_instead_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.merged_instead), SP_FIG_COUNT, "shm_swap_merged_instead", NULL, SP_FIG_LINE_SWAP,
     false, NULL, 0, "Cold pages merged onto an equal frame instead of written out"},
    {"zero_skipped", "samepage_swap_zero_skipped_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.zero_skipped), SP_FIG_COUNT, "shm_swap_zero_skipped", NULL, SP_FIG_LINE_SWAP, false,
     NULL, 0, "Cold all-zero pages evicted without a slot"},
    {"bytes_written", "samepage_swap_written_bytes_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.bytes_written), SP_FIG_BYTES, "shm_swap_written_bytes", "written", SP_FIG_LINE_SWAP,
     false, NULL, 0, "Bytes written to the swap file"},
    {"bytes_read", "samepage_swap_read_bytes_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.bytes_read), SP_FIG_BYTES, "shm_swap_read_bytes", NULL, SP_FIG_LINE_SWAP, false,
     NULL, 0, "Bytes read from the swap file"},
    {"slots_used", "samepage_swap_slots_used", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.slots_used),
     SP_FIG_COUNT, "shm_swap_slots_used", "slots", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Swap slots holding a content"},
    {"slots_max", "samepage_swap_slots", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.slots_max),
     SP_FIG_COUNT, "shm_swap_slots_max", NULL, SP_FIG_LINE_SWAP, false, NULL, 0,
     "Swap slots in all (file and compressed tier)"},
    {"cache_pages", "samepage_swap_cache_pages", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.cache_pages),
     SP_FIG_COUNT, "shm_swap_cache_pages", "cache", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Contents in the compressed tier in memory"},
    {"cache_bytes", "samepage_swap_cache_bytes", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.cache_bytes),
     SP_FIG_BYTES, "shm_swap_cache_bytes", "cache-size", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Their compressed size"},
    {"full_events", "samepage_swap_full_events_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.full_events), SP_FIG_COUNT, "shm_swap_full_events", NULL, SP_FIG_LINE_SWAP, false,
     NULL, 0, "Evictions the store refused (full, or the file failing)"},
    {"pressure_rounds", "samepage_swap_pressure_rounds_total", SP_FIG_COUNTER, SP_FIG_U64,
     NODE(swap.pressure_rounds), SP_FIG_COUNT, "shm_swap_pressure_rounds", NULL, SP_FIG_LINE_SWAP,
     false, NULL, 0, "Balancer rounds that found the host short of memory (PSI, MemAvailable)"},
    {"cache_ratio", "samepage_swap_cache_ratio", SP_FIG_GAUGE, SP_FIG_F64, NODE(swap.cache_ratio),
     SP_FIG_COUNT, "shm_swap_cache_ratio", "ratio", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Compression ratio of the compressed tier: page bytes in it over its compressed bytes"},
    {"throttled", "samepage_swap_throttled_total", SP_FIG_COUNTER, SP_FIG_U64, NODE(swap.throttled),
     SP_FIG_COUNT, "shm_swap_throttled", "throttled", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Swap-ins that waited for the balancer because a limit was reached"},
    {"mem_limit", "samepage_mem_limit_bytes", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.limit_bytes),
     SP_FIG_BYTES, "shm_mem_limit", "limit", SP_FIG_LINE_SWAP, false, NULL, 0,
     "The host limit on all VMs' guest RAM (--mem-limit), 0: none"},
    {"charged_bytes", "samepage_charged_bytes", SP_FIG_GAUGE, SP_FIG_U64, NODE(swap.charged_bytes),
     SP_FIG_BYTES, "shm_charged_bytes", "charged", SP_FIG_LINE_SWAP, false, "charged", 0,
     "What the host limit is checked against: private guest pages in memory, pool frames in "
     "memory once, the compressed tier"},
    {"run", "samepage_knob_run", SP_FIG_GAUGE, SP_FIG_U32, NODE(knobs.run), SP_FIG_COUNT, "shm_run",
     NULL, 0, false, NULL, 0, "Knob run: 0 stopped, 1 running, 2 unmerge everything"},
    {"pages_to_scan", "samepage_knob_pages_to_scan", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.pages_to_scan), SP_FIG_COUNT, "shm_pages_to_scan", NULL, 0, false, NULL, 0,
     "Knob pages_to_scan: pages per batch"},
    {"sleep_millisecs", "samepage_knob_sleep_seconds", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.sleep_millisecs), SP_FIG_MS, "shm_sleep_millisecs", NULL, 0, false, NULL, 0,
     "Knob sleep_millisecs: pause between batches"},
    {"max_page_sharing", "samepage_knob_max_page_sharing", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.max_page_sharing), SP_FIG_COUNT, "shm_max_page_sharing", NULL, 0, false, NULL, 0,
     "Knob max_page_sharing: most pages one frame backs"},
    {"use_zero_pages", "samepage_knob_use_zero_pages", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.use_zero_pages), SP_FIG_COUNT, "shm_use_zero_pages", NULL, 0, false, NULL, 0,
     "Knob use_zero_pages: 1 drops all-zero pages instead of merging them"},
    {"merge_across_nodes", "samepage_knob_merge_across_nodes", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.merge_across_nodes), SP_FIG_COUNT, "shm_merge_across_nodes", NULL, 0, false, NULL,
     0, "Knob merge_across_nodes"},
    {"scan_nice", "samepage_knob_scan_nice", SP_FIG_GAUGE, SP_FIG_U32, NODE(knobs.scan_nice),
     SP_FIG_COUNT, "shm_scan_nice", NULL, 0, false, NULL, 0,
     "Knob scan_nice: nice of the engine's threads (vCPUs run at 0)"},
    {"advisor_mode", "samepage_knob_advisor_mode", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.advisor_mode), SP_FIG_COUNT, "shm_advisor_mode", NULL, 0, false, NULL, 0,
     "Knob advisor_mode: 1 the engine sets pages_to_scan and sleep_millisecs itself"},
    {"advisor_target_scan_time", "samepage_knob_advisor_target_scan_seconds", SP_FIG_GAUGE,
     SP_FIG_U32, NODE(knobs.advisor_target_scan_time), SP_FIG_SECONDS,
     "shm_advisor_target_scan_time", NULL, 0, false, NULL, 0,
     "Knob advisor_target_scan_time: seconds a full scan should take"},
    {"advisor_max_cpu", "samepage_knob_advisor_max_cpu_percent", SP_FIG_GAUGE, SP_FIG_U32,
     NODE(knobs.advisor_max_cpu), SP_FIG_COUNT, "shm_advisor_max_cpu", NULL, 0, false, NULL, 0,
     "Knob advisor_max_cpu: percent of one CPU the engine and its agents may use"},
    {"map_budget", "samepage_knob_map_budget", SP_FIG_GAUGE, SP_FIG_U32, NODE(knobs.map_budget),
     SP_FIG_COUNT, "shm_map_budget", NULL, 0, false, NULL, 0,
     "Knob map_budget: mappings a VM's RAM may be split into per 1000 of its pages (0: no "
     "budget)"},
    {"smart_scan", "samepage_knob_smart_scan", SP_FIG_GAUGE, SP_FIG_U32, NODE(knobs.smart_scan),
     SP_FIG_COUNT, "shm_smart_scan", NULL, 0, false, NULL, 0,
     "Knob smart_scan: 1 examines pages that stay unmerged and unwritten less often"},
};

static const SpFigure vm_figures[] = {
    {"seconds", "samepage_vm_running_seconds", SP_FIG_GAUGE, SP_FIG_F64, VM(info.seconds),
     SP_FIG_SECONDS, NULL, NULL, SP_FIG_LINE_NONE, false, NULL, 0,
     "Time since the VM was started (until it ended)"},
    {"memory_bytes", "samepage_vm_memory_bytes", SP_FIG_GAUGE, SP_FIG_U64, VM(memory_bytes),
     SP_FIG_BYTES, "samepage.memory_bytes", NULL, SP_FIG_LINE_NONE, false, "RAM", 7,
     "Guest RAM size"},
    {"phase", "samepage_vm_guest_phase", SP_FIG_GAUGE, SP_FIG_U64, VM(info.phase), SP_FIG_COUNT,
     "samepage.guest.phase", NULL, SP_FIG_LINE_NONE, false, NULL, 0,
     "Last phase the guest reported (memload: 1 filled, 2 churning or verifying)"},
    {"rounds", "samepage_vm_guest_rounds_total", SP_FIG_COUNTER, SP_FIG_U64, VM(info.rounds),
     SP_FIG_COUNT, "samepage.guest.rounds", "round", SP_FIG_LINE_GUEST, false, "ROUNDS", 7,
     "Verify rounds the guest completed (memload)"},
    {"pages_verified", "samepage_vm_guest_pages_verified", SP_FIG_GAUGE, SP_FIG_U64,
     VM(info.pages_verified), SP_FIG_COUNT, "samepage.guest.pages_verified", "verified",
     SP_FIG_LINE_GUEST, false, NULL, 0, "Pages the guest verified in its last round"},
    {"pages_rewritten", "samepage_vm_guest_pages_rewritten_total", SP_FIG_COUNTER, SP_FIG_U64,
     VM(info.pages_rewritten), SP_FIG_COUNT, "samepage.guest.pages_rewritten", "rewritten",
     SP_FIG_LINE_GUEST, false, NULL, 0, "Pages the guest rewrote (memload's churn)"},
    {"integrity_errors", "samepage_vm_guest_integrity_errors_total", SP_FIG_COUNTER, SP_FIG_U64,
     VM(info.integrity_errors), SP_FIG_COUNT, "samepage.guest.integrity_errors", "integrity-errors",
     SP_FIG_LINE_GUEST, false, "ERR", 4,
     "Pages the guest found with the wrong content: 0 when all is well"},
    {"merged_pages", "samepage_vm_merged_pages", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.merged_pages),
     SP_FIG_COUNT, "samepage.dedup.pages_merged", "merged", SP_FIG_LINE_SHARING, false, "MERGED", 8,
     "Pages mapping a shared frame now"},
    {"zero_pages", "samepage_vm_zero_pages", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.zero_pages),
     SP_FIG_COUNT, "samepage.dedup.pages_zero", "zero", SP_FIG_LINE_SHARING, false, "ZERO", 8,
     "Pages dropped to the zero page"},
    {"private_pages", "samepage_vm_private_pages", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.private_pages),
     SP_FIG_COUNT, "samepage.pages_private", "private", SP_FIG_LINE_SHARING, false, "PRIVATE", 8,
     "Touched pages that are neither merged nor zero"},
    {"volatile_pages", "samepage_vm_volatile_pages", SP_FIG_GAUGE, SP_FIG_U64,
     VM(eng.volatile_pages), SP_FIG_COUNT, "samepage.dedup.pages_volatile", NULL, SP_FIG_LINE_NONE,
     false, NULL, 0, "Pages that changed in the last scan"},
    {"mappings", "samepage_vm_mappings", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.mappings), SP_FIG_COUNT,
     "samepage.mappings", "mappings", SP_FIG_LINE_SHARING, false, "MAPS", 7,
     "Host mappings (VMAs) its guest RAM is split into"},
    {"map_skipped", "samepage_vm_map_skipped_pages", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.map_skipped),
     SP_FIG_COUNT, "samepage.map_skipped", "map-skipped", SP_FIG_LINE_SHARING, false, NULL, 0,
     "Its merges the mapping budget refused in the last full pass: sharing left on the table "
     "(pages)"},
    {"profit_bytes", "samepage_vm_profit_bytes", SP_FIG_GAUGE, SP_FIG_I64, VM(eng.profit_bytes),
     SP_FIG_BYTES, "samepage.profit_bytes", NULL, SP_FIG_LINE_NONE, false, "PROFIT", 8,
     "Bytes its merged and zero pages save, minus its metadata"},
    {"rss_pages", "samepage_vm_rss_pages", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.rss_pages),
     SP_FIG_COUNT, "samepage.rss_pages", NULL, SP_FIG_LINE_NONE, false, NULL, 0,
     "Resident guest pages it keeps to itself (merged frames count once, in the pool)"},
    {"swapped_pages", "samepage_vm_swapped_pages", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.swapped_pages),
     SP_FIG_COUNT, "samepage.swap.pages", "swapped", SP_FIG_LINE_SWAP, false, "SWAP", 7,
     "Its private pages swapped out now (shared frames are counted on the node)"},
    {"swap_outs", "samepage_vm_swap_outs_total", SP_FIG_COUNTER, SP_FIG_U64, VM(eng.swap_outs),
     SP_FIG_COUNT, "samepage.swap.outs", "outs", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Its private pages swapped out since it started"},
    {"swap_ins", "samepage_vm_swap_ins_total", SP_FIG_COUNTER, SP_FIG_U64, VM(eng.swap_ins),
     SP_FIG_COUNT, "samepage.swap.ins", "ins", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Faults it resolved through swap (private pages and shared frames) since it started"},
    {"swap_in_p50_us", "samepage_vm_swap_in_p50_seconds", SP_FIG_GAUGE, SP_FIG_U64,
     VM(eng.swap_in_p50_us), SP_FIG_US, "samepage.swap.in_p50_us", "p50-us", SP_FIG_LINE_SWAP,
     false, NULL, 0, "Median swap-in latency over its last 1024 swap-ins"},
    {"swap_in_p99_us", "samepage_vm_swap_in_p99_seconds", SP_FIG_GAUGE, SP_FIG_U64,
     VM(eng.swap_in_p99_us), SP_FIG_US, "samepage.swap.in_p99_us", "p99-us", SP_FIG_LINE_SWAP,
     false, NULL, 0, "99th percentile swap-in latency over its last 1024 swap-ins"},
    {"swap_blocked_ns", "samepage_vm_swap_blocked_seconds_total", SP_FIG_COUNTER, SP_FIG_U64,
     VM(eng.swap_blocked_ns), SP_FIG_NS, "samepage.swap.blocked_ns", NULL, SP_FIG_LINE_SWAP, false,
     NULL, 0, "Time its vCPUs and device threads waited for swap-ins"},
    {"refaults", "samepage_vm_refaults_total", SP_FIG_COUNTER, SP_FIG_U64, VM(eng.refaults),
     SP_FIG_COUNT, "samepage.swap.refaults", "refaults", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Pages and shared frames its faults swapped in within 60 s of leaving (evicted too early)"},
    {"mem_limit", "samepage_vm_mem_limit_bytes", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.mem_limit),
     SP_FIG_BYTES, "samepage.swap.mem_limit", "limit", SP_FIG_LINE_SWAP, false, NULL, 0,
     "Its memory limit (mem-limit=, <memtune><hard_limit>), 0: none"},
    {"charged_bytes", "samepage_vm_charged_bytes", SP_FIG_GAUGE, SP_FIG_U64, VM(eng.charged_bytes),
     SP_FIG_BYTES, "samepage.swap.charged_bytes", "charged", SP_FIG_LINE_SWAP, false, "CHARGED", 8,
     "What its limit is checked against: its resident private pages plus 1/N of each frame its "
     "N sharers map (docs/swap.md)"},
    {"clone_shared_pages", "samepage_vm_clone_shared_pages", SP_FIG_GAUGE, SP_FIG_U64,
     VM(clone_shared_pages), SP_FIG_COUNT, "samepage.clone.pages_shared", "clone-shared",
     SP_FIG_LINE_CLONE, false, "CLONE", 8, "Pages still shared with its clone family"},
    {"clone_group", "samepage_vm_clone_group", SP_FIG_GAUGE, SP_FIG_U64, VM(clone_group),
     SP_FIG_COUNT, "samepage.clone.group", "group", SP_FIG_LINE_CLONE, false, NULL, 0,
     "Id of the clone group of its newest layer (0: none)"},
    {"clone_generation", "samepage_vm_clone_generation", SP_FIG_GAUGE, SP_FIG_U64,
     VM(clone_generation), SP_FIG_COUNT, "samepage.clone.generation", "gen", SP_FIG_LINE_CLONE,
     false, NULL, 0, "0 for a VM that is not a clone, 1 for a child, 2 for a child's child..."},
};

static const SpFigure group_figures[] = {
    {"id", NULL, SP_FIG_LABEL, SP_FIG_U64, GRP(id), SP_FIG_COUNT, "id", NULL, 0, false, NULL, 0,
     "The group's id (label group)"},
    {"parent", NULL, SP_FIG_LABEL, SP_FIG_U64, GRP(parent_id), SP_FIG_COUNT, "parent", "parent", 0,
     false, NULL, 0, "The group it was layered on, 0: none (label parent)"},
    {"members", "samepage_clone_group_members", SP_FIG_GAUGE, SP_FIG_U32, GRP(members),
     SP_FIG_COUNT, "members", "members", 0, false, NULL, 0,
     "VMs whose memory layout includes the group"},
    {"pages", "samepage_clone_group_pages", SP_FIG_GAUGE, SP_FIG_U64, GRP(pages), SP_FIG_COUNT,
     "pages", "pages", 0, false, NULL, 0, "Pages its frame file holds"},
    {"mappings", "samepage_clone_group_mappings", SP_FIG_GAUGE, SP_FIG_U64, GRP(mappings),
     SP_FIG_COUNT, "mappings", "mappings", 0, false, NULL, 0, "Member pages that map one of them"},
    {"pages_shared", "samepage_clone_group_pages_shared", SP_FIG_GAUGE, SP_FIG_U64,
     GRP(pages_shared), SP_FIG_COUNT, "pages_shared", "shared", 0, false, NULL, 0,
     "Its pages mapped by 2 or more members"},
    {"pages_saved", "samepage_clone_group_pages_saved", SP_FIG_GAUGE, SP_FIG_U64, GRP(pages_saved),
     SP_FIG_COUNT, "pages_saved", "saved", 0, true, NULL, 0,
     "Mappings minus distinct pages mapped: the copies the family avoids"},
    {"file_open", "samepage_clone_group_file_open", SP_FIG_GAUGE, SP_FIG_BOOL, GRP(file_open),
     SP_FIG_COUNT, "file_open", NULL, 0, false, NULL, 0,
     "1 while a member holds the group's file (0: it lives on as a parent link)"},
};

static const struct {
    const SpFigure *t;
    size_t n;
} tables[SP_FIG_NSCOPES] = {
    [SP_FIG_NODE] = {node_figures, G_N_ELEMENTS(node_figures)},
    [SP_FIG_VM] = {vm_figures, G_N_ELEMENTS(vm_figures)},
    [SP_FIG_GROUP] = {group_figures, G_N_ELEMENTS(group_figures)},
};

const SpFigure *sp_fig_table(SpFigScope scope, size_t *n)
{
    bool ok = scope < SP_FIG_NSCOPES;
    *n = ok ? tables[scope].n : 0;
    return ok ? tables[scope].t : NULL;
}

const SpFigure *sp_fig_find(SpFigScope scope, const char *name, size_t *index)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    for (size_t i = 0; i < n; i++)
        if (!g_strcmp0(t[i].name, name)) {
            if (index)
                *index = i;
            return &t[i];
        }
    return NULL;
}

void sp_fig_read(SpFigScope scope, const void *src, SpFigValue *out)
{
    size_t n;
    const SpFigure *t = sp_fig_table(scope, &n);
    for (size_t i = 0; i < n; i++) {
        const char *p = (const char *)src + t[i].offset;
        SpFigValue v = {0};
        switch (t[i].ctype) {
        case SP_FIG_U32:
            v.u = *(const uint32_t *)p;
            break;
        case SP_FIG_U64:
            v.u = *(const uint64_t *)p;
            break;
        case SP_FIG_I64:
            v.i = *(const int64_t *)p;
            break;
        case SP_FIG_F64:
            v.d = *(const double *)p;
            break;
        case SP_FIG_BOOL:
            v.u = *(const bool *)p;
            break;
        }
        out[i] = v;
    }
}

double sp_fig_double(const SpFigure *f, SpFigValue v)
{
    switch (f->ctype) {
    case SP_FIG_I64:
        return (double)v.i;
    case SP_FIG_F64:
        return v.d;
    default:
        return (double)v.u;
    }
}

double sp_fig_base_value(const SpFigure *f, SpFigValue v)
{
    double d = sp_fig_double(f, v);
    switch (f->unit) {
    case SP_FIG_NS:
        return d / 1e9;
    case SP_FIG_US:
        return d / 1e6;
    case SP_FIG_MS:
    case SP_FIG_PERMILLE:
        return d / 1e3;
    default:
        return d;
    }
}

void sp_fig_append_double(GString *s, double d)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    if (!isfinite(d)) {
        g_string_append(s, isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) { /* the shortest that reads back the same */
        char fmt[8];
        g_snprintf(fmt, sizeof(fmt), "%%.%dg", prec);
        g_ascii_formatd(buf, sizeof(buf), fmt, d);
        if (g_ascii_strtod(buf, NULL) == d)
            break;
    }
    g_string_append(s, buf);
}

void sp_fig_append_text(GString *s, const SpFigure *f, SpFigValue v)
{
    switch (f->ctype) {
    case SP_FIG_I64:
        g_string_append_printf(s, "%" G_GINT64_FORMAT, v.i);
        break;
    case SP_FIG_F64:
        sp_fig_append_double(s, v.d);
        break;
    case SP_FIG_BOOL:
        g_string_append(s, v.u ? "true" : "false");
        break;
    default:
        g_string_append_printf(s, "%" G_GUINT64_FORMAT, v.u);
    }
}

char *sp_fig_human(const SpFigure *f, SpFigValue v)
{
    double d = sp_fig_double(f, v);
    switch (f->unit) {
    case SP_FIG_BYTES: {
        static const char units[] = "KMGTP";
        double a = fabs(d);
        if (a < 1024)
            return g_strdup_printf("%.0fB", d);
        int u = 0;
        for (a /= 1024, d /= 1024; a >= 1000 && u < 4; u++, a /= 1024, d /= 1024)
            ;
        return g_strdup_printf(a < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
    }
    case SP_FIG_NS:
        return g_strdup_printf("%.1fs", d / 1e9);
    case SP_FIG_US:
        return g_strdup_printf("%.0fus", d);
    case SP_FIG_MS:
        return g_strdup_printf("%.0fms", d);
    case SP_FIG_SECONDS:
        return g_strdup_printf("%.1fs", d);
    case SP_FIG_PERMILLE:
        return g_strdup_printf("%.1f%%", d / 10);
    default: {
        GString *s = g_string_new(NULL);
        sp_fig_append_text(s, f, v);
        return g_string_free(s, FALSE);
    }
    }
}
