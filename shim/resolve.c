/* resolve.c - find the real SSL_* functions (see resolve.h).
 *
 * Order: dlsym(RTLD_NEXT) works when libssl is in the global scope (curl links it).
 * Under Python, libssl arrives with _ssl via dlopen(RTLD_LOCAL): RTLD_NEXT finds
 * nothing and a shim that calls that NULL crashes the interpreter (SPEC section 10),
 * so we then ask the libssl that is already loaded (OpenSSL 3, else 1.1.1), without
 * loading anything.
 * SPDX-License-Identifier: MIT
 */
#include "resolve.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    "SSL_write",
    "SSL_write_ex",
    "SSL_read",
    "SSL_read_ex",
    "SSL_free",
    "SSL_connect",
    "SSL_do_handshake",
    "SSL_pending",
    "SSL_has_pending",
    "SSL_get_error",
    "SSL_get_servername",
    "SSL_set_alpn_protos",
    "SSL_get0_alpn_selected",
    "SSL_is_init_finished",
    "SSL_is_server",
    "SSL_get_fd",
};
#define NNAMES (sizeof names / sizeof names[0])

_Static_assert(sizeof(struct qs_real) == NNAMES * sizeof(void *), "names[] must match struct qs_real");

static void *lookup(void *handle, const char *name, void *self)
{
    void *p = dlsym(handle, name);
    return p == self ? NULL : p;
}

static int find_libssl(struct dl_phdr_info *info, size_t size, void *path)
{
    (void)size;
    const char *slash = strrchr(info->dlpi_name, '/');
    const char *base = slash != NULL ? slash + 1 : info->dlpi_name;
    if (strncmp(base, "libssl.so", 9) != 0)
        return 0;
    snprintf(path, PATH_MAX, "%s", info->dlpi_name);
    return 1;
}

/* The libssl the program already loaded, without loading anything: OpenSSL 3 by its soname,
 * else any loaded libssl.so* (OpenSSL 1.1.1 has the same calls: a Python built against it,
 * as on RHEL 8, must at least pass through, not get ENOSYS from every write). */
static void *loaded_libssl(void)
{
    void *h = dlopen("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD);
    char path[PATH_MAX] = "";
    if (h == NULL && dl_iterate_phdr(find_libssl, path) != 0 && path[0] != '\0')
        h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    return h;
}

int qs_resolve(struct qs_real *r, void *const self[QS_NHOOKS])
{
    void *slots[NNAMES];
    void *libssl = NULL;
    int missing = 0;

    memcpy(slots, r, sizeof slots);
    for (size_t i = 0; i < NNAMES; i++) {
        void *own = i < QS_NHOOKS ? self[i] : NULL;
        if (slots[i] != NULL)
            continue;
        slots[i] = lookup(RTLD_NEXT, names[i], own);
        if (slots[i] == NULL) {
            if (libssl == NULL)
                libssl = loaded_libssl();
            if (libssl != NULL)
                slots[i] = lookup(libssl, names[i], own);
        }
        missing |= slots[i] == NULL;
    }
    /* dlopen(RTLD_NOLOAD) took a reference; libssl stays loaded as long as the
     * program uses it anyway, so the handle is deliberately kept. */
    memcpy(r, slots, sizeof slots);
    return missing ? -1 : 0;
}
