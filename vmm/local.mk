# vmm/ - the VMM: KVM VMs and vCPUs, clones, boot loaders, devices, the CLI.
noinst_LIBRARIES += libvmm.a
libvmm_a_SOURCES = \
	vmm/guest-abi.h \
	vmm/kvm.c vmm/kvm.h \
	vmm/vm-config.c vmm/vm-config.h \
	vmm/vm.c vmm/vm.h vmm/vm-priv.h \
	vmm/vm-error.c vmm/vm-error.h \
	vmm/vm-clone.c \
	vmm/vcpu.c \
	vmm/iobus.c vmm/iobus.h \
	vmm/uart8250.c vmm/uart8250.h \
	vmm/ctlport.c \
	vmm/elf-load.c vmm/elf-load.h \
	vmm/pagetable.c vmm/pagetable.h \
	vmm/boot-payload.c

# The `samepage` CLI: `run` (VMs in the foreground) and the subcommands that
# manage a running samepaged (list, define, undefine, start, stop, destroy,
# stats, console, clone) through the libvirt client of vmm/libvirt/.
libvmm_a_SOURCES += \
	vmm/cmd.h vmm/cmd-run.c \
	vmm/cmd-client.c vmm/cmd-client.h \
	vmm/cmd-list.c \
	vmm/cmd-lifecycle.c \
	vmm/cmd-stats.c \
	vmm/cmd-console.c \
	vmm/cmd-clone.c

bin_PROGRAMS += samepage
samepage_SOURCES = vmm/main.c
# the client commands live in libvmm.a and call into libsplibvirt.a
samepage_LDADD = libvmm.a libsplibvirt.a libsharing.a librmap.a \
	$(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) -lpthread -lm

include vmm/libvirt/local.mk
include vmm/linux/local.mk
include vmm/daemon/local.mk
