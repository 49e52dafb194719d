/* The daemon's shared state: the snapshot swap, the clock, the counters' sum. */
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "worker.h"

uint64_t edge_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct edge_snapshot *edge_daemon_snapshot(struct edge_daemon *d)
{
	struct edge_snapshot *s;

	pthread_mutex_lock(&d->snap_lock);
	s = edge_snapshot_ref(d->snap);
	pthread_mutex_unlock(&d->snap_lock);
	return s;
}

int edge_daemon_swap_snapshot(struct edge_daemon *d, struct edge_snapshot *s)
{
	struct edge_snapshot *old;

	pthread_mutex_lock(&d->snap_lock);
	old = d->snap;
	s->seq = (old ? old->seq : 0) + 1;
	d->snap = s;
	pthread_mutex_unlock(&d->snap_lock);
	atomic_store(&d->generation, s->generation);
	edge_snapshot_unref(old);
	return 0;
}

void edge_daemon_counters(struct edge_daemon *d, struct edge_counters *sum)
{
	const size_t n = sizeof(*sum) / sizeof(uint64_t);
	uint64_t *out = (uint64_t *)sum;

	for (size_t i = 0; i < n; i++)
		out[i] = 0;
	for (int w = 0; w < d->n_workers; w++) {
		const uint64_t *in = (const uint64_t *)&d->workers[w].c;

		for (size_t i = 0; i < n; i++)
			out[i] += __atomic_load_n(&in[i], __ATOMIC_RELAXED);
	}
}

unsigned int edge_daemon_open_conns(struct edge_daemon *d)
{
	unsigned int n = 0;

	for (int i = 0; i < d->n_workers; i++)
		n += __atomic_load_n(&d->workers[i].n_conns, __ATOMIC_RELAXED);
	return n;
}

bool edge_daemon_apply(struct edge_daemon *d, uint64_t seq, unsigned int ms)
{
	const uint64_t one = 1;
	uint64_t until = edge_now_ms() + ms;

	for (int i = 0; i < d->n_workers; i++)
		if (d->workers[i].wake_fd >= 0 &&
		    write(d->workers[i].wake_fd, &one, sizeof(one)) != sizeof(one) &&
		    errno != EAGAIN)
			return false;
	for (;;) {
		int behind = 0;

		for (int i = 0; i < d->n_workers; i++)
			behind += atomic_load(&d->workers[i].applied_seq) < seq;
		if (!behind)
			return true;
		if (edge_now_ms() >= until)
			return false;
		usleep(500);
	}
}
