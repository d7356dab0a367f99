# tests/ - unit tests (GTest, TAP), integration tests with real KVM VMs, CLI tests.
# The harness the VM tests share with bench/ is in tests/lib/ (libharness.a).
TEST_LDADD = libvmm.a libsharing.a librmap.a $(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) -lpthread

# The shell tests' TAP helpers (ok, notok, check), sourced by every one of
# them, and what the `samepage run` tests share.
EXTRA_DIST += tests/tap.sh tests/run-common.sh

# Unit tests.
check_PROGRAMS += tests/test-vm-config tests/test-uart tests/test-elf tests/test-pagetable
TESTS += tests/test-vm-config tests/test-uart tests/test-elf tests/test-pagetable
tests_test_vm_config_LDADD = $(TEST_LDADD)
tests_test_uart_LDADD = $(TEST_LDADD)
tests_test_elf_LDADD = $(TEST_LDADD)
tests_test_pagetable_LDADD = $(TEST_LDADD)

# Real VMs on this host's /dev/kvm.
check_PROGRAMS += tests/test-vm-run
TESTS += tests/test-vm-run
tests_test_vm_run_LDADD = libharness.a $(TEST_LDADD)
check_PROGRAMS += tests/test-sharing
TESTS += tests/test-sharing
check_PROGRAMS += tests/test-vmproc
TESTS += tests/test-vmproc
tests_test_vmproc_LDADD = libharness.a $(TEST_LDADD)
tests_test_sharing_LDADD = libharness.a $(TEST_LDADD)

# Swap, with real VMs.
check_PROGRAMS += tests/test-swap
TESTS += tests/test-swap
tests_test_swap_LDADD = libharness.a $(TEST_LDADD)

# The swap store alone.
check_PROGRAMS += tests/test-swap-store
TESTS += tests/test-swap-store
tests_test_swap_store_LDADD = libharness.a $(TEST_LDADD)

# The content indexes' map alone.
check_PROGRAMS += tests/test-index-map
TESTS += tests/test-index-map
tests_test_index_map_LDADD = $(TEST_LDADD)

# `samepage run`'s stop signals, counted one by one.
check_PROGRAMS += tests/test-stop-signals
TESTS += tests/test-stop-signals
tests_test_stop_signals_LDADD = $(TEST_LDADD)

# The engine's mapper lists alone.
check_PROGRAMS += tests/test-mappers
TESTS += tests/test-mappers
tests_test_mappers_LDADD = $(TEST_LDADD)

# VM clones and the reverse map, with real VMs.
check_PROGRAMS += tests/test-clone
TESTS += tests/test-clone
tests_test_clone_LDADD = libharness.a $(TEST_LDADD)
check_PROGRAMS += tests/test-rmap
TESTS += tests/test-rmap
tests_test_rmap_LDADD = libharness.a $(TEST_LDADD)

# Command-line behaviour with real VMs: `samepage run` (errors, --clone).
TESTS += tests/cli-errors.sh tests/clone-cli.sh tests/clone-run-status.sh tests/swap-overcommit.sh \
	tests/swap-full.sh tests/swap-unreadable.sh tests/numa-placement.sh tests/advisor.sh tests/run-suspend.sh \
	tests/run-stop-kill.sh
EXTRA_DIST += tests/cli-errors.sh tests/clone-cli.sh tests/clone-run-status.sh tests/swap-overcommit.sh \
	tests/swap-full.sh tests/swap-unreadable.sh tests/numa-placement.sh tests/advisor.sh tests/run-suspend.sh \
	tests/run-stop-kill.sh

# samepaged with real VMs: the `samepage` client commands, and Debian's
# virsh, python3-libvirt and prometheus-libvirt-exporter.
TESTS += tests/cli-daemon.sh tests/daemon/clone.sh
EXTRA_DIST += tests/cli-daemon.sh tests/daemon/clone.sh
TESTS += tests/daemon/virsh.sh tests/daemon/restart.sh tests/daemon/restart-swap.sh tests/daemon/restart-swap-twice.sh tests/daemon/restart-swap-lost.sh tests/daemon/restart-swap-lost-frame.sh tests/daemon/memtune.sh tests/daemon/numatune.sh tests/daemon/exporter.sh \
	tests/daemon/python-libvirt.py tests/daemon/merge-nodes.sh
EXTRA_DIST += tests/daemon/common.sh tests/daemon/virsh.sh tests/daemon/restart.sh \
	tests/daemon/restart-swap.sh tests/daemon/restart-swap-twice.sh tests/daemon/restart-swap-lost.sh tests/daemon/restart-swap-lost-frame.sh tests/daemon/memtune.sh tests/daemon/numatune.sh \
	tests/daemon/exporter.sh tests/daemon/python-libvirt.py tests/daemon/merge-nodes.sh
# Tests that measure against the clock or a limit run alone, one after the
# other, once every other native test is done (the emulated-host tier,
# tests/emuhost/local.mk, waits for all of them):
#   swap-overcommit.sh measures Pss against a limit for 3 minutes, and its
#     balancer lags when the other core is busy: CI runs with a neighbour
#     had samples up to 717 MiB against 512 + 96 (2 of 30 samples);
#   merge-nodes.sh runs two 2-vCPU VMs at full engine speed (it once
#     pushed swap-overcommit's Pss over the slack beside it);
#   advisor.sh measures pass times against a target and CPU against a
#     ceiling (beside merge-nodes.sh, passes asked in 2 s took up to 3.8 s).
TIMED_TEST_LOGS = tests/swap-overcommit.log tests/daemon/merge-nodes.log tests/advisor.log
tests/swap-overcommit.log: $(filter-out $(TIMED_TEST_LOGS) $(EMUHOST_TESTS:.sh=.log),$(TEST_LOGS))
tests/daemon/merge-nodes.log: tests/swap-overcommit.log
tests/advisor.log: tests/daemon/merge-nodes.log
# Domain XML as libvirt users write it, the lifecycle verbs, events, and
# clients served at once (issue 16).
daemon_day2_tests = tests/daemon/domxml.sh tests/daemon/lifecycle.sh tests/daemon/events.sh \
	tests/daemon/events-python.py tests/daemon/concurrency.sh
TESTS += $(daemon_day2_tests)
EXTRA_DIST += $(daemon_day2_tests)

# The figures' tables and printers (unit), and the observability of a
# real samepaged and samepage run: Debian's prometheus and promtool, tmux
# for samepage top, scrapers under load, the contrib/ dashboard and docs.
check_PROGRAMS += tests/test-metrics
TESTS += tests/test-metrics
tests_test_metrics_LDADD = $(TEST_LDADD) $(JSON_GLIB_LIBS) -lm
TESTS += tests/metrics/prometheus.sh tests/metrics/endpoint-errors.sh tests/metrics/top.sh \
	tests/metrics/scrape-load.sh tests/metrics/dashboard.sh
EXTRA_DIST += tests/metrics/prometheus.sh tests/metrics/endpoint-errors.sh tests/metrics/top.sh \
	tests/metrics/scrape-load.sh tests/metrics/scrape-load-client.py tests/metrics/dashboard.sh \
	tests/metrics/common.sh

include tests/emuhost/local.mk
