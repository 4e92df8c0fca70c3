/*
 * stress_memory.c: the memory channel layer under TSan. Receivers block in
 * hr_layer_receive while senders, group_send and flush run on other threads;
 * each sender's messages reach its channel in order and exactly once. Then
 * the layer is destroyed under receivers that are still blocked: they must
 * return HR_ECLOSED and destroy must wait for them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer/layer.h"
#include "tsan/stress.h"

#define RECEIVERS 4
#define SENDERS 2
#define PER_SENDER 1500 /* per channel */

static hr_msg *
make_msg(uint32_t sender, uint32_t seq)
{
	hr_buf b;
	hr_msg *m = NULL;
	hr_buf_init(&b, 0);
	if (hr_mp_map(&b, 3) || hr_mp_cstr(&b, "type") || hr_mp_cstr(&b, "t") || hr_mp_cstr(&b, "s")
	    || hr_mp_int(&b, sender) || hr_mp_cstr(&b, "n") || hr_mp_int(&b, seq)
	    || hr_buf_finish(&b, &m)) {
		hr_buf_fini(&b);
		return NULL;
	}
	hr_buf_fini(&b);
	return m;
}

/* Decode "s" and "n" (msgpack positive ints below 65536). */
static int
read_msg(const hr_msg *m, uint32_t *sender, uint32_t *seq)
{
	const unsigned char *v;
	size_t vl;
	const unsigned char *d = hr_msg_data(m);
	size_t len = hr_msg_len(m);
	uint64_t out[2];
	const char *keys[2] = { "s", "n" };
	for (int k = 0; k < 2; k++) {
		if (hr_codec_map_get(d, len, keys[k], &v, &vl) != 0)
			return -1;
		if (vl == 1 && v[0] < 0x80)
			out[k] = v[0];
		else if (vl == 2 && v[0] == 0xcc)
			out[k] = v[1];
		else if (vl == 3 && v[0] == 0xcd)
			out[k] = (uint64_t)v[1] << 8 | v[2];
		else
			return -1;
	}
	*sender = (uint32_t)out[0];
	*seq = (uint32_t)out[1];
	return 0;
}

typedef struct rx {
	hr_layer *l;
	char chan[32];
	int want, got, order_errors, bad, last_rv;
	atomic_int entered;
} rx;

static void *
rx_exact(void *arg)
{
	rx *r = arg;
	uint32_t next[SENDERS] = { 0 };
	for (int spins = 0; r->got < r->want && spins < 100000; spins++) {
		hr_msg *m;
		int rv = hr_layer_receive(r->l, r->chan, 2000, &m);
		if (rv == HR_ETIMEDOUT)
			continue;
		r->last_rv = rv;
		if (rv != 0)
			break;
		uint32_t s, n;
		if (read_msg(m, &s, &n) != 0 || s >= SENDERS)
			r->bad++;
		else if (n != next[s])
			r->order_errors++;
		else
			next[s]++;
		hr_msg_unref(m);
		r->got++;
	}
	return NULL;
}

/* One receive that blocks until the layer is destroyed. */
static void *
rx_until_destroy(void *arg)
{
	rx *r = arg;
	hr_msg *m = NULL;
	atomic_store(&r->entered, 1);
	r->last_rv = hr_layer_receive(r->l, r->chan, -1, &m);
	hr_msg_unref(m);
	return NULL;
}

typedef struct tx {
	hr_layer *l;
	uint32_t id;
	int failed, full_retries;
} tx;

static void *
tx_main(void *arg)
{
	tx *t = arg;
	for (uint32_t i = 0; i < PER_SENDER; i++) {
		hr_msg *m = make_msg(t->id, i);
		if (m == NULL) {
			t->failed++;
			break;
		}
		for (int c = 0; c < RECEIVERS; c++) {
			char chan[32];
			snprintf(chan, sizeof(chan), "rx.%d", c);
			int rv;
			for (int tries = 0;
			     (rv = hr_layer_send(t->l, chan, m)) == HR_EFULL && tries < 5000;
			     tries++) {
				t->full_retries++;
				stress_sleep_ms(1);
			}
			if (rv != 0)
				t->failed++;
		}
		hr_msg_unref(m);
	}
	return NULL;
}

/* group_send and flush on channels nobody counts, racing with the above. */
static void *
noise_main(void *arg)
{
	hr_layer *l = arg;
	int failed = 0;
	for (int i = 0; i < 300; i++) {
		char chan[32];
		snprintf(chan, sizeof(chan), "noise.%d", i % 7);
		failed += hr_layer_group_add(l, "noise", chan) != 0;
		hr_msg *m = make_msg(0, (uint32_t)i);
		if (m == NULL)
			return (void *)1;
		hr_group_send_result res;
		failed += hr_layer_group_send(l, "noise", m, &res) != 0;
		hr_msg_unref(m);
		if (i % 50 == 49) {
			hr_msg *got = NULL;
			if (hr_layer_receive(l, chan, 0, &got) == 0)
				hr_msg_unref(got);
		}
		if (i % 100 == 99)
			failed += hr_layer_group_discard(l, "noise", chan) != 0;
	}
	return failed ? (void *)1 : NULL;
}

static void
exact_delivery(void)
{
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.capacity = 200;
	hr_layer *l;
	REQUIRE(hr_layer_create(&l, &hr_layer_memory_ops, &o) == 0, "layer create");
	rx r[RECEIVERS];
	tx t[SENDERS];
	pthread_t tr[RECEIVERS], tt[SENDERS], tn;
	memset(r, 0, sizeof(r));
	for (int i = 0; i < RECEIVERS; i++) {
		r[i].l = l;
		r[i].want = SENDERS * PER_SENDER;
		snprintf(r[i].chan, sizeof(r[i].chan), "rx.%d", i);
		REQUIRE(pthread_create(&tr[i], NULL, rx_exact, &r[i]) == 0, "pthread_create");
	}
	for (uint32_t i = 0; i < SENDERS; i++) {
		t[i] = (tx) { .l = l, .id = i };
		REQUIRE(pthread_create(&tt[i], NULL, tx_main, &t[i]) == 0, "pthread_create");
	}
	REQUIRE(pthread_create(&tn, NULL, noise_main, l) == 0, "pthread_create");
	void *noise_rv;
	pthread_join(tn, &noise_rv);
	CHECK(noise_rv == NULL, "group_add/group_send/discard failed on the noise thread");
	for (int i = 0; i < SENDERS; i++) {
		pthread_join(tt[i], NULL);
		CHECK(t[i].failed == 0, "sender %d: %d sends failed", i, t[i].failed);
	}
	for (int i = 0; i < RECEIVERS; i++) {
		pthread_join(tr[i], NULL);
		CHECK(r[i].got == r[i].want, "%s: got %d of %d (last %s)", r[i].chan, r[i].got,
		    r[i].want, hr_strerror(r[i].last_rv));
		CHECK(r[i].order_errors == 0 && r[i].bad == 0, "%s: %d out of order, %d bad",
		    r[i].chan, r[i].order_errors, r[i].bad);
	}
	hr_layer_destroy(l);
}

static void
flush_and_destroy_under_blocked_receivers(void)
{
	hr_layer *l;
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	REQUIRE(hr_layer_create(&l, &hr_layer_memory_ops, &o) == 0, "layer create");
	rx r[RECEIVERS];
	pthread_t tr[RECEIVERS];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < RECEIVERS; i++) {
		r[i].l = l;
		snprintf(r[i].chan, sizeof(r[i].chan), "idle.%d", i);
		REQUIRE(
		    pthread_create(&tr[i], NULL, rx_until_destroy, &r[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < RECEIVERS; i++)
		CHECK(
		    stress_wait_at_least(&r[i].entered, 1, 10000), "receiver %d never started", i);
	/* Traffic and flushes elsewhere in the layer while they wait. */
	for (int i = 0; i < 200; i++) {
		hr_msg *m = make_msg(1, (uint32_t)i);
		REQUIRE(m != NULL, "make_msg");
		CHECK(hr_layer_send(l, "busy", m) == 0 || i >= 100, "send %d", i);
		hr_msg_unref(m);
		if (i % 40 == 39)
			CHECK(hr_layer_flush(l) == 0, "flush");
	}
	/* Give the receivers time to be inside the wait, then destroy. */
	stress_sleep_ms(300);
	hr_layer_destroy(l);
	for (int i = 0; i < RECEIVERS; i++) {
		pthread_join(tr[i], NULL);
		CHECK(r[i].last_rv == HR_ECLOSED, "blocked receiver %d returned %s", i,
		    hr_strerror(r[i].last_rv));
	}
}

int
main(void)
{
	exact_delivery();
	flush_and_destroy_under_blocked_receivers();
	return stress_summary();
}
