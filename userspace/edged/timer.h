/*
 * A hashed timer wheel (Varghese and Lauck; the kernel's and nginx's timers do the same job):
 * a worker's connections are filed by when they next need a look, and each tick visits only
 * the slot that falls due instead of every connection. Timers are intrusive nodes, filed and
 * unfiled in O(1); a tick costs the timers due plus those filed a whole turn (slots x tick)
 * ahead, which are looked at once a turn and filed again.
 *
 * Times are milliseconds of one monotonic clock; the wheel fires at tick granularity: a timer
 * due at T fires at the first tick whose time is >= T (never early, at most one tick late).
 */
#ifndef EDGE_TIMER_H
#define EDGE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define EDGE_TIMER_SLOTS 512 /* a power of two */

struct edge_timer {
	struct edge_timer *prev, *next; /* in its slot's ring; NULL when not filed */
	uint64_t at;                    /* due time (ms) while filed */
};

struct edge_timer_wheel {
	struct edge_timer slot[EDGE_TIMER_SLOTS]; /* ring sentinels */
	uint64_t tick_ms;                         /* the granularity */
	uint64_t done;                            /* ticks (time / tick_ms) already expired */
	unsigned int filed;                       /* timers in the wheel */
};

/* An empty wheel whose first expiry covers what is due at now_ms. */
void edge_timer_wheel_init(struct edge_timer_wheel *w, uint64_t tick_ms, uint64_t now_ms);

static inline bool edge_timer_filed(const struct edge_timer *t)
{
	return t->next != NULL;
}

/* Files t (filed or not) to fire at at_ms. */
void edge_timer_file(struct edge_timer_wheel *w, struct edge_timer *t, uint64_t at_ms);

/* Takes t out of the wheel; nothing when it is not filed. */
void edge_timer_unfile(struct edge_timer_wheel *w, struct edge_timer *t);

/*
 * Fires every timer due by now_ms: each is unfiled, then fire(t, arg) runs; fire may file it
 * again (it fires at a later tick, never in this call), unfile or free others, or free t.
 * Returns how many fired.
 */
unsigned int edge_timer_expire(struct edge_timer_wheel *w, uint64_t now_ms,
			       void (*fire)(struct edge_timer *t, void *arg), void *arg);

#endif
