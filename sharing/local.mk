# sharing/ - the deduplication engine: the index (the supervisor's side),
# the agent (the VM process's side) and the protocol between them.
noinst_LIBRARIES += libsharing.a
libsharing_a_SOURCES = \
	sharing/proto.c sharing/proto.h \
	sharing/engine.c sharing/engine.h sharing/engine-priv.h \
	sharing/knobs.c sharing/knobs.h sharing/advisor.c \
	sharing/scan.c sharing/exchange.c sharing/pools.c \
	sharing/mappers.c sharing/group-frames.c sharing/group-giveback.c \
	sharing/counters.c sharing/numa-rehome.c \
	sharing/swap.c sharing/swap-evict.c sharing/swap-layers.c \
	sharing/swap-adopt.c sharing/swap-priv.h \
	sharing/index-map.c sharing/index-map.h \
	sharing/vec.h \
	sharing/agent.c sharing/agent.h sharing/agent-priv.h \
	sharing/agent-scan.c sharing/agent-merge.c sharing/agent-swap.c \
	sharing/agent-compact.c
libsharing_a_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
