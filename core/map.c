/*
 * map.c: the hash map (core/map.h): growth, adds, deletes, iteration. The
 * lookups are inline in map.h. Open addressing, linear probing,
 * backward-shift deletion, power-of-two capacity, load <= 3/4.
 *
 * Each slot keeps the key's full hash; 0 marks an empty slot, so a hash that
 * comes out 0 is stored as 1 (only the slot and the fast compare use it).
 * Iteration walks the slots downwards, starting just below an empty slot:
 * a backward-shift delete only moves entries that sit after the deleted one
 * in its probe run, and from there the run never crosses that empty slot,
 * so deleting the entry just returned moves only entries already seen.
 * Pure code; the owner serialises access.
 */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/map.h"

#define MAP_MIN_CAP 8

void
hr_map_init(hr_map *m, const hr_map_type *type, uint64_t seed)
{
	*m = (hr_map) { ._type = type, ._seed = seed };
}

size_t
hr_map_count(const hr_map *m)
{
	return m->_n;
}

static void
free_key(const hr_map *m, hr_map_entry *e)
{
	if (m->_type->kind == HR_MAP_STR && m->_type->copy_keys)
		free((char *)e->str);
}

void
hr_map_fini(hr_map *m)
{
	for (size_t i = 0; i < m->_cap; i++) {
		hr_map_entry *e = &m->_e[i];
		if (e->_hash == 0)
			continue;
		free_key(m, e);
		if (m->_type->val_free != NULL)
			m->_type->val_free(e->val.ptr);
	}
	free(m->_e);
	m->_e = NULL;
	m->_cap = 0;
	m->_n = 0;
}

/* The slot where an entry with hash h goes: its home or the first empty
 * slot after it. */
static size_t
free_slot(const hr_map_entry *e, size_t cap, uint64_t h)
{
	size_t mask = cap - 1;
	size_t i = (size_t)h & mask;
	while (e[i]._hash != 0)
		i = (i + 1) & mask;
	return i;
}

int
hr_map_reserve(hr_map *m, size_t more)
{
	if (more > (SIZE_MAX / 4) - m->_n)
		return HR_ENOMEM;
	size_t need = m->_n + more, cap = m->_cap;
	if (need * 4 <= cap * 3)
		return 0;
	if (cap == 0)
		cap = MAP_MIN_CAP;
	while (need * 4 > cap * 3) {
		if (cap > SIZE_MAX / 2 / sizeof(hr_map_entry))
			return HR_ENOMEM;
		cap *= 2;
	}
	hr_map_entry *ne = calloc(cap, sizeof(*ne));
	if (ne == NULL)
		return HR_ENOMEM;
	for (size_t i = 0; i < m->_cap; i++)
		if (m->_e[i]._hash != 0)
			ne[free_slot(ne, cap, m->_e[i]._hash)] = m->_e[i];
	free(m->_e);
	m->_e = ne;
	m->_cap = cap;
	return 0;
}

/* Add an entry known to be absent: room first, so that failure changes
 * nothing. */
static int
add(hr_map *m, hr_map_entry proto, hr_map_entry **out)
{
	int rv = hr_map_reserve(m, 1);
	if (rv != 0)
		return rv;
	hr_map_entry *e = &m->_e[free_slot(m->_e, m->_cap, proto._hash)];
	*e = proto;
	m->_n++;
	*out = e;
	return 0;
}

int
hr_map_put_int(hr_map *m, uint64_t key, hr_map_entry **out, bool *added)
{
	HR_ASSERT(m->_type->kind == HR_MAP_INT);
	hr_map_entry *e = hr_map_find_int(m, key);
	if (added != NULL)
		*added = e == NULL;
	if (e != NULL) {
		*out = e;
		return 0;
	}
	return add(m, (hr_map_entry) { ._hash = hr_map__hash_int(m, key), .key = key }, out);
}

int
hr_map_put_int2(hr_map *m, uint64_t key, uint64_t key2, hr_map_entry **out, bool *added)
{
	HR_ASSERT(m->_type->kind == HR_MAP_INT2);
	hr_map_entry *e = hr_map_find_int2(m, key, key2);
	if (added != NULL)
		*added = e == NULL;
	if (e != NULL) {
		*out = e;
		return 0;
	}
	hr_map_entry proto = { ._hash = hr_map__hash_int2(m, key, key2), .key = key, .key2 = key2 };
	return add(m, proto, out);
}

int
hr_map_put_str(hr_map *m, const void *key, size_t len, hr_map_entry **out, bool *added)
{
	HR_ASSERT(m->_type->kind == HR_MAP_STR);
	uint64_t h = hr_map__hash_str(m, key, len);
	hr_map_entry *e = m->_n > 0 ? hr_map__find_str(m, h, key, len) : NULL;
	if (added != NULL)
		*added = e == NULL;
	if (e != NULL) {
		*out = e;
		return 0;
	}
	const char *str = key;
	if (m->_type->copy_keys) {
		char *copy = len < SIZE_MAX ? malloc(len + 1) : NULL;
		if (copy == NULL)
			return HR_ENOMEM;
		memcpy(copy, key, len);
		copy[len] = '\0';
		str = copy;
	}
	int rv = add(m, (hr_map_entry) { ._hash = h, .key = len, .str = str }, out);
	if (rv != 0 && m->_type->copy_keys)
		free((char *)str);
	return rv;
}

void
hr_map_delete(hr_map *m, hr_map_entry *e)
{
	size_t mask = m->_cap - 1;
	size_t i = (size_t)(e - m->_e);
	HR_ASSERT(i < m->_cap && e->_hash != 0);
	free_key(m, e);
	m->_n--;
	/* Backward shift: pull later entries of the run into the hole unless
	 * their home lies cyclically in (hole, their slot]. */
	for (size_t j = (i + 1) & mask; m->_e[j]._hash != 0; j = (j + 1) & mask) {
		size_t home = (size_t)m->_e[j]._hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->_e[i] = m->_e[j];
			i = j;
		}
	}
	m->_e[i] = (hr_map_entry) { 0 };
}

static int
del(hr_map *m, hr_map_entry *e)
{
	if (e == NULL)
		return HR_ENOENT;
	hr_map_delete(m, e);
	return 0;
}

int
hr_map_del_int(hr_map *m, uint64_t key)
{
	return del(m, hr_map_find_int(m, key));
}

int
hr_map_del_int2(hr_map *m, uint64_t key, uint64_t key2)
{
	return del(m, hr_map_find_int2(m, key, key2));
}

int
hr_map_del_str(hr_map *m, const void *key, size_t len)
{
	return del(m, hr_map_find_str(m, key, len));
}

void
hr_map_iter_init(hr_map_iter *it, hr_map *m)
{
	*it = (hr_map_iter) { ._m = m };
	if (m->_n == 0)
		return;
	/* Start below an empty slot; the load bound guarantees there is one. */
	size_t s = 0;
	while (m->_e[s]._hash != 0)
		s++;
	it->_i = s;
	it->_left = m->_cap - 1;
}

hr_map_entry *
hr_map_next(hr_map_iter *it)
{
	hr_map *m = it->_m;
	while (it->_left > 0) {
		it->_i = (it->_i - 1) & (m->_cap - 1);
		it->_left--;
		if (m->_e[it->_i]._hash != 0)
			return &m->_e[it->_i];
	}
	return NULL;
}
