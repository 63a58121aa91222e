/* table.h - a thread-safe map from pointer (an SSL*) to pointer (its state).
 *
 * Every interposed call looks its SSL* up here, so a lookup is one short mutex
 * hold and a hash probe; nothing sleeps or calls out while holding the lock.
 * SPDX-License-Identifier: MIT
 */
#ifndef QS_TABLE_H
#define QS_TABLE_H

#include <pthread.h>
#include <stddef.h>

struct qs_table_ent;

struct qs_table {
    pthread_mutex_t lock;
    struct qs_table_ent **slots;
    size_t nslots; /* power of two */
    size_t count;
};

/* Returns 0, or -1 when out of memory. */
int qs_table_init(struct qs_table *t);
/* Value stored for <key>, or NULL. */
void *qs_table_get(struct qs_table *t, const void *key);
/* Stores <val> for <key> (replacing). Returns 0, or -1 when out of memory. */
int qs_table_put(struct qs_table *t, const void *key, void *val);
/* Removes <key> and returns its value (NULL if absent). */
void *qs_table_take(struct qs_table *t, const void *key);
/* After fork(): the child gets a fresh, unlocked mutex (another thread of the
 * parent may have held it at the fork). */
void qs_table_atfork_child(struct qs_table *t);

#endif
