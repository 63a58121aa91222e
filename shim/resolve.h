/* resolve.h - the real OpenSSL functions behind our interposed names.
 *
 * We never link libssl: the pointers are found at run time, on first use, because
 * Python loads libssl late through dlopen(RTLD_LOCAL) of its _ssl module, where
 * dlsym(RTLD_NEXT) cannot see it (SPEC section 10).
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_RESOLVE_H
#define QS_RESOLVE_H

#include <stddef.h>

typedef struct ssl_st SSL; /* opaque: no OpenSSL headers needed */

struct qs_real {
    int (*SSL_write)(SSL *, const void *, int);
    int (*SSL_write_ex)(SSL *, const void *, size_t, size_t *);
    int (*SSL_read)(SSL *, void *, int);
    int (*SSL_read_ex)(SSL *, void *, size_t, size_t *);
    void (*SSL_free)(SSL *);
    int (*SSL_connect)(SSL *);
    int (*SSL_do_handshake)(SSL *);
    int (*SSL_pending)(const SSL *);
    int (*SSL_has_pending)(const SSL *);
    int (*SSL_get_error)(const SSL *, int);
    /* not interposed, only called */
    const char *(*SSL_get_servername)(const SSL *, int);
    int (*SSL_set_alpn_protos)(SSL *, const unsigned char *, unsigned int);
    void (*SSL_get0_alpn_selected)(const SSL *, const unsigned char **, unsigned int *);
    int (*SSL_is_init_finished)(const SSL *);
    int (*SSL_is_server)(const SSL *);
    int (*SSL_get_fd)(const SSL *);
};

#define QS_NHOOKS 10 /* the interposed members, first in struct qs_real */

/* Fills <r> with the real functions. <self> lists our own interposed functions, in
 * the order of the first QS_NHOOKS members of struct qs_real, so that a lookup that finds
 * ourselves is rejected (proxychains' "circular reference" check, without its abort).
 * First dlsym(RTLD_NEXT), then the already-loaded libssl (libssl.so.3, else any libssl.so*,
 * RTLD_NOLOAD).
 * Returns 0 when every member was found, -1 when some are missing (they stay NULL;
 * the caller passes through what it can and logs once). */
int qs_resolve(struct qs_real *r, void *const self[QS_NHOOKS]);

#endif
