/* table.c - pointer-keyed hash map with chaining (see table.h).
 * SPDX-License-Identifier: MIT
 */
#include "table.h"

#include <stdint.h>
#include <stdlib.h>

struct qs_table_ent {
    const void *key;
    void *val;
    struct qs_table_ent *next;
};

#define INITIAL_SLOTS 256

static size_t slot_of(const struct qs_table *t, const void *key)
{
    uint64_t h = (uint64_t)(uintptr_t)key;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & (t->nslots - 1);
}

int qs_table_init(struct qs_table *t)
{
    pthread_mutex_init(&t->lock, NULL);
    t->slots = calloc(INITIAL_SLOTS, sizeof *t->slots);
    t->nslots = t->slots ? INITIAL_SLOTS : 0;
    t->count = 0;
    return t->slots ? 0 : -1;
}

void *qs_table_get(struct qs_table *t, const void *key)
{
    void *val = NULL;
    pthread_mutex_lock(&t->lock);
    for (struct qs_table_ent *e = t->slots[slot_of(t, key)]; e != NULL; e = e->next) {
        if (e->key == key) {
            val = e->val;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return val;
}

/* Doubles the slot array when the load passes 2; on failure keeps the old one
 * (longer chains, still correct). Called with the lock held. */
static void grow(struct qs_table *t)
{
    size_t n = t->nslots * 2;
    struct qs_table_ent **slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return;
    struct qs_table_ent **old = t->slots;
    size_t oldn = t->nslots;
    t->slots = slots;
    t->nslots = n;
    for (size_t i = 0; i < oldn; i++) {
        while (old[i] != NULL) {
            struct qs_table_ent *e = old[i];
            old[i] = e->next;
            size_t s = slot_of(t, e->key);
            e->next = slots[s];
            slots[s] = e;
        }
    }
    free(old);
}

int qs_table_put(struct qs_table *t, const void *key, void *val)
{
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    struct qs_table_ent **pp = &t->slots[slot_of(t, key)];
    for (struct qs_table_ent *e = *pp; e != NULL; e = e->next) {
        if (e->key == key) {
            e->val = val;
            goto out;
        }
    }
    struct qs_table_ent *e = malloc(sizeof *e);
    if (e == NULL) {
        rc = -1;
        goto out;
    }
    e->key = key;
    e->val = val;
    e->next = *pp;
    *pp = e;
    if (++t->count > 2 * t->nslots)
        grow(t);
out:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void *qs_table_take(struct qs_table *t, const void *key)
{
    void *val = NULL;
    pthread_mutex_lock(&t->lock);
    for (struct qs_table_ent **pp = &t->slots[slot_of(t, key)]; *pp != NULL; pp = &(*pp)->next) {
        struct qs_table_ent *e = *pp;
        if (e->key == key) {
            val = e->val;
            *pp = e->next;
            free(e);
            t->count--;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return val;
}

void qs_table_atfork_child(struct qs_table *t)
{
    pthread_mutex_init(&t->lock, NULL);
}
