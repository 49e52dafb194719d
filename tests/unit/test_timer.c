/* timer.c: the timer wheel against a plain model (a list of due times): an expiry fires
 * exactly the timers due by its time, each once, at the first expiry that reaches it; timers
 * whole turns ahead, refiles from a firing, unfiles of others from a firing and a gap of more
 * than a turn between expiries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "timer.h"

#define N 3000
#define TICK 100

struct item {
	struct edge_timer t;
	uint64_t due; /* the model: 0 not filed */
	int fired;    /* in the current expiry */
	int refile;   /* fire: file again, refile_ms ahead */
	int refile_ms;
	int kill; /* fire: unfile this other item (index + 1) */
};

static struct item items[N];
static struct edge_timer_wheel wheel;
static uint64_t now;
static int wrong, early, twice;
static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static void fire(struct edge_timer *t, void *arg)
{
	struct item *it = (struct item *)t;

	(void)arg;
	if (!it->due || it->due > now)
		early++;
	if (it->fired++)
		twice++;
	it->due = 0;
	if (edge_timer_filed(t))
		wrong++; /* unfiled before it fires */
	if (it->refile) {
		it->due = now + (uint64_t)it->refile_ms;
		edge_timer_file(&wheel, t, it->due);
		it->refile = 0;
	}
	if (it->kill) {
		struct item *o = &items[it->kill - 1];

		edge_timer_unfile(&wheel, &o->t);
		o->due = 0;
		it->kill = 0;
	}
}

/* One expiry at the model's now: what fired is what was due, each once. */
static unsigned int expire_and_check(void)
{
	unsigned int got, missed = 0;

	for (int i = 0; i < N; i++)
		items[i].fired = 0;
	got = edge_timer_expire(&wheel, now, fire, NULL);
	for (int i = 0; i < N; i++)
		if (items[i].due && items[i].due <= now && !items[i].fired)
			missed++;
	if (missed)
		wrong++;
	return got;
}

static int plain_fired;

static void plain_fire(struct edge_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	plain_fired++;
}

static unsigned int model_filed(void)
{
	unsigned int n = 0;

	for (int i = 0; i < N; i++)
		n += items[i].due != 0;
	return n;
}

int main(void)
{
	unsigned int fired = 0, filed_ok = 1;
	struct edge_timer a = { 0 }, b = { 0 };

	/* the plain cases first */
	now = 123456;
	edge_timer_wheel_init(&wheel, TICK, now);
	edge_timer_file(&wheel, &a, now + 250);
	is_int(wheel.filed, 1, "a filed timer counts");
	now += 249;
	edge_timer_expire(&wheel, now, plain_fire, NULL);
	is_int(plain_fired, 0, "nothing fires before its time");
	now += 1;
	edge_timer_expire(&wheel, now, plain_fire, NULL);
	ok(plain_fired == 1 && !edge_timer_filed(&a) && wheel.filed == 0,
	   "it fires at its time, unfiled");
	edge_timer_file(&wheel, &a, now + 1);
	edge_timer_file(&wheel, &b, now + 1);
	edge_timer_unfile(&wheel, &b);
	ok(!edge_timer_filed(&b) && wheel.filed == 1, "an unfiled timer is out");
	edge_timer_unfile(&wheel, &b);
	is_int(wheel.filed, 1, "unfiling what is not filed changes nothing");
	edge_timer_file(&wheel, &a, now + 100 * TICK * EDGE_TIMER_SLOTS);
	is_int(wheel.filed, 1, "filing a filed timer again moves it");
	edge_timer_unfile(&wheel, &a);

	/* the model: random timers, short and turns ahead, random expiry times */
	memset(items, 0, sizeof(items));
	now = 1000000 + rnd(TICK);
	edge_timer_wheel_init(&wheel, TICK, now);
	for (int round = 0; round < 4000; round++) {
		for (int k = 0; k < 20; k++) {
			struct item *it = &items[rnd(N)];
			uint64_t r = rnd(10);
			uint64_t ahead = r < 6   ? rnd(3 * TICK)
					 : r < 9 ? rnd(TICK * EDGE_TIMER_SLOTS)
						 : rnd(3 * TICK * EDGE_TIMER_SLOTS);

			if (rnd(8) == 0) {
				edge_timer_unfile(&wheel, &it->t);
				it->due = 0;
				continue;
			}
			it->due = now + ahead; /* at now itself: due at the next expiry */
			edge_timer_file(&wheel, &it->t, it->due);
			it->refile = rnd(4) == 0;
			it->refile_ms = (int)rnd(2 * TICK);
			it->kill = rnd(6) == 0 ? (int)rnd(N) + 1 : 0;
			if (it->kill && &items[it->kill - 1] == it)
				it->kill = 0;
		}
		/* mostly a tick apart, out of phase; now and then the same time, or a gap of
		 * more than a turn */
		now += rnd(50) == 0   ? TICK * EDGE_TIMER_SLOTS + rnd(5 * TICK)
		       : rnd(10) == 0 ? 0
				      : rnd(2 * TICK);
		fired += expire_and_check();
		if (wheel.filed != model_filed())
			filed_ok = 0;
	}
	ok(fired > 10000, "the model fired many timers (%u)", fired);
	is_int(early, 0, "none fired before its time");
	is_int(twice, 0, "none fired twice in an expiry");
	is_int(wrong, 0, "each fired at the first expiry that reached its time, unfiled");
	ok(filed_ok, "the wheel counts what the model holds after every expiry");

	/* a firing that files itself at now fires at the next expiry, not in this one */
	memset(items, 0, sizeof(items));
	early = wrong = twice = 0;
	edge_timer_wheel_init(&wheel, TICK, now);
	items[0].due = now;
	edge_timer_file(&wheel, &items[0].t, now);
	items[0].refile = 1;
	items[0].refile_ms = 0;
	is_int(expire_and_check(), 1, "a timer filed for now fires at an expiry at that time");
	ok(items[0].due == now && edge_timer_filed(&items[0].t) && !twice,
	   "filed again for now from its firing, it waits for the next expiry");
	is_int(expire_and_check(), 1, "which fires it");
	now += 3 * TICK * EDGE_TIMER_SLOTS;
	items[1].due = now - 1;
	edge_timer_file(&wheel, &items[1].t, now - 1);
	is_int(expire_and_check(), 1, "after a gap of turns, what is due fires");
	is_int(early + wrong, 0, "and nothing else");
	return tap_done();
}
