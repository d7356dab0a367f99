# rmap/ - the guest memory model (see the overview comment of each file).
noinst_LIBRARIES += librmap.a
librmap_a_SOURCES = \
	rmap/guest-mem.c rmap/guest-mem.h \
	rmap/frame-pool.c rmap/frame-pool.h \
	rmap/rmap.c rmap/rmap.h rmap/rmap-priv.h rmap/clone-group.c \
	rmap/clone-file.c rmap/clone-file.h \
	rmap/clone-layout.c rmap/clone-layout.h \
	rmap/vm-layers.c rmap/vm-layers.h \
	rmap/swap-store.c rmap/swap-store.h
librmap_a_CFLAGS = $(AM_CFLAGS) $(LZ4_CFLAGS) $(XXHASH_CFLAGS)
