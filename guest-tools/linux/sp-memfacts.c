/* SPDX-License-Identifier: MIT */
/*
 * sp-memfacts.c - report what a Linux guest sees of its memory and CPUs.
 *
 * A small static program for the busybox initramfs of Linux guests
 * (guest-tools/linux/init runs it).  It prints one line on stdout (the
 * console) that tests parse:
 *
 *   SP-GUEST-FACTS mem_total_kb=N mem_free_kb=N e820_ram_bytes=N nproc=N cpus_possible=N
 *
 * mem_total_kb/mem_free_kb come from /proc/meminfo; e820_ram_bytes sums the
 * "System RAM" ranges of the firmware memory map (/sys/firmware/memmap), i.e.
 * exactly the RAM the VMM described, before the kernel reserves anything;
 * nproc is the number of online CPUs and cpus_possible the CPUs the firmware
 * tables announced.  A value that cannot be read is printed as -1.
 *
 * Built with the host's libc, statically, so it needs nothing else in the
 * guest.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long meminfo_kb(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long val = -1;
    size_t klen = strlen(key);

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            val = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return val;
}

static int read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");

    if (!f)
        return -1;
    if (!fgets(buf, (int)len, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* Sum of the "System RAM" entries of /sys/firmware/memmap/N/{start,end,type}. */
static long long e820_ram_bytes(void)
{
    DIR *d = opendir("/sys/firmware/memmap");
    struct dirent *de;
    long long total = 0;
    int found = 0;

    if (!d)
        return -1;
    while ((de = readdir(d))) {
        char path[300], buf[64];
        unsigned long long start, end;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/sys/firmware/memmap/%s/type", de->d_name);
        if (read_line(path, buf, sizeof buf) || strcmp(buf, "System RAM") != 0)
            continue;
        snprintf(path, sizeof path, "/sys/firmware/memmap/%s/start", de->d_name);
        if (read_line(path, buf, sizeof buf))
            continue;
        start = strtoull(buf, NULL, 0);
        snprintf(path, sizeof path, "/sys/firmware/memmap/%s/end", de->d_name);
        if (read_line(path, buf, sizeof buf))
            continue;
        end = strtoull(buf, NULL, 0);
        if (end >= start) {
            total += (long long)(end - start + 1);
            found = 1;
        }
    }
    closedir(d);
    return found ? total : -1;
}

/* Count CPUs in a list such as "0-3,5". */
static long cpu_list_count(const char *path)
{
    char buf[256], *p;
    long n = 0;

    if (read_line(path, buf, sizeof buf))
        return -1;
    p = buf;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;

        if (end == p)
            return -1;
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p || b < a)
                return -1;
        }
        n += b - a + 1;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

int main(void)
{
    printf("SP-GUEST-FACTS mem_total_kb=%lld mem_free_kb=%lld e820_ram_bytes=%lld nproc=%ld "
           "cpus_possible=%ld\n",
           meminfo_kb("MemTotal"), meminfo_kb("MemFree"), e820_ram_bytes(),
           sysconf(_SC_NPROCESSORS_ONLN), cpu_list_count("/sys/devices/system/cpu/possible"));
    return fflush(stdout) == 0 ? 0 : 1;
}
