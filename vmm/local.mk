# vmm/ - the VMM.  Folders by side of the process split
# (docs/process-model.md):
#   machine/  the VM core the VM process runs: KVM VM, vCPUs, boot, clones' machine part
#   devices/  the 8250 UART and the guest control port
#   linux/    Linux bzImage boot
#   vmproc/   the VM process, samepage-vm: setup, sandbox, its channels
#   super/    a supervisor's view of VM processes (samepage run, samepaged)
#   cli/      the `samepage` commands
#   daemon/   samepaged; libvirt/ its libvirt endpoint
#   metrics/  every figure in one table, and its printers (Prometheus, JSON)
# and, shared by every side: a VM's spec (vm-config), states and errors.
noinst_LIBRARIES += libvmm.a
libvmm_a_SOURCES = \
	vmm/guest-abi.h \
	vmm/vm-config.c vmm/vm-config.h vmm/vm-placement.c vmm/vm-placement.h \
	vmm/id-list.c vmm/id-list.h \
	vmm/vm-error.c vmm/vm-error.h \
	vmm/vm-state.c vmm/vm-state.h vmm/vm-heap.c vmm/vm-heap.h \
	vmm/machine/kvm.c vmm/machine/kvm.h \
	vmm/machine/machine.c vmm/machine/machine.h vmm/machine/machine-priv.h \
	vmm/machine/machine-clone.c \
	vmm/machine/vcpu.c \
	vmm/machine/iobus.c vmm/machine/iobus.h \
	vmm/machine/elf-load.c vmm/machine/elf-load.h \
	vmm/machine/pagetable.c vmm/machine/pagetable.h \
	vmm/machine/boot-payload.c \
	vmm/devices/uart8250.c vmm/devices/uart8250.h \
	vmm/devices/ctlport.c \
	vmm/super/vm.c vmm/super/vm.h vmm/super/vm-priv.h \
	vmm/super/vm-clone.c \
	vmm/super/vm-reattach.c \
	vmm/super/vm-threads.c \
	vmm/super/vm-numa.c

# The VM process.
pkglibexec_PROGRAMS += samepage-vm
samepage_vm_SOURCES = \
	vmm/vmproc/main.c vmm/vmproc/vmproc.h \
	vmm/vmproc/control.c vmm/vmproc/events.c vmm/vmproc/clone.c vmm/vmproc/numa.c \
	vmm/vmproc/sandbox.c vmm/vmproc/sandbox.h
samepage_vm_LDADD = libvmm.a libsharing.a librmap.a \
	$(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) $(SECCOMP_LIBS) -lpthread
samepage_vm_CFLAGS = $(AM_CFLAGS) $(SECCOMP_CFLAGS)
# The `samepage` CLI: `run` (VMs in the foreground) and the subcommands that
# manage a running samepaged (list, define, undefine, start, stop, destroy,
# stats, console, clone) through the libvirt client of vmm/libvirt/.
libvmm_a_SOURCES += \
	vmm/cli/cmd.h vmm/cli/cmd-run.c \
	vmm/cli/cmd-client.c vmm/cli/cmd-client.h \
	vmm/cli/cmd-list.c \
	vmm/cli/cmd-lifecycle.c vmm/cli/cmd-numatune.c \
	vmm/cli/cmd-stats.c \
	vmm/cli/cmd-console.c \
	vmm/cli/cmd-clone.c \
	vmm/cli/cmd-top.c vmm/cli/top-view.c vmm/cli/top-view.h \
	vmm/cli/run-status.c vmm/cli/run-status.h \
	vmm/cli/run-logs.c vmm/cli/run-logs.h \
	vmm/cli/stop-signals.c vmm/cli/stop-signals.h

bin_PROGRAMS += samepage
samepage_SOURCES = vmm/cli/main.c
# the client commands live in libvmm.a and call into libsplibvirt.a
samepage_LDADD = libvmm.a libsplibvirt.a libsharing.a librmap.a \
	$(SOUP_LIBS) $(JSON_GLIB_LIBS) $(NCURSES_LIBS) \
	$(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) -lpthread -lm

include vmm/libvirt/local.mk
include vmm/linux/local.mk
include vmm/daemon/local.mk
include vmm/metrics/local.mk
