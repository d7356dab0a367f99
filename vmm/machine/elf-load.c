/* SPDX-License-Identifier: MIT */
/* elf-load.c - payload ELF validation and loading (see elf-load.h). */
#include <elf.h>
#include <string.h>

#include "vmm/machine/elf-load.h"
#include "vmm/guest-abi.h"
#include "vmm/vm-error.h"

#define ELF_ERROR(error, ...)                                                                      \
    g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_IMAGE, "payload: " __VA_ARGS__)

bool sp_elf_parse(const uint8_t *data, size_t size, SpElfImage *out, GError **error)
{
    Elf64_Ehdr eh;
    memset(out, 0, sizeof(*out));
    if (size < SELFMAG || memcmp(data, ELFMAG, SELFMAG) != 0) {
        ELF_ERROR(error, "not an ELF file");
        return false;
    }
    if (size < sizeof(eh)) {
        ELF_ERROR(error, "truncated ELF header (%zu bytes)", size);
        return false;
    }
    memcpy(&eh, data, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64) {
        ELF_ERROR(error,
                  "wrong architecture (need 64-bit little-endian x86-64, found class %u, "
                  "machine %u)",
                  eh.e_ident[EI_CLASS], eh.e_machine);
        return false;
    }
    if (eh.e_type != ET_EXEC) {
        ELF_ERROR(error, "not a static executable (ELF type %u; build with -static -no-pie)",
                  eh.e_type);
        return false;
    }
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > size ||
        (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff) {
        ELF_ERROR(error, "program headers missing or truncated");
        return false;
    }
    bool entry_ok = false;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC) {
            ELF_ERROR(error, "dynamically linked (payloads must be static)");
            return false;
        }
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (out->nseg == SP_ELF_MAX_SEGMENTS) {
            ELF_ERROR(error, "more than %d loadable segments", SP_ELF_MAX_SEGMENTS);
            return false;
        }
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > size || ph.p_filesz > size - ph.p_offset) {
            ELF_ERROR(error, "segment %u lies outside the file (truncated?)", i);
            return false;
        }
        if (ph.p_vaddr < SP_PAYLOAD_MIN_GPA || ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
            ph.p_vaddr + ph.p_memsz > SP_PAYLOAD_MAX_GPA) {
            ELF_ERROR(error, "segment %u at 0x%llx+0x%llx is outside 0x%llx..0x%llx", i,
                      (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz,
                      SP_PAYLOAD_MIN_GPA, SP_PAYLOAD_MAX_GPA);
            return false;
        }
        out->seg[out->nseg++] = (SpElfSegment){
            .gpa = ph.p_vaddr, .offset = ph.p_offset, .filesz = ph.p_filesz, .memsz = ph.p_memsz};
        if (ph.p_vaddr + ph.p_memsz > out->end)
            out->end = ph.p_vaddr + ph.p_memsz;
        if ((ph.p_flags & PF_X) && eh.e_entry >= ph.p_vaddr && eh.e_entry < ph.p_vaddr + ph.p_memsz)
            entry_ok = true;
    }
    if (out->nseg == 0) {
        ELF_ERROR(error, "no loadable segment");
        return false;
    }
    if (!entry_ok) {
        ELF_ERROR(error, "entry point 0x%llx is not in an executable segment",
                  (unsigned long long)eh.e_entry);
        return false;
    }
    out->entry = eh.e_entry;
    return true;
}

bool sp_elf_load(const SpElfImage *img, const uint8_t *data, SpGuestMem *mem, GError **error)
{
    for (unsigned i = 0; i < img->nseg; i++) {
        const SpElfSegment *s = &img->seg[i];
        uint8_t *dst = sp_guest_mem_ptr(mem, s->gpa, s->memsz);
        if (!dst) {
            ELF_ERROR(error, "needs RAM up to 0x%llx but the VM has %llu MiB",
                      (unsigned long long)(s->gpa + s->memsz),
                      (unsigned long long)(mem->size >> 20));
            return false;
        }
        memcpy(dst, data + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
    }
    return true;
}
