# tests/ - unit tests (GTest, TAP), integration tests with real KVM VMs, CLI tests.
TEST_LDADD = libvmm.a libsharing.a librmap.a $(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) -lpthread

# Unit tests.
check_PROGRAMS += tests/test-vm-config tests/test-uart tests/test-elf tests/test-pagetable
TESTS += tests/test-vm-config tests/test-uart tests/test-elf tests/test-pagetable
tests_test_vm_config_LDADD = $(TEST_LDADD)
tests_test_uart_LDADD = $(TEST_LDADD)
tests_test_elf_LDADD = $(TEST_LDADD)
tests_test_pagetable_LDADD = $(TEST_LDADD)


# Real VMs on this host's /dev/kvm.
noinst_LIBRARIES += libharness.a
libharness_a_SOURCES = tests/vm-harness.c tests/vm-harness.h
check_PROGRAMS += tests/test-vm-run
TESTS += tests/test-vm-run
tests_test_vm_run_LDADD = libharness.a $(TEST_LDADD)
check_PROGRAMS += tests/test-sharing
TESTS += tests/test-sharing
tests_test_sharing_LDADD = libharness.a $(TEST_LDADD)

# Command-line behaviour with real VMs.
TESTS += tests/cli-errors.sh
EXTRA_DIST += tests/cli-errors.sh

# samepaged with real VMs, driven by Debian's virsh, python3-libvirt and
# prometheus-libvirt-exporter.
TESTS += tests/daemon/virsh.sh tests/daemon/restart.sh tests/daemon/exporter.sh \
	tests/daemon/python-libvirt.py
EXTRA_DIST += tests/daemon/common.sh tests/daemon/virsh.sh tests/daemon/restart.sh \
	tests/daemon/exporter.sh tests/daemon/python-libvirt.py

include tests/emuhost/local.mk
include tests/clone.mk
