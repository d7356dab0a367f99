# vmm/ - the VMM: KVM VMs and vCPUs, boot loaders, devices, the CLI.
noinst_LIBRARIES += libvmm.a
libvmm_a_SOURCES = \
	vmm/guest-abi.h \
	vmm/kvm.c vmm/kvm.h \
	vmm/vm-config.c vmm/vm-config.h \
	vmm/vm.c vmm/vm.h vmm/vm-priv.h \
	vmm/vcpu.c \
	vmm/iobus.c vmm/iobus.h \
	vmm/uart8250.c vmm/uart8250.h \
	vmm/ctlport.c \
	vmm/elf-load.c vmm/elf-load.h \
	vmm/pagetable.c vmm/pagetable.h \
	vmm/boot-payload.c


libvmm_a_SOURCES += vmm/cmd.h vmm/cmd-run.c

bin_PROGRAMS += samepage
samepage_SOURCES = vmm/main.c
samepage_LDADD = libvmm.a libsharing.a librmap.a $(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) -lpthread

include vmm/libvirt/local.mk
include vmm/linux/local.mk
include vmm/daemon/local.mk
include vmm/cli.mk
include vmm/clone.mk
