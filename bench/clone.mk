# bench/clone.mk - cost of VM clones (issue 4 targets; not a test).
noinst_PROGRAMS += bench/clone-bench
bench_clone_bench_SOURCES = bench/clone-bench.c
bench_clone_bench_LDADD = libharness.a libvmm.a libsharing.a librmap.a $(GLIB_LIBS) \
	$(NUMA_LIBS) $(XXHASH_LIBS) -lpthread
