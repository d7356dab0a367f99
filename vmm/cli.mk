# vmm/cli.mk - the `samepage` subcommands that manage a running samepaged
# (list, define, undefine, start, stop, destroy, stats, console), the
# libvirt remote-protocol client they use, and their test.
libsplibvirt_a_SOURCES += vmm/libvirt/client.c vmm/libvirt/client.h

libvmm_a_SOURCES += \
	vmm/cmd-client.c vmm/cmd-client.h \
	vmm/cmd-list.c \
	vmm/cmd-lifecycle.c \
	vmm/cmd-stats.c \
	vmm/cmd-console.c \
	vmm/cmd-clone.c

# the client commands live in libvmm.a and call into libsplibvirt.a
samepage_LDADD += libsplibvirt.a $(GLIB_LIBS) -lm

TESTS += tests/cli-daemon.sh tests/daemon/clone.sh tests/clone-run-status.sh
EXTRA_DIST += tests/cli-daemon.sh tests/daemon/clone.sh tests/clone-run-status.sh
