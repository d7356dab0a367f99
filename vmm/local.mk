# vmm/ - the VMM: KVM VMs and vCPUs, boot loaders, devices, the CLI.
noinst_LIBRARIES += libvmm.a
libvmm_a_SOURCES = \
	vmm/guest-abi.h \
	vmm/kvm.c vmm/kvm.h \
	vmm/vm-config.c vmm/vm-config.h \
	vmm/vm.h

include vmm/libvirt/local.mk
include vmm/linux/local.mk
