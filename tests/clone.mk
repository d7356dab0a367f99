# tests/clone.mk - VM clones (issue 4) with real KVM VMs.
check_PROGRAMS += tests/test-clone
TESTS += tests/test-clone
tests_test_clone_LDADD = libharness.a $(TEST_LDADD)
TESTS += tests/clone-cli.sh
EXTRA_DIST += tests/clone-cli.sh
