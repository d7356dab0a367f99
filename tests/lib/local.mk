# tests/lib/ - the harness that runs real VMs inside a test or benchmark
# process (vm-harness.h) and its helpers for clones (clone-harness.h);
# tests/ and bench/ link libharness.a.
noinst_LIBRARIES += libharness.a
libharness_a_SOURCES = \
	tests/lib/vm-harness.c tests/lib/vm-harness.h \
	tests/lib/clone-harness.c tests/lib/clone-harness.h
