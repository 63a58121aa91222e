/* qshim_elf.h - what `qshim doctor` needs to know of an executable, read from its ELF
 * headers without running it (ldd runs the program's own loader; this does not).
 *
 * One file: interpreter (dynamic or static), DT_NEEDED, RPATH/RUNPATH, Go markers, and
 * whether it defines or imports OpenSSL's SSL_write. The libraries it loads: the DT_NEEDED
 * closure found the way ld.so searches (RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.conf, the
 * standard directories), each with the library that pulled it in.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_ELF_H
#define QS_ELF_H

#include <stddef.h>

#define QS_ELF_NAME_MAX 256
#define QS_ELF_NEEDED_MAX 64
#define QS_ELF_LIBS_MAX 256

/* One ELF file. */
struct qs_elf {
    int cls;         /* 32 or 64 */
    int machine;     /* EM_* */
    int type;        /* ET_EXEC, ET_DYN, ... */
    int dynamic;     /* has PT_INTERP: the dynamic loader runs and reads LD_PRELOAD */
    int pie;         /* DT_FLAGS_1 has DF_1_PIE */
    int has_dynamic; /* has PT_DYNAMIC */
    int go;          /* a Go program: .go.buildinfo, .note.go.buildid or a "Go" note */
    int defines_ssl; /* defines SSL_write itself (dynamic symbols or, static, any) */
    int imports_ssl; /* calls SSL_write through the dynamic linker */
    char interp[QS_ELF_NAME_MAX];
    char needed[QS_ELF_NEEDED_MAX][QS_ELF_NAME_MAX];
    int nneeded;
    char rpath[1024], runpath[1024]; /* as written ($ORIGIN not expanded) */
};

/* Reads <path>. Returns 0; or -1 with a one-line reason in <err> (not ELF, truncated,
 * unreadable). A file whose first bytes are not ELF's sets <err> to "not ELF". */
int qs_elf_read(const char *path, struct qs_elf *e, char *err, size_t errlen);

/* A library of the closure. */
struct qs_elf_lib {
    char name[QS_ELF_NAME_MAX]; /* as DT_NEEDED names it */
    char path[QS_ELF_NAME_MAX]; /* where it was found, "" if not found */
    int parent;                 /* index of the library that needs it, -1 for the program */
    int defines_ssl;
};

/* The libraries <prog> (read from <prog_path>) loads at start-up, breadth first, each once,
 * into <libs> (room for QS_ELF_LIBS_MAX). Returns how many. */
int qs_elf_closure(const char *prog_path, const struct qs_elf *prog, struct qs_elf_lib *libs);

#endif
