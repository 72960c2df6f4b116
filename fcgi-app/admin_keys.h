/* admin_keys.h: a set of canonical keys, each with where it was first seen. */
#ifndef USERREG_ADMIN_KEYS_H
#define USERREG_ADMIN_KEYS_H

#include <stddef.h>

/*
 * import and check look for a name or email seen twice among up to
 * millions of users: an open-addressing hash table over one growing
 * arena of key bytes, so each key costs its bytes and one slot, not an
 * allocation of its own.
 */

/* Slots of a new set; it doubles when three quarters are taken. */
#define ADMIN_KEYS_INITIAL 1024

struct admin_keys {
	struct admin_keys_slot *slots;
	size_t nslots;		/* a power of two */
	size_t count;
	char *arena;		/* the keys, each NUL-terminated */
	size_t arena_len, arena_size;
};

/* Makes keys empty. Release with admin_keys_release(). */
void admin_keys_init(struct admin_keys *keys);

/* Frees what keys holds and leaves it empty. */
void admin_keys_release(struct admin_keys *keys);

/*
 * Adds key (compared byte for byte: pass it canonical) seen at line.
 * Returns 0 when it was new; 1 when it was there already, with the line
 * it was first added at in *first (if first is not NULL); -1 when out of
 * memory (keys is unchanged).
 */
int admin_keys_add(struct admin_keys *keys, const char *key,
    unsigned long line, unsigned long *first);

/* Returns how many distinct keys keys holds. */
size_t admin_keys_count(const struct admin_keys *keys);

/*
 * Writes s ASCII-lowercased into dst (size bytes, always terminated,
 * longer input cut): the canonical key of a username or an email, as the
 * registry compares them.
 */
void admin_keys_canonical(const char *s, char *dst, size_t size);

#endif
