# tests/clone.mk - VM clones (issue 4) with real KVM VMs.
check_PROGRAMS += tests/test-clone
TESTS += tests/test-clone
tests_test_clone_SOURCES = tests/test-clone.c tests/clone-harness.c tests/clone-harness.h
tests_test_clone_LDADD = libharness.a $(TEST_LDADD)
check_PROGRAMS += tests/test-rmap
TESTS += tests/test-rmap
tests_test_rmap_SOURCES = tests/test-rmap.c tests/clone-harness.c tests/clone-harness.h
tests_test_rmap_LDADD = libharness.a $(TEST_LDADD)
TESTS += tests/clone-cli.sh
EXTRA_DIST += tests/clone-cli.sh
