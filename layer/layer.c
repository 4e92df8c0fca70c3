/*
 * layer.c: the public channel-layer calls (layer.h). Each one checks its
 * arguments and Channels' name rules, then dispatches to the backend's ops
 * table (layer_impl.h); an optional operation a backend lacks answers
 * HR_ENOTSUP. Also: defaults, channel_capacity lookup, statistics.
 * Any thread; the backends do their own locking.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "layer/layer_impl.h"

void
hr_layer_opts_default(hr_layer_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->prefix = "asgi";
	o->capacity = 100;
	o->expiry = 60;
	o->group_expiry = 86400;
}

static double
realtime_now(void)
{
	struct timespec ts;
	if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
hr_layer__now(const hr_layer *l)
{
	if (l->_opts.clock != NULL)
		return l->_opts.clock(l->_opts.clock_arg);
	return realtime_now();
}

void
hr_layer__count_expired(hr_layer *l, uint64_t n)
{
	atomic_fetch_add_explicit(&l->_expired, n, memory_order_relaxed);
}

void
hr_layer__count_full(hr_layer *l, uint64_t n)
{
	atomic_fetch_add_explicit(&l->_full, n, memory_order_relaxed);
}

void
hr_layer__count_group_expired(hr_layer *l, uint64_t n)
{
	atomic_fetch_add_explicit(&l->_group_expired, n, memory_order_relaxed);
}

void
hr_layer__count_bad(hr_layer *l, uint64_t n)
{
	atomic_fetch_add_explicit(&l->_bad, n, memory_order_relaxed);
}

void
hr_layer__count_failover(hr_layer *l)
{
	atomic_fetch_add_explicit(&l->_failovers, 1, memory_order_relaxed);
}

void
hr_layer_get_stats(hr_layer *l, hr_layer_stats *out)
{
	if (out == NULL)
		return;
	if (l == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	out->expired = atomic_load_explicit(&l->_expired, memory_order_relaxed);
	out->full = atomic_load_explicit(&l->_full, memory_order_relaxed);
	out->group_expired = atomic_load_explicit(&l->_group_expired, memory_order_relaxed);
	out->bad = atomic_load_explicit(&l->_bad, memory_order_relaxed);
	out->failovers = atomic_load_explicit(&l->_failovers, memory_order_relaxed);
}

int
hr_layer__random_letters(char *out, size_t n)
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned char rnd[64];
	size_t have = 0, used = sizeof(rnd);
	while (have < n) {
		if (used == sizeof(rnd)) {
			if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
				return HR_EIO;
			used = 0;
		}
		unsigned char b = rnd[used++];
		if (b >= 208) /* 208 = 4 * 52: reject to keep the letters uniform */
			continue;
		out[have++] = letters[b % 52];
	}
	return 0;
}

size_t
hr_layer__capacity(const hr_layer *l, const char *channel, size_t len)
{
	const hr_layer_opts *o = &l->_opts;
	for (size_t i = 0; i < o->n_channel_capacity; i++)
		if (hr_glob_match(o->channel_capacity[i].glob, channel, len))
			return o->channel_capacity[i].capacity;
	return o->capacity;
}

size_t
hr_layer_capacity(const hr_layer *l, const char *channel)
{
	if (l == NULL)
		return 0;
	if (channel == NULL)
		return l->_opts.capacity;
	return hr_layer__capacity(l, channel, strlen(channel));
}

int
hr_layer_create(hr_layer **out, const hr_layer_ops *ops, const hr_layer_opts *opts)
{
	if (out == NULL)
		return HR_EINVAL;
	*out = NULL;
	if (ops == NULL || ops->create == NULL || ops->destroy == NULL || ops->send == NULL)
		return HR_EINVAL;
	hr_layer_opts o;
	if (opts != NULL)
		o = *opts;
	else
		hr_layer_opts_default(&o);
	if (o.prefix == NULL)
		o.prefix = "asgi";
	if (o.n_channel_capacity > 0 && o.channel_capacity == NULL)
		return HR_EINVAL;
	for (size_t i = 0; i < o.n_channel_capacity; i++)
		if (o.channel_capacity[i].glob == NULL)
			return HR_EINVAL;
	/* !(x >= 0) also refuses NaN */
	if (!(o.expiry >= 0) || !(o.group_expiry >= 0) || isinf(o.expiry) || isinf(o.group_expiry))
		return HR_EINVAL;

	hr_layer *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return HR_ENOMEM;
	l->_ops = ops;
	l->_opts = o;
	atomic_init(&l->_expired, 0);
	atomic_init(&l->_full, 0);
	atomic_init(&l->_group_expired, 0);
	atomic_init(&l->_bad, 0);
	atomic_init(&l->_failovers, 0);
	int rv = ops->create(l);
	if (rv != 0) {
		ops->destroy(l);
		free(l);
		return rv;
	}
	*out = l;
	return 0;
}

void
hr_layer_destroy(hr_layer *l)
{
	if (l == NULL)
		return;
	l->_ops->destroy(l);
	free(l);
}

/* A message must be a msgpack map (Channels messages are dicts). Only the
 * header byte is checked here; the layer stores the bytes as they are. */
static int
check_msg(hr_msg *msg)
{
	if (msg == NULL || hr_msg_len(msg) == 0)
		return HR_EINVAL;
	uint32_t n;
	size_t hl;
	/* Only the header is read; a map cut short is the backend's to refuse. */
	return hr_codec_map_header(hr_msg_data(msg), hr_msg_len(msg), &n, &hl) == HR_ETYPE
	    ? HR_ETYPE
	    : 0;
}

/* Channels' name rules, with the name's length in *len for the backend. */
static int
check_channel(const char *channel, size_t *len)
{
	*len = strlen(channel);
	return hr_name_check_channel(channel, *len);
}

static int
check_group(const char *group, size_t *len)
{
	*len = strlen(group);
	return hr_name_check_group(group, *len);
}

int
hr_layer_send(hr_layer *l, const char *channel, hr_msg *msg)
{
	if (l == NULL || channel == NULL)
		return HR_EINVAL;
	size_t clen;
	int rv = check_channel(channel, &clen);
	if (rv == 0)
		rv = check_msg(msg);
	return rv != 0 ? rv : l->_ops->send(l, channel, clen, msg);
}

int
hr_layer_receive(hr_layer *l, const char *channel, int timeout_ms, hr_msg **out)
{
	if (out != NULL)
		*out = NULL;
	if (l == NULL || channel == NULL || out == NULL)
		return HR_EINVAL;
	size_t clen;
	int rv = check_channel(channel, &clen);
	if (rv != 0)
		return rv;
	if (l->_ops->receive == NULL)
		return HR_ENOTSUP;
	/* Nothing may touch l after this returns: destroy may be freeing it. */
	return l->_ops->receive(l, channel, clen, timeout_ms, out);
}

int
hr_layer_new_channel(hr_layer *l, const char *prefix, char *out, size_t outlen)
{
	if (l == NULL || out == NULL || outlen == 0)
		return HR_EINVAL;
	out[0] = '\0';
	if (prefix == NULL)
		prefix = l->_ops->new_channel_prefix != NULL ? l->_ops->new_channel_prefix
		                                             : "specific.";
	if (l->_ops->new_channel == NULL)
		return HR_ENOTSUP;
	int rv = l->_ops->new_channel(l, prefix, out, outlen);
	/* Channels would hand back whatever the prefix makes; herald refuses a
	 * name that no other call would accept. */
	if (rv == 0)
		rv = hr_name_check_channel(out, strlen(out));
	if (rv != 0)
		out[0] = '\0';
	return rv;
}

/* group_add and group_discard: the same checks, then the backend's op. */
static int
group_membership(hr_layer *l, const char *group, const char *channel, bool add)
{
	if (l == NULL || group == NULL || channel == NULL)
		return HR_EINVAL;
	size_t glen, clen;
	int rv = check_group(group, &glen);
	if (rv == 0)
		rv = check_channel(channel, &clen);
	if (rv != 0)
		return rv;
	int (*op)(hr_layer *, const char *, size_t, const char *, size_t)
	    = add ? l->_ops->group_add : l->_ops->group_discard;
	if (op == NULL)
		return HR_ENOTSUP;
	return op(l, group, glen, channel, clen);
}

int
hr_layer_group_add(hr_layer *l, const char *group, const char *channel)
{
	return group_membership(l, group, channel, true);
}

int
hr_layer_group_discard(hr_layer *l, const char *group, const char *channel)
{
	return group_membership(l, group, channel, false);
}

/* group_send and group_send_except: res (or a local one) starts zeroed. */
static int
group_send(
    hr_layer *l, const char *group, hr_msg *msg, const char *except, hr_group_send_result *res)
{
	size_t glen;
	int rv = check_group(group, &glen);
	if (rv == 0)
		rv = check_msg(msg);
	if (rv != 0)
		return rv;
	if (except == NULL) {
		if (l->_ops->group_send == NULL)
			return HR_ENOTSUP;
		return l->_ops->group_send(l, group, glen, msg, res);
	}
	if (l->_ops->group_send_except == NULL)
		return HR_ENOTSUP;
	return l->_ops->group_send_except(l, group, glen, msg, except, strlen(except), res);
}

int
hr_layer_group_send(hr_layer *l, const char *group, hr_msg *msg, hr_group_send_result *res)
{
	hr_group_send_result local;
	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (l == NULL || group == NULL)
		return HR_EINVAL;
	return group_send(l, group, msg, NULL, res);
}

int
hr_layer_group_send_except(
    hr_layer *l, const char *group, hr_msg *msg, const char *except, hr_group_send_result *res)
{
	hr_group_send_result local;
	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (l == NULL || group == NULL || except == NULL)
		return HR_EINVAL;
	return group_send(l, group, msg, except, res);
}

int
hr_layer_flush(hr_layer *l)
{
	if (l == NULL)
		return HR_EINVAL;
	if (l->_ops->flush == NULL)
		return HR_ENOTSUP;
	return l->_ops->flush(l);
}

void
hr_layer_targets_init(hr_layer_targets *t)
{
	memset(t, 0, sizeof(*t));
}

void
hr_layer_targets_fini(hr_layer_targets *t)
{
	if (t == NULL)
		return;
	free(t->names);
	free(t->_store);
	memset(t, 0, sizeof(*t));
}

int
hr_layer_receive_targets(
    hr_layer *l, const char *channel, int timeout_ms, hr_msg **out, hr_layer_targets *targets)
{
	if (out != NULL)
		*out = NULL;
	if (targets != NULL)
		hr_layer_targets_fini(targets);
	if (l == NULL || channel == NULL || out == NULL || targets == NULL)
		return HR_EINVAL;
	size_t clen;
	int rv = check_channel(channel, &clen);
	if (rv != 0)
		return rv;
	if (l->_ops->receive_targets == NULL)
		return HR_ENOTSUP;
	return l->_ops->receive_targets(l, channel, clen, timeout_ms, out, targets);
}

int
hr_layer_client_prefix(hr_layer *l, char *out, size_t outlen)
{
	if (l == NULL || out == NULL || outlen == 0)
		return HR_EINVAL;
	out[0] = '\0';
	if (l->_ops->client_prefix == NULL)
		return HR_ENOTSUP;
	return l->_ops->client_prefix(l, out, outlen);
}

int
hr_layer_receive_batch(
    hr_layer *l, const char *channel, int timeout_ms, hr_layer_item *items, size_t max, size_t *n)
{
	if (n != NULL)
		*n = 0;
	if (l == NULL || channel == NULL || items == NULL || max == 0 || n == NULL)
		return HR_EINVAL;
	size_t clen;
	int rv = check_channel(channel, &clen);
	if (rv != 0)
		return rv;
	if (l->_ops->receive_batch == NULL)
		return HR_ENOTSUP;
	memset(items, 0, max * sizeof(*items));
	return l->_ops->receive_batch(l, channel, clen, timeout_ms, items, max, n);
}

void
hr_layer_items_release(hr_layer_item *items, size_t n)
{
	for (size_t i = 0; items != NULL && i < n; i++) {
		hr_msg_unref(items[i].msg);
		items[i].msg = NULL;
		hr_layer_targets_fini(&items[i].targets);
	}
}
