/*
 * test_recover.c: parsing `?recover=` (transport/recover.c): the shapes
 * that refuse the handshake (docs/PROTOCOL.md "Recovery across
 * reconnects"), the limits, and which item is the connection's position.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "transport/recover_int.h"

static int
parse(const char *v, const char *group, hr_recover_pos *pos)
{
	return hr_recover__parse(v, strlen(v), group, pos);
}

Test(recover, empty_means_from_now)
{
	hr_recover_pos p;
	cr_assert_eq(parse("", "notifications", &p), 0);
	cr_assert_not(p.given);
}

Test(recover, the_item_for_the_group_is_the_position)
{
	hr_recover_pos p;
	cr_assert_eq(parse("user_a@ff:3,notifications@9f2c41:17", "notifications", &p), 0);
	cr_assert(p.given);
	cr_assert_str_eq(p.epoch, "9f2c41");
	cr_assert_eq(p.offset, 17);
	cr_assert_eq(parse("other@ab:1", "notifications", &p), 0);
	cr_assert_not(p.given);
	cr_assert_eq(parse("notifications@ab:0,notifications@cd:5", "notifications", &p), 0);
	cr_assert_str_eq(p.epoch, "ab");
	cr_assert_eq(p.offset, 0);
	cr_assert_eq(parse("notifications@ab:18446744073709551615", "notifications", &p), 0);
	cr_assert_eq(p.offset, 18446744073709551615ull);
}

Test(recover, malformed_values_are_refused)
{
	const char *bad[] = { "x", "notifications", "notifications@ab", "notificationsab:1",
		"notifications@AB:1", "notifications@xy:1", "notifications@:1",
		"notifications@ab:", "notifications@ab:-1", "notifications@ab:+1",
		"notifications@ab:1.0", "notifications@ab: 1",
		"notifications@ab:18446744073709551616", "notifications@ab:1,",
		",notifications@ab:1", "a@ab:1,,b@ab:1" };
	hr_recover_pos p;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(bad[i], "notifications", &p), HR_EINVAL, "%s", bad[i]);
		cr_assert_not(p.given);
	}
}

Test(recover, limits_of_items_and_bytes)
{
	char v[4096];
	size_t k = 0;
	hr_recover_pos p;
	for (int i = 0; i < 16; i++)
		k += (size_t)snprintf(v + k, sizeof(v) - k, "%sg%d@ab:1", i ? "," : "", i);
	cr_assert_eq(parse(v, "g15", &p), 0);
	cr_assert(p.given);
	snprintf(v + k, sizeof(v) - k, ",g16@ab:1");
	cr_assert_eq(parse(v, "g15", &p), HR_EINVAL);
	/* one item: 2048 bytes pass, 2049 do not; a long epoch never matches */
	memcpy(v, "g@", 2);
	memset(v + 2, 'a', 2048 - 4);
	memcpy(v + 2046, ":1", 2);
	cr_assert_eq(hr_recover__parse(v, 2048, "g", &p), 0);
	cr_assert(p.given);
	cr_assert_str_eq(p.epoch, "");
	memcpy(v, "g@", 2);
	memset(v + 2, 'a', 2049 - 4);
	memcpy(v + 2047, ":1", 2);
	cr_assert_eq(hr_recover__parse(v, 2049, "g", &p), HR_EINVAL);
}
