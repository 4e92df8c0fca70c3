/*
 * test_msg.c: hr_msg (refcount, headroom), hr_buf (growth, hand-over
 * without copy, failure leaves it as it was) and WebSocket text frames.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "core/buf_int.h"
#include "core/core.h"

TestSuite(msg, .timeout = 30);

Test(msg, alloc_keeps_headroom_in_front_of_data)
{
	hr_msg *m = NULL;
	cr_assert_eq(hr_msg_alloc(16, 5, &m), 0);
	cr_assert_eq(hr_msg_len(m), 5);
	cr_assert_eq(hr_msg_headroom(m), 16);
	unsigned char *d = hr_msg_data(m);
	memcpy(d, "hello", 5);
	unsigned char *f = hr_msg_push_front(m, 3);
	cr_assert_eq(f, d - 3);
	cr_assert_eq(hr_msg_data(m), f);
	cr_assert_eq(hr_msg_len(m), 8);
	cr_assert_eq(hr_msg_headroom(m), 13);
	cr_assert_eq(memcmp(hr_msg_data(m) + 3, "hello", 5), 0);
	hr_msg_unref(m);
}

Test(msg, copy_has_no_headroom_and_own_bytes)
{
	char src[] = "abc";
	hr_msg *m = NULL;
	cr_assert_eq(hr_msg_copy(src, 3, &m), 0);
	src[0] = 'x';
	cr_assert_eq(hr_msg_headroom(m), 0);
	cr_assert_eq(hr_msg_len(m), 3);
	cr_assert_eq(memcmp(hr_msg_data(m), "abc", 3), 0);
	hr_msg_unref(m);

	cr_assert_eq(hr_msg_copy(NULL, 0, &m), 0);
	cr_assert_eq(hr_msg_len(m), 0);
	hr_msg_unref(m);
}

Test(msg, alloc_of_impossible_size_is_enomem)
{
	hr_msg *m = NULL;
	cr_assert_eq(hr_msg_alloc(SIZE_MAX - 8, 16, &m), HR_ENOMEM);
	cr_assert_null(m);
	cr_assert_eq(hr_msg_alloc(0, SIZE_MAX, &m), HR_ENOMEM);
}

Test(msg, ref_and_unref_count)
{
	hr_msg *m = NULL;
	cr_assert_eq(hr_msg_alloc(0, 1, &m), 0);
	cr_assert_eq(hr_msg__refs(m), 1);
	cr_assert_eq(hr_msg_ref(m), m);
	cr_assert_eq(hr_msg__refs(m), 2);
	hr_msg_unref(m);
	cr_assert_eq(hr_msg__refs(m), 1);
	hr_msg_unref(m); /* freed: ASan reports a leak or double free otherwise */
	hr_msg_unref(NULL);
}

#define REF_ROUNDS 100000

static void *
ref_unref_thread(void *arg)
{
	hr_msg *m = arg;
	for (int i = 0; i < REF_ROUNDS; i++) {
		hr_msg_ref(m);
		hr_msg_unref(m);
	}
	/* Take two and keep one, so the threads also overlap on the count. */
	hr_msg_ref(m);
	return NULL;
}

Test(msg, refcount_is_exact_across_two_threads)
{
	hr_msg *m = NULL;
	cr_assert_eq(hr_msg_alloc(0, 64, &m), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, ref_unref_thread, m), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	cr_assert_eq(hr_msg__refs(m), 3);
	hr_msg_unref(m);
	hr_msg_unref(m);
	cr_assert_eq(hr_msg__refs(m), 1);
	hr_msg_unref(m); /* the last one frees it, exactly once (ASan) */
}

Test(msg, buf_starts_empty_and_appends)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_buf_len(&b), 0);
	cr_assert_not_null(hr_buf_data(&b));
	cr_assert_eq(hr_buf_append(&b, "ab", 2), 0);
	cr_assert_eq(hr_buf_putc(&b, 'c'), 0);
	cr_assert_eq(hr_buf_append(&b, NULL, 0), 0);
	cr_assert_eq(hr_buf_len(&b), 3);
	cr_assert_eq(memcmp(hr_buf_data(&b), "abc", 3), 0);
	hr_buf_reset(&b);
	cr_assert_eq(hr_buf_len(&b), 0);
	cr_assert_eq(hr_buf_putc(&b, 'z'), 0);
	cr_assert_eq(memcmp(hr_buf_data(&b), "z", 1), 0);
	hr_buf_fini(&b);
	cr_assert_eq(hr_buf_len(&b), 0);
	hr_buf_fini(&b); /* twice is harmless */
}

Test(msg, buf_grows_over_many_appends)
{
	hr_buf b;
	hr_buf_init(&b, 7);
	for (int i = 0; i < 100000; i++)
		cr_assert_eq(hr_buf_putc(&b, (char)('a' + i % 26)), 0);
	cr_assert_eq(hr_buf_len(&b), 100000);
	const unsigned char *d = hr_buf_data(&b);
	for (int i = 0; i < 100000; i++)
		cr_assert_eq(d[i], 'a' + i % 26);
	hr_buf_fini(&b);
}

Test(msg, buf_failed_reserve_leaves_buffer_as_it_was)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_buf_append(&b, "keep", 4), 0);
	cr_assert_eq(hr_buf_reserve(&b, SIZE_MAX - 2), HR_ENOMEM);
	cr_assert_eq(hr_buf_len(&b), 4);
	cr_assert_eq(memcmp(hr_buf_data(&b), "keep", 4), 0);
	hr_buf_fini(&b);
}

Test(msg, buf_finish_hands_over_without_copy)
{
	hr_buf b;
	hr_buf_init(&b, 24);
	cr_assert_eq(hr_buf_append(&b, "payload", 7), 0);
	const unsigned char *before = hr_buf_data(&b);
	hr_msg *m = NULL;
	cr_assert_eq(hr_buf_finish(&b, &m), 0);
	cr_assert_eq(hr_msg_data(m), before);
	cr_assert_eq(hr_msg_len(m), 7);
	cr_assert_eq(hr_msg_headroom(m), 24);
	cr_assert_eq(memcmp(hr_msg_data(m), "payload", 7), 0);
	/* The buffer is empty and reusable, with the same headroom. */
	cr_assert_eq(hr_buf_len(&b), 0);
	cr_assert_eq(hr_buf_append(&b, "x", 1), 0);
	hr_msg *m2 = NULL;
	cr_assert_eq(hr_buf_finish(&b, &m2), 0);
	cr_assert_neq(m2, m);
	cr_assert_eq(hr_msg_headroom(m2), 24);
	cr_assert_eq(hr_msg_len(m2), 1);
	hr_msg_unref(m);
	hr_msg_unref(m2);
	hr_buf_fini(&b);
}

Test(msg, buf_finish_of_empty_buffer_gives_empty_message)
{
	hr_buf b;
	hr_buf_init(&b, 16);
	hr_msg *m = NULL;
	cr_assert_eq(hr_buf_finish(&b, &m), 0);
	cr_assert_eq(hr_msg_len(m), 0);
	cr_assert_eq(hr_msg_headroom(m), 16);
	hr_msg_unref(m);
	hr_buf_fini(&b);
}

Test(msg, buf_finish_gives_back_large_slack)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_buf_reserve(&b, 1 << 20), 0);
	cr_assert_eq(hr_buf_append(&b, "tiny", 4), 0);
	hr_msg *m = NULL;
	cr_assert_eq(hr_buf_finish(&b, &m), 0);
	cr_assert_eq(hr_msg_len(m), 4);
	cr_assert_eq(memcmp(hr_msg_data(m), "tiny", 4), 0);
	hr_msg_unref(m);
	hr_buf_fini(&b);
}

Test(msg, buf_tail_truncate)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	unsigned char *t;
	cr_assert_eq(hr_buf__tail(&b, 10, &t), 0);
	memcpy(t, "0123456789", 10);
	cr_assert_eq(hr_buf_len(&b), 0);
	hr_buf__advance(&b, 10);
	cr_assert_eq(hr_buf_len(&b), 10);
	hr_buf__truncate(&b, 4);
	cr_assert_eq(hr_buf_len(&b), 4);
	cr_assert_eq(memcmp(hr_buf_data(&b), "0123", 4), 0);
	hr_buf_fini(&b);
}

/* Build a frame with an n-byte payload and check header and payload. */
static void
check_frame(size_t n, const unsigned char *hdr, size_t hlen)
{
	hr_buf b;
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(hr_buf_putc(&b, (char)('0' + i % 10)), 0);
	hr_msg *m = NULL;
	cr_assert_eq(hr_ws_frame_text(&b, &m), 0);
	cr_assert_eq(hr_msg_len(m), hlen + n, "len %zu: frame %zu", n, hr_msg_len(m));
	cr_assert_eq(memcmp(hr_msg_data(m), hdr, hlen), 0, "len %zu: header", n);
	cr_assert_geq(hr_msg_headroom(m), 16);
	const unsigned char *p = hr_msg_data(m) + hlen;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(p[i], '0' + i % 10);
	cr_assert_eq(hr_buf_len(&b), 0);
	hr_msg_unref(m);
	hr_buf_fini(&b);
}

Test(msg, ws_frame_header_lengths)
{
	check_frame(0, (const unsigned char *)"\x81\x00", 2);
	check_frame(1, (const unsigned char *)"\x81\x01", 2);
	check_frame(125, (const unsigned char *)"\x81\x7d", 2);
	check_frame(126, (const unsigned char *)"\x81\x7e\x00\x7e", 4);
	check_frame(65535, (const unsigned char *)"\x81\x7e\xff\xff", 4);
	check_frame(65536, (const unsigned char *)"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	check_frame(70000, (const unsigned char *)"\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10);
}

Test(msg, ws_frame_needs_headroom)
{
	hr_buf b;
	hr_buf_init(&b, HR_FRAME_HEADROOM - 1);
	cr_assert_eq(hr_buf_append(&b, "{}", 2), 0);
	hr_msg *m = NULL;
	cr_assert_eq(hr_ws_frame_text(&b, &m), HR_EINVAL);
	cr_assert_null(m);
	cr_assert_eq(hr_buf_len(&b), 2);
	cr_assert_eq(memcmp(hr_buf_data(&b), "{}", 2), 0);
	hr_buf_fini(&b);
}

Test(msg, ws_frame_of_unallocated_buffer)
{
	hr_buf b;
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	hr_msg *m = NULL;
	cr_assert_eq(hr_ws_frame_text(&b, &m), 0);
	cr_assert_eq(hr_msg_len(m), 2);
	cr_assert_eq(memcmp(hr_msg_data(m), "\x81\x00", 2), 0);
	cr_assert_eq(hr_msg_headroom(m), HR_FRAME_HEADROOM - 2);
	hr_msg_unref(m);
	hr_buf_fini(&b);
}
