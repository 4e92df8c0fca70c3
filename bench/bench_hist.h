/*
 * Log-linear latency histogram (HDR style) for herald-bench.
 *
 * Values are nanoseconds.  Below 2^HR_HIST_SUB_BITS a bucket holds one value;
 * above, each power of two is split into 2^HR_HIST_SUB_BITS linear buckets, so
 * the relative error is under 1/128 (< 0.8 %).  Fixed size, no allocation per
 * sample; one histogram per thread, merged at the end.
 */
#ifndef HERALD_BENCH_HIST_H
#define HERALD_BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HR_HIST_SUB_BITS 7
#define HR_HIST_SUB (1u << HR_HIST_SUB_BITS)
#define HR_HIST_BUCKETS ((64 - HR_HIST_SUB_BITS + 1) * HR_HIST_SUB)

struct hr_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t b[HR_HIST_BUCKETS];
};

static inline void
hr_hist_init(struct hr_hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

static inline unsigned
hr_hist_index(uint64_t v)
{
	if (v < HR_HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
	unsigned shift = e - HR_HIST_SUB_BITS;
	unsigned sub = (unsigned)(v >> shift) - HR_HIST_SUB; /* 0 .. SUB-1 */
	return (shift + 1) * HR_HIST_SUB + sub;
}

/* The lowest value that lands in bucket i. */
static inline uint64_t
hr_hist_lower(unsigned i)
{
	if (i < HR_HIST_SUB)
		return i;
	unsigned shift = i / HR_HIST_SUB - 1;
	uint64_t sub = (uint64_t)(i % HR_HIST_SUB) + HR_HIST_SUB;
	return sub << shift;
}

static inline void
hr_hist_record(struct hr_hist *h, uint64_t v)
{
	h->b[hr_hist_index(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static inline void
hr_hist_merge(struct hr_hist *into, const struct hr_hist *from)
{
	for (unsigned i = 0; i < HR_HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

/* Value at percentile p (0..100): the bucket's midpoint, clamped to [min, max];
 * 0 when empty. */
static inline double
hr_hist_pct(const struct hr_hist *h, double p)
{
	if (h->count == 0)
		return 0.0;
	uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HR_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo = hr_hist_lower(i);
			uint64_t hi = i + 1 < HR_HIST_BUCKETS ? hr_hist_lower(i + 1) : lo;
			double mid = ((double)lo + (double)hi) / 2.0;
			if (mid < (double)h->min)
				mid = (double)h->min;
			if (mid > (double)h->max)
				mid = (double)h->max;
			return mid;
		}
	}
	return (double)h->max;
}

#endif
