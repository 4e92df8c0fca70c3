/*
 * map.h: herald's one hash map, after Redis's dict + dictType: integer keys,
 * pairs of integers, or byte-string keys, chosen per map by an hr_map_type,
 * with the one string hash (hr_hash_bytes) and the one integer mixer
 * (hr_hash_mix64) that every module uses (core.h).
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), power-of-two sizes, load at most 3/4, plain rehash on growth;
 * a delete never shrinks or reallocates. Entries are 32 bytes and carry
 * their full hash, so a probe compares keys only on a hash match. Lookups
 * are inline: the router looks a group up on every group_send.
 *
 * Threads: a map belongs to one thread at a time (or to the lock that its
 * owner names); nothing here locks.
 */
#ifndef HERALD_CORE_MAP_H
#define HERALD_CORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The one string hash: 64-bit FNV-1a over len bytes, starting from FNV's
 * offset basis xor seed. With seed 0 it is plain FNV-1a, which herald also
 * writes into Redis (the bridge's "h.<16 hex>" member names), so it cannot
 * change. Its low bits are weak (the low k bits of the result depend only on
 * the low k bits of each byte), so a table always finishes it with
 * hr_hash_mix64.
 */
static inline uint64_t
hr_hash_bytes(uint64_t seed, const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < len; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

/* The one integer mixer: SplitMix64's finaliser (Stafford's variant 13), a
 * bijection of 64-bit words in which every input bit affects every output
 * bit. hr_hash_mix64(0) == 0. */
static inline uint64_t
hr_hash_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

typedef enum hr_map_kind {
	HR_MAP_INT,  /* uint64_t keys */
	HR_MAP_INT2, /* pairs of uint64_t (a connection id and where it lives) */
	HR_MAP_STR,  /* byte strings (pointer, length): any bytes, NUL included */
} hr_map_kind;

/* What a map's keys are and who owns what (Redis's dictType). Usually a
 * static const; borrowed for the map's lifetime. */
typedef struct hr_map_type {
	hr_map_kind kind;
	/* HR_MAP_STR: the map keeps its own NUL-terminated copy of each key,
	 * freed with its entry. Otherwise it borrows the caller's bytes, which
	 * must stay as they are until the entry is deleted (typically the key
	 * lives inside the value). */
	bool copy_keys;
	/* Called by hr_map_fini on each value left in the map; NULL: nothing.
	 * Never called on delete (the caller holds the value then). */
	void (*val_free)(void *val);
} hr_map_type;

typedef struct hr_map_entry {
	uint64_t _hash; /* 0: an empty slot */
	uint64_t key;   /* HR_MAP_INT and _INT2: the (first) key; _STR: its length */
	union {
		const char *str; /* HR_MAP_STR: the key's bytes */
		uint64_t key2;   /* HR_MAP_INT2: the second word; 0 for HR_MAP_INT */
	};
	union {
		void *ptr;
		uint64_t u64;
	} val; /* the caller's; zero in a new entry */
} hr_map_entry;

/* Embedded in its owner (init/fini). */
typedef struct hr_map {
	const hr_map_type *_type;
	hr_map_entry *_e;
	size_t _cap; /* 0 or a power of two */
	size_t _n;
	uint64_t _seed;
} hr_map;

/* An empty map of this type. A map fed names from outside should get a
 * random seed (hash flooding); 0 is fine otherwise. Never fails: the table
 * is allocated on the first add. type is borrowed for the map's lifetime. */
void hr_map_init(hr_map *m, const hr_map_type *type, uint64_t seed);
/* Free the table and the key copies, and pass each value to the type's
 * val_free. The map is then empty and may be used again. */
void hr_map_fini(hr_map *m);
/* Entries in the map. */
size_t hr_map_count(const hr_map *m);

/* Make room for `more` further new keys, so that the next `more` adds
 * cannot fail (in a map that copies keys, the copy still allocates).
 * 0, or HR_ENOMEM with the map unchanged. */
int hr_map_reserve(hr_map *m, size_t more);

/* The entry of key, or NULL. An entry pointer stays valid until the next
 * add or delete; the caller may change its val, nothing else. (Inline,
 * below.) */
static inline hr_map_entry *hr_map_find_int(const hr_map *m, uint64_t key);
static inline hr_map_entry *hr_map_find_int2(const hr_map *m, uint64_t key, uint64_t key2);
static inline hr_map_entry *hr_map_find_str(const hr_map *m, const void *key, size_t len);

/* Find key, adding it (val zero) if it is absent. *out: its entry (as for
 * find); *added (may be NULL): whether it is new. A string key is copied
 * when the type says so, else borrowed from now on. 0, or HR_ENOMEM with
 * the map unchanged. */
int hr_map_put_int(hr_map *m, uint64_t key, hr_map_entry **out, bool *added);
int hr_map_put_int2(hr_map *m, uint64_t key, uint64_t key2, hr_map_entry **out, bool *added);
int hr_map_put_str(hr_map *m, const void *key, size_t len, hr_map_entry **out, bool *added);

/* Remove the entry e (from find, put or an iteration) and free its key
 * copy; its value is the caller's. Other entry pointers go stale. */
void hr_map_delete(hr_map *m, hr_map_entry *e);
/* Remove key: 0, or HR_ENOENT when it is absent. */
int hr_map_del_int(hr_map *m, uint64_t key);
int hr_map_del_int2(hr_map *m, uint64_t key, uint64_t key2);
int hr_map_del_str(hr_map *m, const void *key, size_t len);

/*
 * Iteration, in no particular order: every entry exactly once. While it
 * runs the map may change only by hr_map_delete of the entry just returned
 * (as Redis's safe iterator allows a delete); any add, or any other delete,
 * ends the guarantee. Embedded by the caller; nothing to release.
 */
typedef struct hr_map_iter {
	hr_map *_m;
	size_t _i;    /* the slot returned last */
	size_t _left; /* slots still to look at */
} hr_map_iter;

void hr_map_iter_init(hr_map_iter *it, hr_map *m);
/* The next entry, or NULL at the end. */
hr_map_entry *hr_map_next(hr_map_iter *it);

/* ---------------------------------------------------------------- inline */

/* A key's slot hash; 0 marks an empty slot, so a 0 is stored as 1. */
static inline uint64_t
hr_map__hash_int(const hr_map *m, uint64_t key)
{
	uint64_t h = hr_hash_mix64(key ^ m->_seed);
	return h != 0 ? h : 1;
}

static inline uint64_t
hr_map__hash_int2(const hr_map *m, uint64_t key, uint64_t key2)
{
	uint64_t h = hr_hash_mix64(key ^ hr_hash_mix64(key2 ^ m->_seed));
	return h != 0 ? h : 1;
}

static inline uint64_t
hr_map__hash_str(const hr_map *m, const void *key, size_t len)
{
	uint64_t h = hr_hash_mix64(hr_hash_bytes(m->_seed, key, len) ^ len);
	return h != 0 ? h : 1;
}

static inline hr_map_entry *
hr_map__find_str(const hr_map *m, uint64_t h, const void *key, size_t len)
{
	size_t mask = m->_cap - 1;
	for (size_t i = (size_t)h & mask; m->_e[i]._hash != 0; i = (i + 1) & mask) {
		hr_map_entry *e = &m->_e[i];
		if (e->_hash == h && e->key == len && memcmp(e->str, key, len) == 0)
			return e;
	}
	return NULL;
}

static inline hr_map_entry *
hr_map__find_int2(const hr_map *m, uint64_t h, uint64_t key, uint64_t key2)
{
	size_t mask = m->_cap - 1;
	for (size_t i = (size_t)h & mask; m->_e[i]._hash != 0; i = (i + 1) & mask) {
		hr_map_entry *e = &m->_e[i];
		if (e->_hash == h && e->key == key && e->key2 == key2)
			return e;
	}
	return NULL;
}

static inline hr_map_entry *
hr_map_find_int(const hr_map *m, uint64_t key)
{
	if (m->_n == 0)
		return NULL;
	return hr_map__find_int2(m, hr_map__hash_int(m, key), key, 0);
}

static inline hr_map_entry *
hr_map_find_int2(const hr_map *m, uint64_t key, uint64_t key2)
{
	if (m->_n == 0)
		return NULL;
	return hr_map__find_int2(m, hr_map__hash_int2(m, key, key2), key, key2);
}

static inline hr_map_entry *
hr_map_find_str(const hr_map *m, const void *key, size_t len)
{
	if (m->_n == 0)
		return NULL;
	return hr_map__find_str(m, hr_map__hash_str(m, key, len), key, len);
}

#endif /* HERALD_CORE_MAP_H */
