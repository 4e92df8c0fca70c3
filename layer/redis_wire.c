/*
 * redis_wire.c: what the Redis backend stores, byte for byte as
 * channels_redis 4.0 does (docs/PROTOCOL.md, "The Redis wire format"; channels_redis's core.py is
 * the authority): a member is 12 random bytes and the msgpack message, with "__asgi_channel__"
 * naming the target channel(s) of a specific channel's process key; and which shard a name lives on
 * (zlib's CRC32, channels_redis' _consistent_hash). The message itself goes through the codec
 * (hr_codec_*, hr_mp_*). Pure code, apart from the random source.
 *
 * Threads: any, concurrently (no state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "layer/redis_int.h"

#define RD_RANDOM_LEN 12         /* random bytes in front of every member */
#define RD_MEMBER_MAX (8u << 20) /* largest member accepted from Redis */

/* ------------------------------------------------------------ ids, shards */

int
hr_layer__redis_random(unsigned char *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? 0 : HR_EIO;
}

int
hr_layer__redis_uuid4_hex(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	if (hr_layer__redis_random(b, sizeof(b)) != 0)
		return HR_EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
	return 0;
}

/* zlib's crc32 (IEEE 802.3, reflected). Names are short: bitwise is fine. */
static uint32_t
crc32_ieee(const char *s, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= (unsigned char)s[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

size_t
hr_layer__redis_shard_of(size_t n, const char *name, size_t len)
{
	if (n == 1)
		return 0;
	double bigval = (double)(crc32_ieee(name, len) & 0xfff);
	size_t i = (size_t)(bigval / (4096.0 / (double)n));
	return i < n ? i : n - 1;
}

/* ------------------------------------------------------------ keys */

size_t
hr_layer__redis_key(
    const hr_layer *l, char *key, const char *a, size_t alen, const char *b, size_t blen)
{
	const hr_redis *r = l->_be;
	memcpy(key, l->_opts.prefix, r->plen);
	memcpy(key + r->plen, a, alen);
	memcpy(key + r->plen + alen, b, blen);
	key[r->plen + alen + blen] = '\0';
	return r->plen + alen + blen;
}

/* ------------------------------------------------------------ members */

/* Build into out: RD_RANDOM_LEN random bytes, then the map msg with
 * "__asgi_channel__" (dropped first if present) appended last, as Python's
 * dict assignment does: a str when as_list is false (names[0]), else a list
 * of names. */
static int
build_member(const hr_msg *msg, bool as_list, const char *const *names, const size_t *lens,
    size_t n, hr_buf *out)
{
	unsigned char rnd[RD_RANDOM_LEN];
	hr_buf body;
	hr_buf_init(&body, 0);
	int rv = hr_layer__redis_random(rnd, sizeof(rnd));
	if (rv != 0 || (rv = hr_buf_append(out, rnd, sizeof(rnd))) != 0)
		goto out;
	if ((rv = hr_codec_map_remove(hr_msg_data(msg), hr_msg_len(msg), "__asgi_channel__", &body))
	    != 0)
		goto out;
	uint32_t pairs;
	size_t hlen;
	if ((rv = hr_codec_map_header(hr_buf_data(&body), hr_buf_len(&body), &pairs, &hlen)) != 0)
		goto out;
	if (pairs == UINT32_MAX) {
		rv = HR_EMSGSIZE;
		goto out;
	}
	if ((rv = hr_mp_map(out, pairs + 1)) != 0
	    || (rv = hr_buf_append(out, hr_buf_data(&body) + hlen, hr_buf_len(&body) - hlen)) != 0
	    || (rv = hr_mp_cstr(out, "__asgi_channel__")) != 0)
		goto out;
	if (!as_list) {
		rv = hr_mp_str(out, names[0], lens[0]);
		goto out;
	}
	if (n > UINT32_MAX) {
		rv = HR_EMSGSIZE;
		goto out;
	}
	if ((rv = hr_mp_array(out, (uint32_t)n)) != 0)
		goto out;
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = hr_mp_str(out, names[i], lens[i]);
out:
	hr_buf_fini(&body);
	return rv;
}

int
hr_layer__redis_member_send(const hr_msg *msg, const char *channel, size_t clen, hr_buf *out)
{
	const unsigned char *dummy;
	size_t dlen;
	int rv = hr_codec_map_get(
	    hr_msg_data(msg), hr_msg_len(msg), "__asgi_channel__", &dummy, &dlen);
	if (rv == 0)
		return HR_EINVAL; /* reserved, as core.py asserts */
	if (rv != HR_ENOENT)
		return rv == HR_ETYPE ? HR_ETYPE : HR_EBADMSG;
	if (hr_name_nonlocal_len(channel, clen) > 0) {
		const char *names[] = { channel };
		size_t lens[] = { clen };
		return build_member(msg, false, names, lens, 1, out);
	}
	unsigned char rnd[RD_RANDOM_LEN];
	if ((rv = hr_layer__redis_random(rnd, sizeof(rnd))) == 0
	    && (rv = hr_buf_append(out, rnd, sizeof(rnd))) == 0)
		rv = hr_buf_append(out, hr_msg_data(msg), hr_msg_len(msg));
	return rv;
}

int
hr_layer__redis_member_group(
    const hr_msg *msg, const char *const *names, const size_t *lens, size_t n, hr_buf *out)
{
	return build_member(msg, true, names, lens, n, out);
}

/* Fill t from the __asgi_channel__ value [v, v+vlen): a str or a non-empty
 * list of strs, each a valid channel name; when `nonlocal` is given (a
 * process key was read), each must be a specific channel of that process. */
static int
targets_from(
    const unsigned char *v, size_t vlen, const char *nonlocal, size_t nllen, hr_layer_targets *t)
{
	const unsigned char *p = v, *end = v + vlen;
	uint32_t count;
	size_t n, hl;
	int rv = hr_codec_array_header(v, vlen, &count, &hl);
	bool list = rv == 0;
	if (rv != 0 && rv != HR_ETYPE)
		return HR_EBADMSG;
	if (list && (count == 0 || count > vlen))
		return HR_EBADMSG;
	n = list ? count : 1; /* else a str, read below */
	p += list ? hl : 0;
	t->names = calloc(n, sizeof(*t->names));
	t->_store = malloc(vlen + n); /* the strs' bytes plus a NUL each */
	if (t->names == NULL || t->_store == NULL)
		return HR_ENOMEM;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s;
		size_t len, used;
		if (hr_codec_read_str(p, (size_t)(end - p), &s, &len, &used) != 0
		    || hr_name_check_channel(s, len) != 0)
			return HR_EBADMSG;
		p += used;
		if (nonlocal != NULL
		    && (hr_name_nonlocal_len(s, len) != nllen || memcmp(s, nonlocal, nllen) != 0))
			return HR_EBADMSG;
		memcpy(t->_store + off, s, len);
		t->_store[off + len] = '\0';
		t->names[i] = t->_store + off;
		off += len + 1;
	}
	t->n = n;
	return p == end ? 0 : HR_EBADMSG;
}

/* Turn a member popped from Redis into a message and its targets. Anything
 * malformed is HR_EBADMSG (the caller drops and counts it). */
static int
decode_member(const char *mem, size_t mlen, const char *channel, size_t clen, bool process_key,
    hr_msg **out, hr_layer_targets *t)
{
	if (mlen <= RD_RANDOM_LEN || mlen > RD_MEMBER_MAX)
		return HR_EBADMSG;
	const unsigned char *mp = (const unsigned char *)mem + RD_RANDOM_LEN;
	size_t len = mlen - RD_RANDOM_LEN;
	if (hr_codec_validate(mp, len) != 0)
		return HR_EBADMSG;
	uint32_t pairs;
	size_t hlen;
	if (hr_codec_map_header(mp, len, &pairs, &hlen) != 0)
		return HR_EBADMSG;
	const unsigned char *v;
	size_t vlen;
	int rv = hr_codec_map_get(mp, len, "__asgi_channel__", &v, &vlen);
	if (rv == HR_ENOENT) {
		/* Nothing names a target: the channel read is the target. */
		hr_layer_targets one = { 0 };
		if (process_key)
			return HR_EBADMSG; /* nothing in Channels writes this */
		one.names = calloc(1, sizeof(*one.names));
		one._store = malloc(clen + 1);
		if (one.names == NULL || one._store == NULL) {
			hr_layer_targets_fini(&one);
			return HR_ENOMEM;
		}
		memcpy(one._store, channel, clen);
		one._store[clen] = '\0';
		one.names[0] = one._store;
		one.n = 1;
		if ((rv = hr_msg_copy(mp, len, out)) != 0) {
			hr_layer_targets_fini(&one);
			return rv;
		}
		*t = one;
		return 0;
	}
	if (rv != 0)
		return HR_EBADMSG;
	hr_layer_targets got = { 0 };
	if ((rv = targets_from(v, vlen, process_key ? channel : NULL, clen, &got)) != 0) {
		hr_layer_targets_fini(&got);
		return rv;
	}
	hr_buf b;
	hr_buf_init(&b, 0);
	if ((rv = hr_codec_map_remove(mp, len, "__asgi_channel__", &b)) != 0
	    || (rv = hr_buf_finish(&b, out)) != 0) {
		hr_buf_fini(&b);
		hr_layer_targets_fini(&got);
		return rv == HR_ENOMEM ? rv : HR_EBADMSG;
	}
	hr_buf_fini(&b);
	*t = got;
	return 0;
}

int
hr_layer__redis_decode_member(const char *mem, size_t mlen, const char *channel, size_t clen,
    bool process_key, hr_msg **out, hr_layer_targets *t)
{
	*out = NULL;
	memset(t, 0, sizeof(*t));
	return decode_member(mem, mlen, channel, clen, process_key, out, t);
}
