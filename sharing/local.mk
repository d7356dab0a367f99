# sharing/ - the deduplication engine.
noinst_LIBRARIES += libsharing.a
libsharing_a_SOURCES =
