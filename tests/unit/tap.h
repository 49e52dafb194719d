/* Minimal TAP producer for the C unit tests: one "ok N - name" line a check,
 * a plan at the end, exit 0 only when every check passed. */
#ifndef EDGE_TAP_H
#define EDGE_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                   \
	do {                                                                            \
		int ok_c_ = !!(cond);                                                   \
		printf("%sok %d - ", ok_c_ ? "" : "not ", ++tap_n);                     \
		printf(__VA_ARGS__);                                                    \
		printf("\n");                                                           \
		if (!ok_c_) {                                                           \
			tap_failed++;                                                   \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                       \
	} while (0)

#define is_int(got, want, ...)                                           \
	do {                                                             \
		long long g_ = (long long)(got), w_ = (long long)(want); \
		ok(g_ == w_, __VA_ARGS__);                               \
		if (g_ != w_)                                            \
			printf("#   got %lld, want %lld\n", g_, w_);     \
	} while (0)

#define is_str(got, want, ...)                                                          \
	do {                                                                            \
		const char *gs_ = (got), *ws_ = (want);                                 \
		int same_ = gs_ && !strcmp(gs_, ws_);                                   \
		ok(same_, __VA_ARGS__);                                                 \
		if (!same_)                                                             \
			printf("#   got '%s', want '%s'\n", gs_ ? gs_ : "(null)", ws_); \
	} while (0)

/* Stops the test: what it needs could not be made. */
#define BAIL_OUT(...)                 \
	do {                          \
		printf("Bail out! "); \
		printf(__VA_ARGS__);  \
		printf("\n");         \
		exit(1);              \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
