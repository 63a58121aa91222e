/* log_vec.h - growing arrays for qshim-log (the only allocation pattern the tool needs).
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_LOG_VEC_H
#define QS_LOG_VEC_H

#include <stdint.h>
#include <stdlib.h>

/* Makes room for <need> elements of <elsz> bytes in the array *<p> of capacity *<cap>,
 * doubling it. Returns 0, or -1 when memory runs out (the array is left as it was). */
static inline int qs_log_grow(void *p, size_t *cap, size_t need, size_t elsz)
{
    void **pp = p;
    size_t n = *cap ? *cap : 16;
    void *np;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elsz)
        return -1;
    np = realloc(*pp, n * elsz);
    if (np == NULL)
        return -1;
    *pp = np;
    *cap = n;
    return 0;
}

#endif
