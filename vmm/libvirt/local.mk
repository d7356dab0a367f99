# vmm/libvirt/ fragment: the libvirt remote-protocol endpoint (libsplibvirt.a),
# its unit tests, the client tests with Debian's virsh/python3-libvirt/
# prometheus-libvirt-exporter, and the decoder fuzz target.
noinst_LIBRARIES += libsplibvirt.a
libsplibvirt_a_SOURCES = \
	vmm/libvirt/protocol.h \
	vmm/libvirt/xdr.c vmm/libvirt/xdr.h \
	vmm/libvirt/message.c vmm/libvirt/message.h \
	vmm/libvirt/typed-params.c vmm/libvirt/typed-params.h \
	vmm/libvirt/backend.h \
	vmm/libvirt/session.c vmm/libvirt/session.h \
	vmm/libvirt/procs.h vmm/libvirt/procs-common.c \
	vmm/libvirt/procs-connect.c vmm/libvirt/procs-domain.c \
	vmm/libvirt/procs-stats.c vmm/libvirt/procs-node.c \
	vmm/libvirt/procs-lifecycle.c \
	vmm/libvirt/procs-vcpu.c vmm/libvirt/procs-host.c vmm/libvirt/procs-memtune.c vmm/libvirt/procs-numatune.c \
	vmm/libvirt/procs-events.c \
	vmm/libvirt/capabilities.c vmm/libvirt/capabilities.h \
	vmm/libvirt/procs-samepage.c \
	vmm/libvirt/server.c vmm/libvirt/server.h \
	vmm/libvirt/xmltree.c vmm/libvirt/xmltree.h \
	vmm/libvirt/domxml.c vmm/libvirt/domxml-format.c vmm/libvirt/domxml.h \
	vmm/libvirt/client.c vmm/libvirt/client.h \
	vmm/id-list.c vmm/id-list.h

splibvirt_test_ldadd = libsplibvirt.a $(GLIB_LIBS)

# The in-memory backend used by the tests and the fuzz target (not the product).
check_LIBRARIES = libsplibvirt-testbackend.a
libsplibvirt_testbackend_a_SOURCES = \
	tests/libvirt/test-backend.c tests/libvirt/test-backend.h

check_PROGRAMS += tests/libvirt/sp-libvirt-testd
tests_libvirt_sp_libvirt_testd_SOURCES = tests/libvirt/sp-libvirt-testd.c
tests_libvirt_sp_libvirt_testd_LDADD = libsplibvirt-testbackend.a $(splibvirt_test_ldadd)

libvirt_unit_tests = tests/libvirt/test-libvirt-xdr tests/libvirt/test-libvirt-message \
	tests/libvirt/test-libvirt-domxml
check_PROGRAMS += $(libvirt_unit_tests)
TESTS += $(libvirt_unit_tests)
tests_libvirt_test_libvirt_xdr_LDADD = $(splibvirt_test_ldadd)
tests_libvirt_test_libvirt_message_LDADD = libsplibvirt-testbackend.a $(splibvirt_test_ldadd)
tests_libvirt_test_libvirt_domxml_LDADD = $(splibvirt_test_ldadd)

# Client tests: Debian's virsh, python3-libvirt and prometheus-libvirt-exporter
# against sp-libvirt-testd (the real server code, in-memory test backend).
libvirt_client_tests = tests/libvirt/libvirt-virsh.sh tests/libvirt/libvirt-access.sh \
	tests/libvirt/libvirt-exporter.sh tests/libvirt/libvirt-python.py \
	tests/libvirt/libvirt-robust.py tests/libvirt/libvirt-keepalive30.py
TESTS += $(libvirt_client_tests)
EXTRA_DIST += $(libvirt_client_tests) tests/libvirt/common.sh tests/libvirt/lvtest.py

# libFuzzer target for the decoder, built with Debian's clang (whatever CC
# configure chose for the rest), and the bounded run as a TAP test.
FUZZ_CC = clang
libvirt_fuzz_sources = tests/fuzz/fuzz-libvirt.c tests/libvirt/test-backend.c \
	$(filter %.c,$(libsplibvirt_a_SOURCES))
tests/fuzz/fuzz-libvirt: $(libvirt_fuzz_sources) $(filter %.h,$(libsplibvirt_a_SOURCES))
	$(AM_V_CCLD)$(MKDIR_P) tests/fuzz && $(FUZZ_CC) -std=gnu11 -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir) -I$(top_builddir) -D_GNU_SOURCE $(GLIB_CFLAGS) \
	-o $@ $(addprefix $(top_srcdir)/,$(libvirt_fuzz_sources)) $(GLIB_LIBS)
domxml_fuzz_sources = tests/fuzz/fuzz-domxml.c vmm/libvirt/domxml.c vmm/id-list.c \
	vmm/libvirt/domxml-format.c vmm/libvirt/xmltree.c
tests/fuzz/fuzz-domxml: $(domxml_fuzz_sources) vmm/libvirt/domxml.h vmm/libvirt/xmltree.h vmm/id-list.h
	$(AM_V_CCLD)$(MKDIR_P) tests/fuzz && $(FUZZ_CC) -std=gnu11 -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir) -I$(top_builddir) -D_GNU_SOURCE $(GLIB_CFLAGS) -o $@ \
	$(addprefix $(top_srcdir)/,$(domxml_fuzz_sources)) $(GLIB_LIBS)
# The VM process protocol's decoder, as the supervisor meets it: the
# decoder and the supervisor's handlers built for fuzzing, the rest of
# the program linked from the libraries.
vmproto_fuzz_sources = tests/fuzz/fuzz-vmproto.c sharing/proto.c vmm/super/vm.c
tests/fuzz/fuzz-vmproto: $(vmproto_fuzz_sources) libvmm.a libsharing.a librmap.a
	$(AM_V_CCLD)$(MKDIR_P) tests/fuzz && $(FUZZ_CC) -std=gnu11 -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir) -I$(top_builddir) -D_GNU_SOURCE -DPKGLIBEXECDIR=\"$(pkglibexecdir)\" \
	$(GLIB_CFLAGS) -Wl,--allow-multiple-definition -o $@ \
	$(addprefix $(top_srcdir)/,$(vmproto_fuzz_sources)) libvmm.a libsharing.a librmap.a \
	$(GLIB_LIBS) $(NUMA_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) -lpthread
tests/fuzz/fuzz-libvirt.log: tests/fuzz/fuzz-libvirt tests/fuzz/fuzz-domxml tests/fuzz/fuzz-vmproto
TESTS += tests/fuzz/fuzz-libvirt.sh
CLEANFILES += tests/fuzz/fuzz-libvirt tests/fuzz/fuzz-domxml tests/fuzz/fuzz-vmproto
EXTRA_DIST += tests/fuzz/fuzz-libvirt.sh tests/fuzz/fuzz-libvirt.c tests/fuzz/fuzz-domxml.c \
	tests/fuzz/corpus-domxml tests/fuzz/fuzz-vmproto.c tests/fuzz/corpus-vmproto \
	tests/fuzz/make-libvirt-seeds.py tests/fuzz/corpus-libvirt
