# vmm/daemon/ - samepaged: the host daemon and its libvirt backend.
libvmm_a_SOURCES += \
	vmm/daemon/domains.c vmm/daemon/domains.h \
	vmm/daemon/domains-run.c vmm/daemon/domains-clone.c vmm/daemon/domains-numa.c \
	vmm/daemon/domains-priv.h \
	vmm/daemon/events.c \
	vmm/daemon/knobs.c vmm/daemon/knobs.h \
	vmm/daemon/backend.c vmm/daemon/backend-host.c vmm/daemon/backend.h \
	vmm/daemon/metrics.c vmm/daemon/metrics.h

sbin_PROGRAMS += samepaged
samepaged_SOURCES = vmm/daemon/samepaged.c
samepaged_LDADD = libvmm.a libsplibvirt.a libsharing.a librmap.a \
	$(SOUP_LIBS) $(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) -lpthread

systemdunitdir = $(prefix)/lib/systemd/system
dist_systemdunit_DATA = vmm/daemon/samepaged.service vmm/daemon/samepage-guests.service
