/*
 * test_proxy.c: --trusted-proxies and X-Forwarded-For (transport/proxy.c),
 * and the JSON string writer of the json log format (transport/log.c):
 * pure functions, no node.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "transport/transport_impl.h"

TestSuite(proxy_list, .timeout = 10);
TestSuite(forwarded_for, .timeout = 10);
TestSuite(log_json, .timeout = 10);

static hr_proxy_list
list(const char *s)
{
	hr_proxy_list l;
	char err[200];
	int rv = hr_proxy_list_parse(s, &l, err, sizeof(err));
	cr_assert_eq(rv, 0, "%s: %s", s, err);
	return l;
}

static void
addr(const char *s, uint8_t out[16])
{
	cr_assert_eq(hr_proxy__addr_parse(s, strlen(s), out), 0, "%s", s);
}

/* What a request from peer with that X-Forwarded-For is taken as, formatted. */
static const char *
resolve(const hr_proxy_list *l, const char *peer, const char *xff, bool *fwd)
{
	static char out[64];
	uint8_t p[16], r[16];
	addr(peer, p);
	*fwd = hr_proxy__resolve(l, p, xff, xff ? strlen(xff) : 0, r);
	hr_proxy__addr_format(r, out, sizeof(out));
	return out;
}

Test(proxy_list, parses_and_formats_back_normalised)
{
	hr_proxy_list l
	    = list(" 10.1.2.3/8 ,::1, 192.168.7.7/24,2001:db8::1/32,127.0.0.1/32,0.0.0.0/0");
	char out[512];
	cr_assert_eq(l.n, 6);
	cr_assert_eq(hr_proxy_list_format(&l, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "10.0.0.0/8,::1,192.168.7.0/24,2001:db8::/32,127.0.0.1,0.0.0.0/0");
	hr_proxy_list back = list(out);
	cr_assert_eq(memcmp(&back.nets, &l.nets, sizeof(l.nets[0]) * l.n), 0);
	cr_assert_eq(hr_proxy_list_format(&l, out, 20), HR_EMSGSIZE);
}

Test(proxy_list, refuses_bad_items_naming_them)
{
	static const char *const bad[] = { "", "10.0.0.0/33", "::1/129", "10.0.0.1/", "10.0.0.1/-1",
		"10.0.0.1/8x", "proxy.example", "10.0.0.1,,10.0.0.2", "1.2.3", "10.0.0.1 10.0.0.2",
		"::1/0128" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hr_proxy_list l;
		char err[200] = "";
		cr_assert_eq(
		    hr_proxy_list_parse(bad[i], &l, err, sizeof(err)), HR_EINVAL, "%s", bad[i]);
		cr_assert(err[0] != '\0', "%s: no reason", bad[i]);
	}
	char many[33 * 12] = "";
	for (int i = 0; i < 33; i++)
		sprintf(many + strlen(many), "%s10.0.0.%d", i ? "," : "", i);
	hr_proxy_list l;
	char err[200];
	cr_assert_eq(hr_proxy_list_parse(many, &l, err, sizeof(err)), HR_EINVAL);
	cr_assert(strstr(err, "at most 32") != NULL, "%s", err);
}

Test(proxy_list, networks_match_their_addresses_only)
{
	hr_proxy_list l = list("10.0.0.0/8,2001:db8::/32,192.0.2.1");
	uint8_t a[16];
	addr("10.255.1.2", a);
	cr_assert(hr_proxy__trusted(&l, a));
	addr("11.0.0.1", a);
	cr_assert(!hr_proxy__trusted(&l, a));
	addr("2001:db8:ffff::1", a);
	cr_assert(hr_proxy__trusted(&l, a));
	addr("2001:db9::1", a);
	cr_assert(!hr_proxy__trusted(&l, a));
	addr("192.0.2.1", a);
	cr_assert(hr_proxy__trusted(&l, a));
	addr("192.0.2.2", a);
	cr_assert(!hr_proxy__trusted(&l, a));
	addr("::ffff:10.0.0.1", a); /* an IPv4 peer on an IPv6 socket */
	cr_assert(hr_proxy__trusted(&l, a));
	hr_proxy_list none = { .n = 0 };
	addr("10.0.0.1", a);
	cr_assert(!hr_proxy__trusted(&none, a));
}

Test(forwarded_for, taken_from_trusted_peers_only)
{
	hr_proxy_list l = list("127.0.0.0/8");
	bool fwd;
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "198.51.100.7", &fwd), "198.51.100.7");
	cr_assert(fwd);
	cr_assert_str_eq(resolve(&l, "192.0.2.5", "198.51.100.7", &fwd), "192.0.2.5");
	cr_assert(!fwd);
	cr_assert_str_eq(resolve(&l, "127.0.0.1", NULL, &fwd), "127.0.0.1");
	cr_assert(!fwd);
	hr_proxy_list none = { .n = 0 };
	cr_assert_str_eq(resolve(&none, "127.0.0.1", "198.51.100.7", &fwd), "127.0.0.1");
	cr_assert(!fwd);
}

Test(forwarded_for, last_untrusted_hop_wins)
{
	hr_proxy_list l = list("127.0.0.0/8,10.0.0.0/8");
	bool fwd;
	/* the client forged the first item; the trusted hops wrote the rest */
	cr_assert_str_eq(
	    resolve(&l, "127.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.3,127.0.0.9", &fwd),
	    "198.51.100.7");
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "10.0.0.3, 127.0.0.9", &fwd), "10.0.0.3");
	cr_assert(fwd);
	/* an item that is not an address stops the walk at the hop that wrote it */
	cr_assert_str_eq(
	    resolve(&l, "127.0.0.1", "198.51.100.7, unknown, 10.0.0.3", &fwd), "10.0.0.3");
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "unknown", &fwd), "127.0.0.1");
	cr_assert(!fwd);
	cr_assert_str_eq(resolve(&l, "127.0.0.1", " , ", &fwd), "127.0.0.1");
	/* ports and brackets */
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "198.51.100.7:4711", &fwd), "198.51.100.7");
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "[2001:db8::7]:80", &fwd), "2001:db8::7");
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "2001:db8::7", &fwd), "2001:db8::7");
	cr_assert_str_eq(resolve(&l, "127.0.0.1", "[2001:db8::7", &fwd), "127.0.0.1");
}

Test(log_json, escapes_and_replaces_bad_utf8)
{
	char out[64];
	const char in[] = "a\"b\\c\nd\x01\x7f\xc3\xa9\xff\xe2\x82";
	size_t n = hr_log__json_str(out, sizeof(out), in, sizeof(in) - 1);
	cr_assert_str_eq(out, "\"a\\\"b\\\\c\\nd\\u0001\\u007f\xc3\xa9\\ufffd\\ufffd\\ufffd\"");
	cr_assert_eq(n, strlen(out));
	/* cut to fit, still a closed string */
	n = hr_log__json_str(out, 8, "abcdefghij", 10);
	cr_assert_str_eq(out, "\"abcde\"");
	cr_assert_eq(n, 7);
}
