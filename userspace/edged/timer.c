/*
 * The timer wheel (timer.h). Slot i holds the timers whose tick, ceil(at / tick_ms), is i
 * modulo the slot count; an expiry splices the slots of every tick that has passed since the
 * last one onto a list of its own, and the next tick's slot too (what in it is due by now
 * fires: the worker's ticks are not aligned to multiples of tick_ms), then fires what is due
 * and files the rest again (timers a whole turn or more ahead, and the next tick's not due).
 */
#include <stddef.h>

#include "timer.h"

#define SLOT_MASK (EDGE_TIMER_SLOTS - 1)
_Static_assert((EDGE_TIMER_SLOTS & SLOT_MASK) == 0, "the slot count is a power of two");

static void ring_init(struct edge_timer *r)
{
	r->prev = r->next = r;
}

static void ring_add(struct edge_timer *r, struct edge_timer *t)
{
	t->prev = r->prev;
	t->next = r;
	r->prev->next = t;
	r->prev = t;
}

static void ring_del(struct edge_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

/* Moves every timer of ring from onto the end of ring to. */
static void ring_splice(struct edge_timer *to, struct edge_timer *from)
{
	if (from->next == from)
		return;
	from->next->prev = to->prev;
	from->prev->next = to;
	to->prev->next = from->next;
	to->prev = from->prev;
	ring_init(from);
}

void edge_timer_wheel_init(struct edge_timer_wheel *w, uint64_t tick_ms, uint64_t now_ms)
{
	for (int i = 0; i < EDGE_TIMER_SLOTS; i++)
		ring_init(&w->slot[i]);
	w->tick_ms = tick_ms ? tick_ms : 1;
	w->done = now_ms / w->tick_ms;
	w->filed = 0;
}

void edge_timer_file(struct edge_timer_wheel *w, struct edge_timer *t, uint64_t at_ms)
{
	uint64_t tick = at_ms / w->tick_ms + (at_ms % w->tick_ms != 0);

	if (edge_timer_filed(t))
		ring_del(t);
	else
		w->filed++;
	if (tick <= w->done)
		tick = w->done + 1;
	t->at = at_ms;
	ring_add(&w->slot[tick & SLOT_MASK], t);
}

void edge_timer_unfile(struct edge_timer_wheel *w, struct edge_timer *t)
{
	if (!edge_timer_filed(t))
		return;
	ring_del(t);
	w->filed--;
}

unsigned int edge_timer_expire(struct edge_timer_wheel *w, uint64_t now_ms,
			       void (*fire)(struct edge_timer *t, void *arg), void *arg)
{
	uint64_t cur = now_ms / w->tick_ms, n = cur > w->done ? cur - w->done : 0;
	struct edge_timer due;
	unsigned int fired = 0;

	ring_init(&due);
	if (n > EDGE_TIMER_SLOTS)
		n = EDGE_TIMER_SLOTS;
	for (uint64_t k = 1; k <= n; k++)
		ring_splice(&due, &w->slot[(w->done + k) & SLOT_MASK]);
	if (n < EDGE_TIMER_SLOTS) /* else every slot is in already */
		ring_splice(&due, &w->slot[(cur + 1) & SLOT_MASK]);
	if (cur > w->done)
		w->done = cur;
	/* What fire files lands at done + 1 or later: never on this list. */
	while (due.next != &due) {
		struct edge_timer *t = due.next;

		if (t->at > now_ms) {
			ring_del(t);
			w->filed--;
			edge_timer_file(w, t, t->at);
			continue;
		}
		ring_del(t);
		w->filed--;
		fired++;
		fire(t, arg);
	}
	return fired;
}
