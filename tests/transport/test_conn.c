/*
 * test_conn.c: an I/O thread's connection table (transport/conn.c): ids of
 * slot + generation, a stale id that finds nothing once its connection has
 * gone (also after its slot was reused), growth past the first 64 slots, and
 * the walk over the live connections. The connections hang off real lws
 * wsis: a context without listeners that adopts the ends of a socketpair as
 * raw files, the smallest real piece conn.c talks to.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/transport_impl.h"

static int
raw_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	return 0;
}

static const struct lws_protocols protocols[]
    = { { "test-raw", raw_cb, 0, 0, 0, NULL, 0 }, { NULL, NULL, 0, 0, 0, NULL, 0 } };

static struct lws_context *ctx;
static struct lws *wsi[2];
static hr_iothread t;

static void
setup(void)
{
	struct lws_context_creation_info info;
	int sv[2];

	lws_set_log_level(0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	ctx = lws_create_context(&info);
	cr_assert_not_null(ctx);
	struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
	cr_assert_not_null(vh);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	for (int i = 0; i < 2; i++) {
		lws_sock_file_fd_type fd = { .filefd = sv[i] }; /* lws owns it now */
		wsi[i]
		    = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, "test-raw", NULL);
		cr_assert_not_null(wsi[i]);
	}
	memset(&t, 0, sizeof(t));
	hr_conn__table_init(&t);
}

static void
teardown(void)
{
	hr_conn__table_fini(&t);
	lws_context_destroy(ctx);
	ctx = NULL;
}

TestSuite(conn, .init = setup, .fini = teardown, .timeout = 10);

Test(conn, a_new_connection_is_found_by_its_id_and_set_on_its_wsi)
{
	hr_conn *a, *b;

	cr_assert_eq(hr_conn__new(&t, wsi[0], &a), 0);
	cr_assert_eq(hr_conn__new(&t, wsi[1], &b), 0);
	cr_assert_neq(a->id, b->id);
	cr_assert_eq(hr_conn__get(&t, a->id), a);
	cr_assert_eq(hr_conn__get(&t, b->id), b);
	cr_assert_eq(lws_get_opaque_user_data(wsi[0]), a);
	cr_assert_eq(lws_get_opaque_user_data(wsi[1]), b);
	cr_assert_eq(a->wsi, wsi[0]);
	cr_assert_eq(a->t, &t);
	cr_assert_eq(a->ws.sfd, -1, "no batched sends until ESTABLISHED says so");
	cr_assert_null(a->http);
	cr_assert_null(a->h1);
	hr_conn__destroy(a);
	hr_conn__destroy(b);
}

Test(conn, a_stale_id_finds_nothing_even_after_its_slot_is_reused)
{
	hr_conn *a, *b;

	cr_assert_eq(hr_conn__new(&t, wsi[0], &a), 0);
	uint64_t old = a->id;
	hr_conn__destroy(a);
	cr_assert_null(hr_conn__get(&t, old));
	cr_assert_null(lws_get_opaque_user_data(wsi[0]));

	cr_assert_eq(hr_conn__new(&t, wsi[0], &b), 0);
	cr_assert_eq((uint32_t)b->id, (uint32_t)old, "the freed slot is reused first");
	cr_assert_neq(b->id, old, "with the next generation");
	cr_assert_null(hr_conn__get(&t, old));
	cr_assert_eq(hr_conn__get(&t, b->id), b);
	hr_conn__destroy(b);
}

Test(conn, ids_outside_the_table_or_of_generation_zero_find_nothing)
{
	hr_conn *a;

	cr_assert_null(hr_conn__get(&t, 0), "an empty table");
	cr_assert_eq(hr_conn__new(&t, wsi[0], &a), 0);
	cr_assert_null(hr_conn__get(&t, (uint64_t)1 << 32 | 1000000u), "slot past the table");
	cr_assert_null(hr_conn__get(&t, (uint32_t)a->id), "generation 0 is never given");
	hr_conn__destroy(a);
}

static void
count_cb(hr_conn *c, void *arg)
{
	uint64_t *sum = arg;
	sum[0]++;
	sum[1] += c->id;
}

Test(conn, the_table_grows_and_each_visits_the_live_connections)
{
	enum { N = 200 };
	hr_conn *c[N];
	uint64_t sum[2] = { 0, 0 }, want = 0;

	for (int i = 0; i < N; i++) {
		cr_assert_eq(hr_conn__new(&t, wsi[i % 2], &c[i]), 0);
		for (int j = 0; j < i; j++)
			cr_assert_neq(c[j]->id, c[i]->id);
	}
	cr_assert_geq(t.nslots, N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(hr_conn__get(&t, c[i]->id), c[i]);
	for (int i = 0; i < N; i += 2) /* close every other one */
		hr_conn__destroy(c[i]);
	for (int i = 1; i < N; i += 2)
		want += c[i]->id;
	hr_conn__each(&t, count_cb, sum);
	cr_assert_eq(sum[0], N / 2);
	cr_assert_eq(sum[1], want);
	for (int i = 1; i < N; i += 2)
		hr_conn__destroy(c[i]);
	sum[0] = sum[1] = 0;
	hr_conn__each(&t, count_cb, sum);
	cr_assert_eq(sum[0], 0);
}
