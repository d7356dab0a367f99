# vmm/linux/ - Linux bzImage boot (64-bit boot protocol).  Pure helpers
# (header checks, placement, zero page, e820, entry state, MP table, CPUID)
# plus linux-boot.c, the entry points vm.c calls.
# They are part of libvmm.a (vm.c calls them).
libvmm_a_SOURCES += \
	vmm/linux/layout.h \
	vmm/linux/bzimage.c vmm/linux/bzimage.h \
	vmm/linux/e820.c vmm/linux/e820.h \
	vmm/linux/boot-params.c vmm/linux/boot-params.h \
	vmm/linux/entry.c vmm/linux/entry.h \
	vmm/linux/mptable.c vmm/linux/mptable.h \
	vmm/linux/cpuid.c vmm/linux/cpuid.h \
	vmm/linux/acpi.c vmm/linux/acpi.h \
	vmm/linux/power.c vmm/linux/power.h \
	vmm/linux/linux-boot.c vmm/linux/linux-boot.h

linux_test_ldadd = $(TEST_LDADD)

check_PROGRAMS += tests/test-linux-bzimage tests/test-linux-boot-params tests/test-linux-tables
TESTS += tests/test-linux-bzimage tests/test-linux-boot-params tests/test-linux-tables
tests_test_linux_bzimage_SOURCES = tests/test-linux-bzimage.c tests/linux-fake-bzimage.h
tests_test_linux_bzimage_LDADD = $(linux_test_ldadd)
tests_test_linux_boot_params_SOURCES = tests/test-linux-boot-params.c tests/linux-fake-bzimage.h
tests_test_linux_boot_params_LDADD = $(linux_test_ldadd)
tests_test_linux_tables_SOURCES = tests/test-linux-tables.c
tests_test_linux_tables_LDADD = $(linux_test_ldadd)

# The real Debian kernel test needs the image cache: build it first.
check_PROGRAMS += tests/test-linux-real-kernel
TESTS += tests/test-linux-real-kernel
tests_test_linux_real_kernel_SOURCES = tests/test-linux-real-kernel.c
tests_test_linux_real_kernel_LDADD = $(linux_test_ldadd)
# (guest-images.sh is cached: about a second when the images are current).
# check_DATA is built before any test runs.
check_DATA = linux-images
.PHONY: linux-images
linux-images:
	$(SHELL) $(top_srcdir)/scripts/guest-images.sh --builddir $(top_builddir) --quiet linux-guest
