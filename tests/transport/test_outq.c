/*
 * test_outq.c: a connection's outbound queue (transport/outq.c, the pure
 * part): the bounds by count (HR_CONN_QMAX) and bytes (HR_CONN_QBYTES), drop
 * the oldest with the count of frames dropped, FIFO order across the ring's
 * wrap and growth, and what a batched send hands out (span, iovecs) and
 * releases after a short send. The send itself goes through the real
 * sys_send.c batch (sendmsg) into a real socketpair.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "transport/transport_impl.h"

TestSuite(outq, .timeout = 10);

/* A frame of len bytes: "<n>" then 'x' up to len (len >= 8). */
static hr_msg *
frame(unsigned n, size_t len)
{
	hr_msg *m;
	cr_assert_eq(hr_msg_alloc(0, len, &m), 0);
	memset(hr_msg_data(m), 'x', len);
	char tag[16];
	int k = snprintf(tag, sizeof(tag), "%u:", n);
	cr_assert(k > 0 && (size_t)k <= len);
	memcpy(hr_msg_data(m), tag, (size_t)k);
	return m;
}

static unsigned
tag_of(const hr_msg *m)
{
	unsigned n = 0;
	cr_assert_eq(sscanf((const char *)hr_msg_data(m), "%u:", &n), 1);
	return n;
}

Test(outq, zeroed_is_empty_and_fini_leaves_it_reusable)
{
	hr_outq q = { 0 };
	unsigned dropped = 99;

	cr_assert_eq(q.len, 0);
	cr_assert_eq(hr_outq__span(&q, 10, 1000), 0);
	hr_outq__fini(&q);
	cr_assert_eq(hr_outq__push(&q, frame(1, 16), &dropped), 0);
	cr_assert_eq(dropped, 0);
	cr_assert_eq(q.len, 1);
	cr_assert_eq(q.bytes, 16);
	hr_outq__fini(&q);
	cr_assert_eq(q.len, 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_null(q.ring);
	cr_assert_eq(hr_outq__push(&q, frame(2, 16), &dropped), 0);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 2);
	hr_outq__fini(&q);
}

Test(outq, fifo_across_the_wrap_and_growth)
{
	hr_outq q = { 0 };
	unsigned dropped, next_in = 0, next_out = 0;

	/* interleave pushes and pops so head wraps before each growth */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 5; i++) {
			cr_assert_eq(hr_outq__push(&q, frame(next_in++, 32), &dropped), 0);
			cr_assert_eq(dropped, 0);
		}
		for (int i = 0; i < 3; i++) {
			hr_msg *m = hr_outq__pop(&q);
			cr_assert_eq(tag_of(m), next_out++);
			hr_msg_unref(m);
		}
	}
	cr_assert_eq(q.len, 100);
	cr_assert_eq(q.bytes, 100 * 32);
	for (uint32_t i = 0; i < q.len; i++)
		cr_assert_eq(tag_of(hr_outq__peek(&q, i)), next_out + i);
	hr_outq__fini(&q);
}

Test(outq, count_bound_drops_the_oldest_and_counts_them)
{
	hr_outq q = { 0 };
	unsigned dropped;

	for (unsigned i = 0; i < HR_CONN_QMAX; i++) {
		cr_assert_eq(hr_outq__push(&q, frame(i, 8), &dropped), 0);
		cr_assert_eq(dropped, 0);
	}
	cr_assert_eq(q.len, HR_CONN_QMAX);
	cr_assert_eq(q.cap, HR_CONN_QMAX);
	cr_assert_eq(hr_outq__push(&q, frame(HR_CONN_QMAX, 8), &dropped), 0);
	cr_assert_eq(dropped, 1);
	cr_assert_eq(q.len, HR_CONN_QMAX);
	cr_assert_eq(q.cap, HR_CONN_QMAX, "the ring never grows past the bound");
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 1, "frame 0, the oldest, went");
	cr_assert_eq(tag_of(hr_outq__peek(&q, HR_CONN_QMAX - 1)), HR_CONN_QMAX);
	cr_assert_eq(q.bytes, (size_t)HR_CONN_QMAX * 8);
	hr_outq__fini(&q);
}

Test(outq, byte_bound_drops_as_many_as_it_takes)
{
	hr_outq q = { 0 };
	unsigned dropped;
	size_t big = HR_CONN_QBYTES / 4;

	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(hr_outq__push(&q, frame(i, big), &dropped), 0);
		cr_assert_eq(dropped, 0, "exactly HR_CONN_QBYTES still fits");
	}
	cr_assert_eq(q.bytes, (size_t)HR_CONN_QBYTES);
	cr_assert_eq(hr_outq__push(&q, frame(4, 16), &dropped), 0);
	cr_assert_eq(dropped, 1);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 1);
	/* a frame of twice the quarter pushes out two more */
	cr_assert_eq(hr_outq__push(&q, frame(5, 2 * big), &dropped), 0);
	cr_assert_eq(dropped, 2);
	cr_assert_eq(q.len, 3);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 3);
	cr_assert_eq(q.bytes, big + 16 + 2 * big);
	/* a frame over the whole bound empties the queue and stays alone */
	cr_assert_eq(hr_outq__push(&q, frame(6, HR_CONN_QBYTES + 1), &dropped), 0);
	cr_assert_eq(dropped, 3);
	cr_assert_eq(q.len, 1);
	cr_assert_eq(q.bytes, (size_t)HR_CONN_QBYTES + 1);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 6);
	/* and the next one replaces it */
	cr_assert_eq(hr_outq__push(&q, frame(7, 8), &dropped), 0);
	cr_assert_eq(dropped, 1);
	cr_assert_eq(q.len, 1);
	cr_assert_eq(q.bytes, 8);
	hr_outq__fini(&q);
}

Test(outq, span_stops_at_the_frame_or_byte_limit)
{
	hr_outq q = { 0 };
	unsigned dropped;

	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(hr_outq__push(&q, frame(i, 100), &dropped), 0);
	cr_assert_eq(hr_outq__span(&q, 256, 65536), 10);
	cr_assert_eq(hr_outq__span(&q, 4, 65536), 4);
	cr_assert_eq(hr_outq__span(&q, 256, 350), 3);
	cr_assert_eq(hr_outq__span(&q, 256, 300), 3, "a frame that ends on the limit fits");
	cr_assert_eq(hr_outq__span(&q, 256, 99), 0, "nothing when the head alone is too big");
	cr_assert_eq(hr_outq__span(&q, 0, 65536), 0);
	cr_assert_eq(q.len, 10, "span takes nothing");
	hr_outq__fini(&q);
}

Test(outq, release_sent_keeps_what_a_short_send_left)
{
	hr_outq q = { 0 };
	unsigned dropped;
	size_t partial = 99;

	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(hr_outq__push(&q, frame(i, 100), &dropped), 0);
	/* a send of the first 4 frames that took 250 bytes */
	cr_assert_eq(hr_outq__release_sent(&q, 4, 250, &partial), 2);
	cr_assert_eq(partial, 50);
	cr_assert_eq(q.len, 3);
	cr_assert_eq(q.bytes, 300);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 2);
	/* all of a 2-frame send: the frame after it stays */
	cr_assert_eq(hr_outq__release_sent(&q, 2, 200, &partial), 2);
	cr_assert_eq(partial, 0);
	cr_assert_eq(q.len, 1);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 4);
	/* nothing sent */
	cr_assert_eq(hr_outq__release_sent(&q, 1, 0, &partial), 0);
	cr_assert_eq(partial, 0);
	cr_assert_eq(q.len, 1);
	hr_outq__fini(&q);
}

static unsigned done_calls;
static ssize_t done_res;

static void
done(void *cookie, ssize_t res, void *arg)
{
	cr_assert_eq(cookie, arg);
	done_calls++;
	done_res = res;
}

Test(outq, a_batched_send_hands_out_the_queued_frames_in_order)
{
	hr_outq q = { 0 };
	hr_sendbatch *b;
	unsigned dropped;
	int sv[2];
	char want[1024], got[1024];
	size_t wl = 0;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	cr_assert_eq(hr_sys__sendbatch_create(&b, false), 0);
	for (unsigned i = 0; i < 6; i++) {
		hr_msg *m = frame(i, 40 + i);
		memcpy(want + wl, hr_msg_data(m), hr_msg_len(m));
		wl += hr_msg_len(m);
		cr_assert_eq(hr_outq__push(&q, m, &dropped), 0);
	}
	/* what outq.c's add_send takes: up to 4 frames here */
	unsigned n = hr_outq__span(&q, 4, HR_SCRATCH);
	cr_assert_eq(n, 4);
	struct iovec *v = hr_sys__sendbatch_add(b, sv[0], n, &q);
	cr_assert_not_null(v);
	hr_outq__iov(&q, v, n);
	done_calls = 0;
	hr_sys__sendbatch_flush(b, done, &q);
	cr_assert_eq(done_calls, 1);
	size_t four = 40 + 41 + 42 + 43;
	cr_assert_eq(done_res, (ssize_t)four);
	size_t partial;
	cr_assert_eq(hr_outq__release_sent(&q, n, (size_t)done_res, &partial), 4);
	cr_assert_eq(partial, 0);
	cr_assert_eq(q.len, 2);
	cr_assert_eq(read(sv[1], got, sizeof(got)), (ssize_t)four);
	cr_assert_eq(memcmp(got, want, four), 0);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 4);

	hr_sys__sendbatch_destroy(b);
	hr_outq__fini(&q);
	close(sv[0]);
	close(sv[1]);
}

Test(outq, a_drained_backlog_gives_its_ring_back_a_small_ring_stays)
{
	hr_outq q = { 0 };
	unsigned dropped;

	/* a backlog past HR_OUTQ_KEEP grows the ring; draining it frees it */
	for (unsigned i = 0; i < 3 * HR_OUTQ_KEEP; i++)
		cr_assert_eq(hr_outq__push(&q, frame(i, 16), &dropped), 0);
	cr_assert_gt(q.cap, HR_OUTQ_KEEP);
	for (unsigned i = 0; i < 3 * HR_OUTQ_KEEP; i++) {
		hr_msg *m = hr_outq__pop(&q);
		cr_assert_eq(tag_of(m), i);
		hr_msg_unref(m);
	}
	cr_assert_eq(q.len, 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_null(q.ring);
	cr_assert_eq(q.cap, 0);

	/* and the queue works on from empty */
	cr_assert_eq(hr_outq__push(&q, frame(7, 16), &dropped), 0);
	cr_assert_eq(tag_of(hr_outq__peek(&q, 0)), 7);
	hr_msg_unref(hr_outq__pop(&q));

	/* a ring of at most HR_OUTQ_KEEP slots is kept across drains */
	for (unsigned i = 0; i < HR_OUTQ_KEEP; i++)
		cr_assert_eq(hr_outq__push(&q, frame(i, 16), &dropped), 0);
	uint32_t cap = q.cap;
	cr_assert_leq(cap, HR_OUTQ_KEEP);
	for (unsigned i = 0; i < HR_OUTQ_KEEP; i++)
		hr_msg_unref(hr_outq__pop(&q));
	cr_assert_not_null(q.ring);
	cr_assert_eq(q.cap, cap);
	hr_outq__fini(&q);
}
