# tests/emuhost/ - the emulated-host tier (docs/emuhost.md).  Each test boots
# QEMU TCG with SVM and two NUMA nodes; the images come from
# scripts/guest-images.sh (cached in $(top_builddir)/images or $SAMEPAGE_IMAGES).
EMUHOST_TESTS = tests/emuhost/emuhost-basic.sh tests/emuhost/emuhost-linux.sh tests/emuhost/emuhost-share.sh \
	tests/emuhost/emuhost-numa.sh
TESTS += $(EMUHOST_TESTS)
dist_noinst_SCRIPTS += \
	scripts/guest-images.sh \
	scripts/in-emuhost.sh \
	tests/emuhost/emuhost-lib.sh \
	tests/emuhost/run-in-emuhost.sh \
	tests/emuhost/emuhost-init \
	tests/emuhost/inner-basic.sh tests/emuhost/inner-linux.sh tests/emuhost/inner-share.sh \
	tests/emuhost/inner-numa.sh \
	$(EMUHOST_TESTS)
EXTRA_DIST += guest-tools/linux/init guest-tools/linux/sp-memfacts.c

# Holds one KVM VM open inside every emulated host (emuhost-init, and
# kvm-keeper.c on why); scripts/guest-images.sh copies it into the
# emulated host's initramfs.  Built with `make`: in-emuhost.sh needs it.
noinst_PROGRAMS += tests/emuhost/kvm-keeper
tests_emuhost_kvm_keeper_SOURCES = tests/emuhost/kvm-keeper.c

# Build (or refresh the cache of) the images without running a test.
.PHONY: images
images: all
	$(SHELL) $(top_srcdir)/scripts/guest-images.sh --builddir $(top_builddir) all

# The emulated-host tests run last and one at a time: each one is a QEMU
# (TCG, 2 vCPUs) that wants both cores of a 2-core CI machine, and booting
# Linux guests inside it slows down several-fold when it competes with
# other tests (emuhost-share missed its 310 s deadline that way once).
tests/emuhost/emuhost-basic.log: $(filter-out $(EMUHOST_TESTS:.sh=.log),$(TEST_LOGS))
tests/emuhost/emuhost-linux.log: tests/emuhost/emuhost-basic.log
tests/emuhost/emuhost-share.log: tests/emuhost/emuhost-linux.log
tests/emuhost/emuhost-numa.log: tests/emuhost/emuhost-share.log
