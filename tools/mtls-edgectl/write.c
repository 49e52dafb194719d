/* The end of every write command, in one order: the transaction ends (rolled
 * back after an error, committed otherwise), the result is printed, then the
 * running daemon is asked to reload. The store (state.c), the printing
 * (output.c) and the daemon (daemon.c) do not call each other; only this
 * file ties them together. */
#include <stdarg.h>

#include "ctl.h"

static int end_txn(struct ctl *c, int rc)
{
	if (!rc)
		rc = ctl_fleet_publish(c); /* a control store: etcd takes it first, or nothing */
	if (rc) {
		ctl_rollback(c);
		return rc;
	}
	return ctl_commit(c);
}

int ctl_finish(struct ctl *c, int rc, json_t *v, const char *fmt, ...)
{
	va_list ap;

	if ((rc = end_txn(c, rc))) {
		json_decref(v);
		return rc;
	}
	va_start(ap, fmt);
	rc = ctl_emit_msgv(c, v, fmt, ap);
	va_end(ap);
	return rc ? rc : ctl_reload(c);
}

int ctl_finish_with(struct ctl *c, int rc, int (*done)(struct ctl *c, void *arg), void *arg)
{
	if (!(rc = end_txn(c, rc)))
		rc = done(c, arg);
	return rc ? rc : ctl_reload(c);
}
