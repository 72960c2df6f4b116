/* admin_keys.c: a set of canonical keys, each with where it was first seen. */
#include "admin_keys.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct admin_keys_slot {
	size_t off;		/* offset of the key in the arena, plus one */
	unsigned long line;
	uint32_t hash;
};

/* FNV-1a: short keys, no adversary worth a keyed hash. */
static uint32_t
hash_of(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

void
admin_keys_init(struct admin_keys *keys)
{
	memset(keys, 0, sizeof(*keys));
}

void
admin_keys_release(struct admin_keys *keys)
{
	free(keys->slots);
	free(keys->arena);
	admin_keys_init(keys);
}

/* Returns the slot of key (hash h): its own, or the empty one for it. */
static struct admin_keys_slot *
find(const struct admin_keys *keys, const char *key, uint32_t h)
{
	size_t mask = keys->nslots - 1, i = h & mask;
	struct admin_keys_slot *s;

	for (;; i = (i + 1) & mask) {
		s = &keys->slots[i];
		if (s->off == 0 || (s->hash == h &&
		    strcmp(keys->arena + s->off - 1, key) == 0))
			return s;
	}
}

static int
grow(struct admin_keys *keys)
{
	struct admin_keys_slot *old = keys->slots, *s;
	size_t n = keys->nslots, i;

	if (n > SIZE_MAX / 2 / sizeof(*old))
		return -1;
	keys->nslots = n == 0 ? ADMIN_KEYS_INITIAL : n * 2;
	if ((keys->slots = calloc(keys->nslots, sizeof(*old))) == NULL) {
		keys->slots = old;
		keys->nslots = n;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (old[i].off == 0)
			continue;
		s = find(keys, keys->arena + old[i].off - 1, old[i].hash);
		*s = old[i];
	}
	free(old);
	return 0;
}

/* Appends key to the arena; returns its offset plus one, or 0. */
static size_t
keep(struct admin_keys *keys, const char *key)
{
	size_t len = strlen(key) + 1, size = keys->arena_size;
	char *p;

	if (len > SIZE_MAX / 2 - keys->arena_len)
		return 0;
	if (keys->arena_len + len > size) {
		while (keys->arena_len + len > size)
			size = size == 0 ? 64 * 1024 : size * 2;
		if ((p = realloc(keys->arena, size)) == NULL)
			return 0;
		keys->arena = p;
		keys->arena_size = size;
	}
	memcpy(keys->arena + keys->arena_len, key, len);
	keys->arena_len += len;
	return keys->arena_len - len + 1;
}

int
admin_keys_add(struct admin_keys *keys, const char *key,
    unsigned long line, unsigned long *first)
{
	struct admin_keys_slot *s;
	uint32_t h = hash_of(key);
	size_t off;

	if ((keys->count + 1) * 4 > keys->nslots * 3 && grow(keys) != 0)
		return -1;
	s = find(keys, key, h);
	if (s->off != 0) {
		if (first != NULL)
			*first = s->line;
		return 1;
	}
	if ((off = keep(keys, key)) == 0)
		return -1;
	s->off = off;
	s->line = line;
	s->hash = h;
	keys->count++;
	return 0;
}

size_t
admin_keys_count(const struct admin_keys *keys)
{
	return keys->count;
}

void
admin_keys_canonical(const char *s, char *dst, size_t size)
{
	size_t i;

	if (size == 0)
		return;
	for (i = 0; i + 1 < size && s[i] != '\0'; i++)
		dst[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') :
		    s[i];
	dst[i] = '\0';
}
