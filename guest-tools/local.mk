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
