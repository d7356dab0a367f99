# bench/ - samepage against the kernel's KSM, and the cost of VM clones
# (see bench/README.md).  Both drive real VMs through tests/lib/'s harness;
# map-cost and store-latency measure one part alone (mappings, the swap
# store), without VMs.
bench_ldadd = libharness.a libvmm.a libsharing.a librmap.a $(GLIB_LIBS) $(NUMA_LIBS) \
	$(XXHASH_LIBS) $(LZ4_LIBS) -lpthread
noinst_PROGRAMS += bench/sp-bench
bench_sp_bench_SOURCES = bench/sp-bench.c
bench_sp_bench_LDADD = $(bench_ldadd)
noinst_PROGRAMS += bench/clone-bench
bench_clone_bench_SOURCES = bench/clone-bench.c
bench_clone_bench_LDADD = $(bench_ldadd)
dist_noinst_SCRIPTS += bench/swap-bench bench/numa-bench bench/numa-bench-inner.sh \
	bench/guest-density bench/guest-density-inner.sh
EXTRA_DIST += bench/numa-migrate.c
noinst_PROGRAMS += bench/map-cost
bench_map_cost_SOURCES = bench/map-cost.c
bench_map_cost_LDADD = $(GLIB_LIBS)
noinst_PROGRAMS += bench/store-latency
bench_store_latency_SOURCES = bench/store-latency.c
bench_store_latency_LDADD = librmap.a $(GLIB_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) -lpthread
