# guest-tools/ - freestanding payloads run by samepage VMs (see vmm/guest-abi.h).
PAYLOAD_RT = guest-tools/rt/start.S guest-tools/rt/sp-rt.c guest-tools/rt/sp-rt.h

payloaddir = $(pkglibexecdir)/payloads
payload_PROGRAMS = guest-tools/hello.elf guest-tools/crash.elf

guest_tools_hello_elf_SOURCES = guest-tools/hello.c $(PAYLOAD_RT)
guest_tools_hello_elf_CFLAGS = $(guest_cflags)
guest_tools_hello_elf_CCASFLAGS = $(guest_cflags)
guest_tools_hello_elf_LDFLAGS = $(guest_ldflags)
guest_tools_hello_elf_LDADD =
EXTRA_guest_tools_hello_elf_DEPENDENCIES = guest-tools/payload.ld

guest_tools_crash_elf_SOURCES = guest-tools/crash.c $(PAYLOAD_RT)
guest_tools_crash_elf_CFLAGS = $(guest_cflags)
guest_tools_crash_elf_CCASFLAGS = $(guest_cflags)
guest_tools_crash_elf_LDFLAGS = $(guest_ldflags)
guest_tools_crash_elf_LDADD =
EXTRA_guest_tools_crash_elf_DEPENDENCIES = guest-tools/payload.ld

EXTRA_DIST += guest-tools/payload.ld

# memload: the load generator (docs/memload.md).  The pure parts (content,
# arguments, record table) are also built for the host unit tests below.
MEMLOAD_PURE = \
	guest-tools/memload-args.c guest-tools/memload-args.h \
	guest-tools/memload-content.c guest-tools/memload-content.h \
	guest-tools/memload-table.c guest-tools/memload-table.h
payload_PROGRAMS += guest-tools/memload.elf
guest_tools_memload_elf_SOURCES = $(MEMLOAD_PURE) \
	guest-tools/memload.c guest-tools/memload.h \
	guest-tools/memload-fill.c guest-tools/memload-verify.c \
	guest-tools/memload-churn.c guest-tools/memload-command.c \
	$(PAYLOAD_RT)
guest_tools_memload_elf_CFLAGS = $(guest_cflags)
guest_tools_memload_elf_CCASFLAGS = $(guest_cflags)
guest_tools_memload_elf_LDFLAGS = $(guest_ldflags)
guest_tools_memload_elf_LDADD =
EXTRA_guest_tools_memload_elf_DEPENDENCIES = guest-tools/payload.ld

check_PROGRAMS += tests/test-memload-content tests/test-memload-args tests/test-memload-table
TESTS += tests/test-memload-content tests/test-memload-args tests/test-memload-table
tests_test_memload_content_SOURCES = tests/test-memload-content.c $(MEMLOAD_PURE)
tests_test_memload_content_LDADD = $(GLIB_LIBS)
tests_test_memload_args_SOURCES = tests/test-memload-args.c $(MEMLOAD_PURE)
tests_test_memload_args_LDADD = $(GLIB_LIBS)
tests_test_memload_table_SOURCES = tests/test-memload-table.c $(MEMLOAD_PURE)
tests_test_memload_table_LDADD = $(GLIB_LIBS)
