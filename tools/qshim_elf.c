/* qshim_elf.c - reading an executable's ELF headers for `qshim doctor` (see qshim_elf.h).
 *
 * The file is mapped read-only and every offset is checked against its size before use: the
 * program asked about may be anything. 32- and 64-bit ELF in this machine's byte order.
 * SPDX-License-Identifier: MIT
 */
#include "qshim_elf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct img {
    const unsigned char *p;
    size_t n;
    int cls;
};

/* The headers this file reads, in one shape for both classes. */
struct eh {
    unsigned type, machine, phentsize, phnum, shentsize, shnum, shstrndx;
    uint64_t phoff, shoff;
};
struct ph {
    uint32_t type;
    uint64_t off, vaddr, filesz;
};
struct sh {
    uint32_t name, type, link;
    uint64_t off, size, entsize;
};

static int in(const struct img *m, uint64_t off, uint64_t len) { return off <= m->n && len <= m->n - off; }

/* The NUL-terminated string at <off> of the table [base, base + size), or NULL. */
static const char *str_at(const struct img *m, uint64_t base, uint64_t size, uint64_t off)
{
    if (off >= size || !in(m, base, size))
        return NULL;
    const char *s = (const char *)m->p + base + off;
    return memchr(s, '\0', size - off) != NULL ? s : NULL;
}

/* Reads the Elf32_<T> or Elf64_<T> (by the file's class) at offset <o> into a local X, then
 * runs <assign>; returns -1 from the caller if it is not all inside the file. */
#define CLASS_READ(m, o, T, assign)                                                                          \
    do {                                                                                                     \
        if ((m)->cls == 64) {                                                                                \
            Elf64_##T X;                                                                                     \
            if (!in(m, o, sizeof X))                                                                         \
                return -1;                                                                                   \
            memcpy(&X, (m)->p + (o), sizeof X);                                                              \
            assign;                                                                                          \
        } else {                                                                                             \
            Elf32_##T X;                                                                                     \
            if (!in(m, o, sizeof X))                                                                         \
                return -1;                                                                                   \
            memcpy(&X, (m)->p + (o), sizeof X);                                                              \
            assign;                                                                                          \
        }                                                                                                    \
    } while (0)

#define CLASS_SIZE(m, T) ((m)->cls == 64 ? sizeof(Elf64_##T) : sizeof(Elf32_##T))

static int get_eh(const struct img *m, struct eh *h)
{
    CLASS_READ(m, 0, Ehdr,
               (*h = (struct eh){X.e_type, X.e_machine, X.e_phentsize, X.e_phnum, X.e_shentsize, X.e_shnum,
                                 X.e_shstrndx, X.e_phoff, X.e_shoff}));
    return 0;
}

static int get_ph(const struct img *m, const struct eh *h, unsigned i, struct ph *p)
{
    if (h->phentsize < CLASS_SIZE(m, Phdr))
        return -1;
    CLASS_READ(m, h->phoff + (uint64_t)i * h->phentsize, Phdr,
               (*p = (struct ph){X.p_type, X.p_offset, X.p_vaddr, X.p_filesz}));
    return 0;
}

static int get_sh(const struct img *m, const struct eh *h, unsigned i, struct sh *s)
{
    if (h->shentsize < CLASS_SIZE(m, Shdr))
        return -1;
    CLASS_READ(m, h->shoff + (uint64_t)i * h->shentsize, Shdr,
               (*s = (struct sh){X.sh_name, X.sh_type, X.sh_link, X.sh_offset, X.sh_size, X.sh_entsize}));
    return 0;
}

/* Dynamic entry <i> of the table at <off>: tag and value. */
static int get_dyn(const struct img *m, uint64_t off, uint64_t i, int64_t *tag, uint64_t *val)
{
    CLASS_READ(m, off + i * CLASS_SIZE(m, Dyn), Dyn, (*tag = X.d_tag, *val = X.d_un.d_val));
    return 0;
}

/* Symbol <i> of the table at <off>: name offset, and whether it is defined here. */
static int get_sym(const struct img *m, uint64_t off, uint64_t i, uint32_t *name, int *defined)
{
    CLASS_READ(m, off + i * CLASS_SIZE(m, Sym), Sym, (*name = X.st_name, *defined = X.st_shndx != SHN_UNDEF));
    return 0;
}

/* File offset of virtual address <v>, through the PT_LOAD segments; 0 if none holds it. */
static uint64_t v2off(const struct img *m, const struct eh *h, uint64_t v)
{
    struct ph p;
    for (unsigned i = 0; i < h->phnum; i++)
        if (get_ph(m, h, i, &p) == 0 && p.type == PT_LOAD && v >= p.vaddr && v - p.vaddr < p.filesz)
            return p.off + (v - p.vaddr);
    return 0;
}

/* <src> into dst[len], cut to fit (NULL as ""). */
static void copy(char *dst, size_t len, const char *src)
{
    size_t n = src != NULL ? strnlen(src, len - 1) : 0;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static void read_dynamic(const struct img *m, const struct eh *h, const struct ph *dyn, struct qs_elf *e)
{
    uint64_t strtab = 0, strsz = 0, rpath = UINT64_MAX, runpath = UINT64_MAX, flags1 = 0;
    uint64_t needed[QS_ELF_NEEDED_MAX];
    int n = 0;
    int64_t tag;
    uint64_t val;
    for (uint64_t i = 0; get_dyn(m, dyn->off, i, &tag, &val) == 0 && tag != DT_NULL; i++) {
        if (tag == DT_NEEDED && n < QS_ELF_NEEDED_MAX)
            needed[n++] = val;
        else if (tag == DT_STRTAB)
            strtab = v2off(m, h, val);
        else if (tag == DT_STRSZ)
            strsz = val;
        else if (tag == DT_RPATH)
            rpath = val;
        else if (tag == DT_RUNPATH)
            runpath = val;
        else if (tag == DT_FLAGS_1)
            flags1 = val;
    }
    e->pie = (flags1 & DF_1_PIE) != 0;
    if (strtab == 0)
        return;
    for (int i = 0; i < n; i++) {
        const char *s = str_at(m, strtab, strsz, needed[i]);
        if (s != NULL)
            copy(e->needed[e->nneeded++], QS_ELF_NAME_MAX, s);
    }
    if (rpath != UINT64_MAX)
        copy(e->rpath, sizeof e->rpath, str_at(m, strtab, strsz, rpath));
    if (runpath != UINT64_MAX)
        copy(e->runpath, sizeof e->runpath, str_at(m, strtab, strsz, runpath));
}

/* Go's linker marks every binary it writes with a "Go" note (type 4, the build id). */
static void read_notes(const struct img *m, const struct ph *p, struct qs_elf *e)
{
    uint64_t o = p->off, end = p->off + p->filesz;
    if (!in(m, p->off, p->filesz))
        return;
    while (o + 12 <= end) {
        uint32_t nh[3];
        memcpy(nh, m->p + o, sizeof nh);
        uint64_t name = o + 12, desc = name + ((nh[0] + 3ull) & ~3ull);
        uint64_t next = desc + ((nh[1] + 3ull) & ~3ull);
        if (next > end)
            return;
        if (nh[0] == 3 && memcmp(m->p + name, "Go", 3) == 0 && nh[2] == 4)
            e->go = 1;
        o = next;
    }
}

static void read_sections(const struct img *m, const struct eh *h, struct qs_elf *e)
{
    struct sh names, s, strs;
    if (h->shoff == 0 || h->shnum == 0 || get_sh(m, h, h->shstrndx, &names) != 0)
        return;
    for (unsigned i = 0; i < h->shnum; i++) {
        if (get_sh(m, h, i, &s) != 0)
            return;
        const char *nm = str_at(m, names.off, names.size, s.name);
        if (nm != NULL && (strcmp(nm, ".go.buildinfo") == 0 || strcmp(nm, ".note.go.buildid") == 0))
            e->go = 1;
        /* The full symbol table only for a static program: there it is the only one. */
        if (s.type != SHT_DYNSYM && (s.type != SHT_SYMTAB || e->dynamic))
            continue;
        if (s.entsize == 0 || get_sh(m, h, s.link, &strs) != 0)
            continue;
        for (uint64_t k = 0; k < s.size / s.entsize; k++) {
            uint32_t name;
            int defined;
            if (get_sym(m, s.off, k, &name, &defined) != 0)
                break;
            const char *sym = str_at(m, strs.off, strs.size, name);
            if (sym == NULL || strcmp(sym, "SSL_write") != 0)
                continue;
            if (defined)
                e->defines_ssl = 1;
            else if (s.type == SHT_DYNSYM)
                e->imports_ssl = 1;
        }
    }
}

int qs_elf_read(const char *path, struct qs_elf *e, char *err, size_t errlen)
{
    struct stat st;
    struct img m = {0};
    struct eh h;
    int rc = -1;

    memset(e, 0, sizeof *e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < EI_NIDENT) {
        snprintf(err, errlen, "not ELF");
        close(fd);
        return -1;
    }
    m.n = (size_t)st.st_size;
    void *p = mmap(NULL, m.n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map it: %s", strerror(errno));
        return -1;
    }
    m.p = p;
    if (memcmp(m.p, ELFMAG, SELFMAG) != 0) {
        snprintf(err, errlen, "not ELF");
        goto out;
    }
    m.cls = m.p[EI_CLASS] == ELFCLASS64 ? 64 : m.p[EI_CLASS] == ELFCLASS32 ? 32 : 0;
    if (m.cls == 0 ||
        m.p[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB)) {
        snprintf(err, errlen, "ELF of another class or byte order than this machine's");
        goto out;
    }
    if (get_eh(&m, &h) != 0) {
        snprintf(err, errlen, "truncated ELF header");
        goto out;
    }
    e->cls = m.cls;
    e->machine = (int)h.machine;
    e->type = (int)h.type;
    for (unsigned i = 0; i < h.phnum; i++) {
        struct ph ph;
        if (get_ph(&m, &h, i, &ph) != 0) {
            snprintf(err, errlen, "truncated program headers");
            goto out;
        }
        if (ph.type == PT_INTERP) {
            e->dynamic = 1;
            if (in(&m, ph.off, ph.filesz) && ph.filesz > 0)
                snprintf(e->interp, sizeof e->interp, "%.*s",
                         (int)strnlen((const char *)m.p + ph.off, ph.filesz), (const char *)m.p + ph.off);
        } else if (ph.type == PT_DYNAMIC) {
            e->has_dynamic = 1;
            read_dynamic(&m, &h, &ph, e);
        } else if (ph.type == PT_NOTE) {
            read_notes(&m, &ph, e);
        }
    }
    read_sections(&m, &h, e);
    rc = 0;
out:
    munmap(p, m.n);
    return rc;
}

/* ==== The libraries it loads ==== */

/* Directories from /etc/ld.so.conf and what it includes (read once). */
static char ldconf[64][QS_ELF_NAME_MAX];
static int nldconf = -1;

static void ldconf_file(const char *path, int depth)
{
    FILE *fp = fopen(path, "r");
    char line[QS_ELF_NAME_MAX + 16];
    if (fp == NULL)
        return;
    while (fgets(line, sizeof line, fp) != NULL && nldconf < 64) {
        char *s = line + strspn(line, " \t");
        s[strcspn(s, "#\r\n")] = '\0';
        for (size_t n = strlen(s); n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'); n--)
            s[n - 1] = '\0';
        if (strncmp(s, "include", 7) == 0 && (s[7] == ' ' || s[7] == '\t') && depth < 4) {
            glob_t g;
            char *pat = s + 8 + strspn(s + 8, " \t");
            if (glob(pat, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                    ldconf_file(g.gl_pathv[i], depth + 1);
            globfree(&g);
        } else if (s[0] == '/') {
            copy(ldconf[nldconf++], QS_ELF_NAME_MAX, s);
        }
    }
    fclose(fp);
}

/* Tries <dir>/<name>: the path in <out> if it is an ELF library for <want>'s machine. */
static int try_dir(const char *dir, size_t dirlen, const char *name, const struct qs_elf *want, char *out,
                   struct qs_elf *found)
{
    char path[QS_ELF_NAME_MAX * 2], err[128];
    if (snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, dir, name) >= (int)QS_ELF_NAME_MAX)
        return 0;
    if (access(path, F_OK) != 0 || qs_elf_read(path, found, err, sizeof err) != 0)
        return 0;
    if (found->cls != want->cls || found->machine != want->machine)
        return 0;
    copy(out, QS_ELF_NAME_MAX, path);
    return 1;
}

/* Tries each directory of the ':'-separated <list>, with $ORIGIN as <origin>. */
static int try_list(const char *list, const char *origin, const char *name, const struct qs_elf *want,
                    char *out, struct qs_elf *found)
{
    char dir[QS_ELF_NAME_MAX * 2];
    while (list != NULL && *list != '\0') {
        size_t n = strcspn(list, ":");
        const char *o = NULL;
        if (n > 0) {
            snprintf(dir, sizeof dir, "%.*s", (int)n, list);
            if ((o = strstr(dir, "$ORIGIN")) != NULL || (o = strstr(dir, "${ORIGIN}")) != NULL) {
                char tail[QS_ELF_NAME_MAX];
                copy(tail, sizeof tail, o + (o[1] == '{' ? 9 : 7));
                snprintf(dir + (o - dir), sizeof dir - (size_t)(o - dir), "%s%s", origin, tail);
            }
            if (try_dir(dir, strlen(dir), name, want, out, found))
                return 1;
        }
        list += n + (list[n] == ':');
    }
    return 0;
}

/* Finds <name>, needed by <by> (at <by_path>), as ld.so would: RPATH (when there is no
 * RUNPATH), LD_LIBRARY_PATH, RUNPATH, ld.so.conf, the default directories. */
static int find_lib(const char *name, const char *by_path, const struct qs_elf *by, const struct qs_elf *prog,
                    char *out, struct qs_elf *found)
{
    static const char *const defaults[] = {
#if defined(__x86_64__)
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
#elif defined(__aarch64__)
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
#endif
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib"
    };
    char origin[QS_ELF_NAME_MAX];
    const char *slash = strrchr(by_path, '/');

    snprintf(origin, sizeof origin, "%.*s", slash != NULL ? (int)(slash - by_path) : 1,
             slash != NULL ? by_path : ".");
    if (strchr(name, '/') != NULL)
        return try_dir(".", 1, name, prog, out, found) ||
               (name[0] == '/' && try_dir("", 0, name + 1, prog, out, found));
    if (by->runpath[0] == '\0' && try_list(by->rpath, origin, name, prog, out, found))
        return 1;
    if (try_list(getenv("LD_LIBRARY_PATH"), origin, name, prog, out, found) ||
        try_list(by->runpath, origin, name, prog, out, found))
        return 1;
    if (nldconf < 0) {
        nldconf = 0;
        ldconf_file("/etc/ld.so.conf", 0);
    }
    for (int i = 0; i < nldconf; i++)
        if (try_dir(ldconf[i], strlen(ldconf[i]), name, prog, out, found))
            return 1;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (try_dir(defaults[i], strlen(defaults[i]), name, prog, out, found))
            return 1;
    return 0;
}

int qs_elf_closure(const char *prog_path, const struct qs_elf *prog, struct qs_elf_lib *libs)
{
    struct qs_elf *cur = malloc(sizeof *cur), *found = malloc(sizeof *found);
    int n = 0;

    if (cur == NULL || found == NULL) {
        free(cur);
        free(found);
        return 0;
    }
    /* libs[-1] is the program: walk it first, then each library found, in order. */
    for (int at = -1; at < n; at++) {
        const char *by_path = at < 0 ? prog_path : libs[at].path;
        char err[128];
        if (at < 0)
            *cur = *prog;
        else if (libs[at].path[0] == '\0' || qs_elf_read(by_path, cur, err, sizeof err) != 0)
            continue;
        for (int k = 0; k < cur->nneeded && n < QS_ELF_LIBS_MAX; k++) {
            int seen = 0;
            for (int j = 0; j < n && !seen; j++)
                seen = strcmp(libs[j].name, cur->needed[k]) == 0;
            if (seen)
                continue;
            struct qs_elf_lib *l = &libs[n++];
            memset(l, 0, sizeof *l);
            copy(l->name, sizeof l->name, cur->needed[k]);
            l->parent = at;
            if (find_lib(l->name, by_path, cur, prog, l->path, found))
                l->defines_ssl = found->defines_ssl;
        }
    }
    free(cur);
    free(found);
    return n;
}
