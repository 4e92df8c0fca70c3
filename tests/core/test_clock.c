/*
 * test_clock.c: the monotonic and wall clocks and the one ISO-8601 formatter
 * (core/clock.h).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

TestSuite(clock, .timeout = 10);

Test(clock, iso8601_writes_utc_with_microseconds_and_offset)
{
	char out[HR_CLOCK_ISO8601_LEN];
	hr_clock_iso8601(1714566896789012, out, sizeof(out));
	cr_assert_str_eq(out, "2024-05-01T12:34:56.789012+00:00");
	cr_assert_eq(strlen(out) + 1, HR_CLOCK_ISO8601_LEN);
	hr_clock_iso8601(951868799000001, out, sizeof(out));
	cr_assert_str_eq(out, "2000-02-29T23:59:59.000001+00:00");
}

Test(clock, iso8601_counts_a_negative_time_as_the_epoch)
{
	char out[64];
	hr_clock_iso8601(0, out, sizeof(out));
	cr_assert_str_eq(out, "1970-01-01T00:00:00.000000+00:00");
	hr_clock_iso8601(-5, out, sizeof(out));
	cr_assert_str_eq(out, "1970-01-01T00:00:00.000000+00:00");
}

Test(clock, iso8601_cuts_to_a_short_buffer_and_terminates_it)
{
	char out[11];
	memset(out, 'x', sizeof(out));
	hr_clock_iso8601(1714566896789012, out, sizeof(out));
	cr_assert_str_eq(out, "2024-05-01");
	char one[1] = { 'x' };
	hr_clock_iso8601(1714566896789012, one, sizeof(one));
	cr_assert_eq(one[0], '\0');
}

Test(clock, wall_clock_agrees_with_time_and_mono_never_goes_back)
{
	time_t before = time(NULL);
	int64_t us = hr_clock_wall_us();
	time_t after = time(NULL);
	cr_assert_geq(us / 1000000, (int64_t)before);
	cr_assert_leq(us / 1000000, (int64_t)after);
	double a = hr_clock_mono();
	struct timespec ts = { 0, 2000000 };
	nanosleep(&ts, NULL);
	double b = hr_clock_mono();
	cr_assert_gt(a, 0);
	cr_assert_geq(b - a, 0.002);
	cr_assert_lt(b - a, 5.0);
}
