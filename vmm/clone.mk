# vmm/clone.mk - VM clones (issue 4): the clone operation and the clone
# group's frame file.
libvmm_a_SOURCES += vmm/vm-clone.c
librmap_a_SOURCES += rmap/clone-file.c rmap/clone-file.h rmap/clone-layout.c rmap/clone-layout.h
