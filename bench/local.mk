# bench/ - samepage against the kernel's KSM (see bench/README.md).
noinst_PROGRAMS += bench/sp-bench
bench_sp_bench_SOURCES = bench/sp-bench.c
bench_sp_bench_LDADD = libharness.a libvmm.a libsharing.a librmap.a $(GLIB_LIBS) $(NUMA_LIBS) \
	$(XXHASH_LIBS) -lpthread
include bench/clone.mk
