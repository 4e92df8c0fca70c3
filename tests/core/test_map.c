/*
 * test_map.c: the hash map (core/map.h): integer and string keys, copied and
 * borrowed keys, growth, many keys against a reference, delete during
 * iteration, and allocation failures that leave the map as it was.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/core.h"

TestSuite(map, .timeout = 30);

static const hr_map_type int_type = { .kind = HR_MAP_INT };
static const hr_map_type str_copy = { .kind = HR_MAP_STR, .copy_keys = true };
static const hr_map_type str_borrow = { .kind = HR_MAP_STR };

static int freed;

static void
count_free(void *val)
{
	freed++;
	free(val);
}

static const hr_map_type int_owning = { .kind = HR_MAP_INT, .val_free = count_free };

Test(map, hash_is_fnv1a_and_mixer_is_splitmix64)
{
	cr_assert_eq(hr_hash_bytes(0, "", 0), 0xcbf29ce484222325ULL);
	cr_assert_eq(hr_hash_bytes(0, "a", 1), 0xaf63dc4c8601ec8cULL);
	cr_assert_eq(hr_hash_bytes(0, "foobar", 6), 0x85944171f73967e8ULL);
	cr_assert_neq(hr_hash_bytes(1, "a", 1), hr_hash_bytes(0, "a", 1));
	cr_assert_eq(hr_hash_mix64(0), 0);
	cr_assert_eq(hr_hash_mix64(1), 0x5692161d100b05e5ULL);
}

Test(map, empty_map_finds_nothing_and_deletes_nothing)
{
	hr_map m;
	hr_map_iter it;
	hr_map_init(&m, &int_type, 0);
	cr_assert_eq(hr_map_count(&m), 0);
	cr_assert_null(hr_map_find_int(&m, 7));
	cr_assert_eq(hr_map_del_int(&m, 7), HR_ENOENT);
	hr_map_iter_init(&it, &m);
	cr_assert_null(hr_map_next(&it));
	hr_map_fini(&m);
	hr_map_fini(&m); /* twice is fine: fini leaves an empty map */

	hr_map_init(&m, &str_copy, 0);
	cr_assert_null(hr_map_find_str(&m, "x", 1));
	cr_assert_eq(hr_map_del_str(&m, "x", 1), HR_ENOENT);
	hr_map_fini(&m);
}

Test(map, int_keys_put_find_and_delete_including_zero_and_max)
{
	hr_map m;
	hr_map_entry *e;
	bool added;
	uint64_t keys[] = { 0, 1, UINT64_MAX, 0x8000000000000000ULL, 42 };
	hr_map_init(&m, &int_type, 0);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(hr_map_put_int(&m, keys[i], &e, &added), 0);
		cr_assert(added);
		cr_assert_eq(e->key, keys[i]);
		cr_assert_null(e->str);
		cr_assert_eq(e->val.u64, 0, "a new entry's value is zero");
		e->val.u64 = i + 100;
	}
	cr_assert_eq(hr_map_count(&m), 5);
	cr_assert_eq(hr_map_put_int(&m, UINT64_MAX, &e, &added), 0);
	cr_assert_not(added);
	cr_assert_eq(e->val.u64, 102);
	cr_assert_eq(hr_map_put_int(&m, 42, &e, NULL), 0);
	cr_assert_eq(hr_map_count(&m), 5);
	for (size_t i = 0; i < 5; i++) {
		e = hr_map_find_int(&m, keys[i]);
		cr_assert_not_null(e);
		cr_assert_eq(e->val.u64, i + 100);
	}
	cr_assert_null(hr_map_find_int(&m, 2));
	cr_assert_eq(hr_map_del_int(&m, 0), 0);
	cr_assert_eq(hr_map_del_int(&m, 0), HR_ENOENT);
	cr_assert_null(hr_map_find_int(&m, 0));
	cr_assert_eq(hr_map_count(&m), 4);
	hr_map_fini(&m);
	cr_assert_eq(hr_map_count(&m), 0);
}

Test(map, string_keys_are_bytes_with_their_length)
{
	hr_map m;
	hr_map_entry *e;
	bool added;
	hr_map_init(&m, &str_copy, 1234);
	cr_assert_eq(hr_map_put_str(&m, "ab", 2, &e, &added), 0);
	e->val.u64 = 1;
	cr_assert_eq(hr_map_put_str(&m, "abc", 3, &e, &added), 0);
	cr_assert(added);
	e->val.u64 = 2;
	cr_assert_eq(hr_map_put_str(&m, "a\0c", 3, &e, &added), 0);
	cr_assert(added);
	e->val.u64 = 3;
	cr_assert_eq(hr_map_put_str(&m, "", 0, &e, &added), 0);
	cr_assert(added);
	e->val.u64 = 4;
	cr_assert_eq(hr_map_count(&m), 4);
	cr_assert_eq(hr_map_find_str(&m, "ab", 2)->val.u64, 1);
	cr_assert_eq(hr_map_find_str(&m, "abc", 3)->val.u64, 2);
	cr_assert_eq(hr_map_find_str(&m, "a\0c", 3)->val.u64, 3);
	cr_assert_eq(hr_map_find_str(&m, "", 0)->val.u64, 4);
	cr_assert_null(hr_map_find_str(&m, "a", 1));
	cr_assert_null(hr_map_find_str(&m, "abd", 3));
	cr_assert_eq(hr_map_del_str(&m, "ab", 2), 0);
	cr_assert_null(hr_map_find_str(&m, "ab", 2));
	cr_assert_eq(hr_map_find_str(&m, "abc", 3)->val.u64, 2);
	hr_map_fini(&m);
}

Test(map, copied_keys_outlive_the_callers_buffer)
{
	hr_map m;
	hr_map_entry *e;
	char name[16];
	hr_map_init(&m, &str_copy, 0);
	strcpy(name, "chat.room");
	cr_assert_eq(hr_map_put_str(&m, name, strlen(name), &e, NULL), 0);
	cr_assert_neq(e->str, name);
	memset(name, 'x', sizeof(name));
	e = hr_map_find_str(&m, "chat.room", 9);
	cr_assert_not_null(e);
	cr_assert_str_eq(e->str, "chat.room", "a copied key is NUL-terminated");
	cr_assert_eq(e->key, 9);
	hr_map_fini(&m);
}

Test(map, borrowed_keys_point_at_the_callers_bytes)
{
	hr_map m;
	hr_map_entry *e;
	static const char name[] = "group";
	hr_map_init(&m, &str_borrow, 0);
	cr_assert_eq(hr_map_put_str(&m, name, 5, &e, NULL), 0);
	cr_assert_eq(e->str, name);
	cr_assert_eq(hr_map_find_str(&m, "group", 5), e);
	hr_map_fini(&m);
}

Test(map, grows_by_powers_of_two_and_keeps_load_under_three_quarters)
{
	hr_map m;
	hr_map_entry *e;
	hr_map_init(&m, &int_type, 0);
	for (uint64_t k = 0; k < 100000; k++) {
		cr_assert_eq(hr_map_put_int(&m, k * 7919, &e, NULL), 0);
		e->val.u64 = k;
		cr_assert_eq(m._cap & (m._cap - 1), 0);
		cr_assert_leq(m._n * 4, m._cap * 3);
	}
	cr_assert_eq(hr_map_count(&m), 100000);
	for (uint64_t k = 0; k < 100000; k++) {
		e = hr_map_find_int(&m, k * 7919);
		cr_assert_not_null(e);
		cr_assert_eq(e->val.u64, k);
	}
	hr_map_fini(&m);
}

Test(map, reserve_makes_later_adds_allocation_free)
{
	hr_map m;
	hr_map_entry *e;
	char names[100][8];
	hr_map_init(&m, &str_borrow, 0);
	cr_assert_eq(hr_map_reserve(&m, 100), 0);
	hr_map_entry *table = m._e;
	for (int i = 0; i < 100; i++) {
		snprintf(names[i], sizeof(names[i]), "g%d", i);
		cr_assert_eq(hr_map_put_str(&m, names[i], strlen(names[i]), &e, NULL), 0);
	}
	cr_assert_eq(m._e, table, "no rehash after reserve");
	cr_assert_eq(hr_map_count(&m), 100);
	hr_map_fini(&m);
}

/* Many random operations against a plain array: count, find and iteration
 * must agree with it all along (backward-shift deletes in long runs). */
Test(map, many_keys_agree_with_a_reference)
{
	enum { N = 4096, OPS = 200000 };
	static uint64_t ref[N]; /* value + 1, 0 = absent */
	hr_map m;
	hr_map_entry *e;
	uint64_t x = 88172645463325252ULL;
	size_t n = 0;
	hr_map_init(&m, &int_type, 99);
	for (int op = 0; op < OPS; op++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t k = x % N;
		if ((x >> 32) % 3 != 0) {
			bool added;
			cr_assert_eq(hr_map_put_int(&m, k << 20, &e, &added), 0);
			cr_assert_eq(added, ref[k] == 0);
			n += added;
			e->val.u64 = (uint64_t)op;
			ref[k] = (uint64_t)op + 1;
		} else {
			int rv = hr_map_del_int(&m, k << 20);
			cr_assert_eq(rv, ref[k] != 0 ? 0 : HR_ENOENT);
			n -= ref[k] != 0;
			ref[k] = 0;
		}
		cr_assert_eq(hr_map_count(&m), n);
	}
	for (uint64_t k = 0; k < N; k++) {
		e = hr_map_find_int(&m, k << 20);
		if (ref[k] == 0) {
			cr_assert_null(e);
		} else {
			cr_assert_not_null(e);
			cr_assert_eq(e->val.u64 + 1, ref[k]);
		}
	}
	hr_map_iter it;
	size_t seen = 0;
	hr_map_iter_init(&it, &m);
	while ((e = hr_map_next(&it)) != NULL) {
		cr_assert_neq(ref[e->key >> 20], 0);
		seen++;
	}
	cr_assert_eq(seen, n);
	hr_map_fini(&m);
}

/* Deleting the entry just returned: every entry is still seen once. */
Test(map, delete_during_iteration_sees_every_entry_once)
{
	enum { N = 20000 };
	static unsigned char seen[N];
	hr_map m;
	hr_map_entry *e;
	hr_map_iter it;
	char key[16];
	hr_map_init(&m, &str_copy, 7);
	for (int i = 0; i < N; i++) {
		int len = snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(hr_map_put_str(&m, key, (size_t)len, &e, NULL), 0);
		e->val.u64 = (uint64_t)i;
	}
	/* Pass 1: delete the odd ones on the way. */
	hr_map_iter_init(&it, &m);
	while ((e = hr_map_next(&it)) != NULL) {
		uint64_t i = e->val.u64;
		cr_assert_eq(seen[i], 0, "entry %llu seen twice", (unsigned long long)i);
		seen[i] = 1;
		if (i % 2 == 1)
			hr_map_delete(&m, e);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1, "entry %d missed", i);
	cr_assert_eq(hr_map_count(&m), N / 2);
	for (int i = 0; i < N; i++) {
		int len = snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(hr_map_find_str(&m, key, (size_t)len) != NULL, i % 2 == 0);
	}
	/* Pass 2: delete everything. */
	memset(seen, 0, sizeof(seen));
	size_t visited = 0;
	hr_map_iter_init(&it, &m);
	while ((e = hr_map_next(&it)) != NULL) {
		cr_assert_eq(seen[e->val.u64], 0);
		seen[e->val.u64] = 1;
		visited++;
		hr_map_delete(&m, e);
	}
	cr_assert_eq(visited, N / 2);
	cr_assert_eq(hr_map_count(&m), 0);
	hr_map_fini(&m);
}

Test(map, fini_hands_each_value_to_val_free_and_delete_does_not)
{
	hr_map m;
	hr_map_entry *e;
	hr_map_init(&m, &int_owning, 0);
	for (uint64_t k = 0; k < 10; k++) {
		cr_assert_eq(hr_map_put_int(&m, k, &e, NULL), 0);
		e->val.ptr = malloc(8);
		cr_assert_not_null(e->val.ptr);
	}
	e = hr_map_find_int(&m, 3);
	void *held = e->val.ptr;
	hr_map_delete(&m, e);
	cr_assert_eq(freed, 0);
	free(held);
	hr_map_fini(&m);
	cr_assert_eq(freed, 9);
}

Test(map, impossible_sizes_are_enomem_and_change_nothing)
{
	hr_map m;
	hr_map_entry *e = NULL;
	hr_map_init(&m, &str_copy, 0);
	cr_assert_eq(hr_map_put_str(&m, "a", 1, &e, NULL), 0);
	hr_map_entry *table = m._e;
	size_t cap = m._cap;
	cr_assert_eq(hr_map_reserve(&m, SIZE_MAX), HR_ENOMEM);
	cr_assert_eq(hr_map_reserve(&m, SIZE_MAX / 8), HR_ENOMEM);
	cr_assert_eq(m._e, table);
	cr_assert_eq(m._cap, cap);
	cr_assert_eq(hr_map_count(&m), 1);
	cr_assert_not_null(hr_map_find_str(&m, "a", 1));
	hr_map_fini(&m);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* A real allocation failure (address space capped; Criterion runs each test
 * in its own process): growth fails, the map is as it was and still works. */
Test(map, a_failed_growth_leaves_the_map_as_it_was)
{
	hr_map m;
	hr_map_entry *e;
	hr_map_init(&m, &int_type, 0);
	for (uint64_t k = 0; k < 6; k++) {
		cr_assert_eq(hr_map_put_int(&m, k, &e, NULL), 0);
		e->val.u64 = k;
	}
	hr_map_entry *table = m._e;
	size_t cap = m._cap;
	enum { BIG = 96 << 20 };
	char *big = malloc(BIG); /* before the cap: a key too big to copy after it */
	cr_assert_not_null(big);
	memset(big, 'k', BIG);
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_AS, &rl), 0);
	long pages = 0, page = 4096;
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld", &pages), 1);
	fclose(f);
	rl.rlim_cur = (rlim_t)(pages * page) + (64u << 20);
	cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
	cr_assert_eq(hr_map_reserve(&m, (size_t)1 << 26), HR_ENOMEM); /* 2 GiB of slots */
	cr_assert_eq(m._e, table);
	cr_assert_eq(m._cap, cap);
	cr_assert_eq(hr_map_count(&m), 6);
	for (uint64_t k = 0; k < 6; k++)
		cr_assert_eq(hr_map_find_int(&m, k)->val.u64, k);
	cr_assert_eq(hr_map_put_int(&m, 6, &e, NULL), 0, "small growth still works");
	hr_map_fini(&m);

	/* A key copy that cannot be made: nothing is added. */
	hr_map s;
	hr_map_init(&s, &str_copy, 0);
	cr_assert_eq(hr_map_put_str(&s, "a", 1, &e, NULL), 0);
	cr_assert_eq(hr_map_put_str(&s, big, BIG, &e, NULL), HR_ENOMEM);
	cr_assert_eq(hr_map_count(&s), 1);
	cr_assert_null(hr_map_find_str(&s, big, BIG));
	cr_assert_not_null(hr_map_find_str(&s, "a", 1));
	hr_map_fini(&s);
	free(big);
}
#endif

Test(map, int2_keys_match_on_both_words)
{
	enum { N = 3000 };
	static const hr_map_type int2_type = { .kind = HR_MAP_INT2 };
	hr_map m;
	hr_map_entry *e;
	bool added;
	hr_map_init(&m, &int2_type, 5);
	for (uint64_t i = 0; i < N; i++) {
		cr_assert_eq(hr_map_put_int2(&m, i / 3, i % 3, &e, &added), 0);
		cr_assert(added);
		cr_assert_eq(e->key, i / 3);
		cr_assert_eq(e->key2, i % 3);
		e->val.u64 = i;
	}
	cr_assert_eq(hr_map_count(&m), N);
	cr_assert_eq(hr_map_put_int2(&m, 5, 2, &e, &added), 0);
	cr_assert_not(added);
	cr_assert_eq(e->val.u64, 17);
	for (uint64_t i = 0; i < N; i++) {
		e = hr_map_find_int2(&m, i / 3, i % 3);
		cr_assert_not_null(e);
		cr_assert_eq(e->val.u64, i);
	}
	cr_assert_null(hr_map_find_int2(&m, 5, 3));
	cr_assert_null(hr_map_find_int2(&m, 3, 5));
	cr_assert_eq(hr_map_del_int2(&m, 5, 3), HR_ENOENT);
	cr_assert_eq(hr_map_del_int2(&m, 5, 1), 0);
	cr_assert_null(hr_map_find_int2(&m, 5, 1));
	cr_assert_not_null(hr_map_find_int2(&m, 5, 0));
	cr_assert_eq(hr_map_count(&m), N - 1);
	hr_map_fini(&m);
}
