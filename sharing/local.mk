# sharing/ - the deduplication engine.
noinst_LIBRARIES += libsharing.a
libsharing_a_SOURCES = \
	sharing/engine.c sharing/engine.h sharing/engine-priv.h \
	sharing/knobs.c sharing/knobs.h \
	sharing/scan.c sharing/merge.c sharing/mappers.c sharing/group-frames.c \
	sharing/counters.c \
	sharing/u64map.c sharing/u64map.h
libsharing_a_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
