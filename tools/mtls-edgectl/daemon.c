/* Talking to mtls-edged over STATE/mtls-edged.sock: one request line, one
 * JSON line back. `status`, `reload`, and the reload after every write. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define ADMIN_TIMEOUT_MS 5000
#define ADMIN_MAX_REPLY (16 * 1024 * 1024) /* metrics with many hostnames */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to become ready for ev until the deadline. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int64_t left;
	int n;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int admin_connect(const char *state, int64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, dfd = -1, rc = 0;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" EDGE_ADMIN_SOCKET, state) >=
	    sizeof(sa.sun_path)) {
		/* A long state path: reach the socket through the directory's fd. */
		dfd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" EDGE_ADMIN_SOCKET,
			 dfd);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
	} else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = -errno;
		if (rc == -EAGAIN || rc == -EINPROGRESS) {
			socklen_t len = sizeof(int);
			int soerr = 0;

			rc = wait_fd(fd, POLLOUT, deadline);
			if (!rc && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
				rc = -soerr;
		}
	}
	if (dfd >= 0)
		close(dfd);
	if (rc && fd >= 0)
		close(fd);
	return rc ? rc : fd;
}

/* Sends "cmd\n" and reads one JSON line. -ENOENT or -ECONNREFUSED: nobody is
 * listening; other errors are described in err. */
static int admin_call(const char *state, const char *cmd, json_t **reply, char *err, size_t errlen)
{
	int64_t deadline = now_ms() + ADMIN_TIMEOUT_MS;
	char line[64], *buf = NULL;
	size_t len = 0, cap = 0, sent = 0, cmdlen;
	json_error_t jerr;
	int fd, rc = 0;

	*reply = NULL;
	fd = admin_connect(state, deadline);
	if (fd < 0) {
		snprintf(err, errlen, "%s/%s: %s", state, EDGE_ADMIN_SOCKET, strerror(-fd));
		return fd;
	}
	cmdlen = (size_t)snprintf(line, sizeof(line), "%s\n", cmd);
	while (!rc && sent < cmdlen) {
		ssize_t n = send(fd, line + sent, cmdlen - sent, MSG_NOSIGNAL);

		if (n >= 0)
			sent += (size_t)n;
		else if (errno == EAGAIN)
			rc = wait_fd(fd, POLLOUT, deadline);
		else if (errno != EINTR)
			rc = -errno;
	}
	while (!rc && !(len && buf[len - 1] == '\n')) {
		ssize_t n;

		if (len + 4096 > cap) {
			char *nb = cap + 4096 > ADMIN_MAX_REPLY ? NULL : realloc(buf, cap + 4096);

			if (!nb) {
				rc = -EMSGSIZE;
				break;
			}
			buf = nb;
			cap += 4096;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n > 0)
			len += (size_t)n;
		else if (n == 0)
			rc = len ? 0 : -ECONNRESET;
		else if (errno == EAGAIN)
			rc = wait_fd(fd, POLLIN, deadline);
		else if (errno != EINTR)
			rc = -errno;
		if (n == 0)
			break;
	}
	close(fd);
	if (rc) {
		snprintf(err, errlen, "no answer from mtls-edged to '%s': %s", cmd,
			 rc == -ETIMEDOUT ? "timed out after 5 s" : strerror(-rc));
	} else {
		buf[len] = '\0';
		*reply = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!*reply || !json_is_object(*reply)) {
			snprintf(err, errlen, "mtls-edged sent an unreadable answer to '%s': %s",
				 cmd, *reply ? "not a JSON object" : jerr.text);
			json_decref(*reply);
			*reply = NULL;
			rc = -EPROTO;
		}
	}
	free(buf);
	return rc;
}

static bool not_running(int rc)
{
	return rc == -ENOENT || rc == -ECONNREFUSED;
}

static const char *reply_error(json_t *reply)
{
	const char *e = json_string_value(json_object_get(reply, "error"));

	return e ? e : "(no reason given)";
}

int ctl_reload(struct ctl *c)
{
	json_t *reply;
	int rc = admin_call(c->state, "reload", &reply, c->err, sizeof(c->err));

	if (not_running(rc)) {
		/* a fleet's control usually runs no daemon: the edges take it from etcd */
		if (!c->published)
			ctl_note("mtls-edged is not running; the change applies when it starts");
		return CTL_OK;
	}
	if (rc) {
		ctl_warn("the store changed but %s", c->err);
		return CTL_EREFUSED;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		ctl_warn("the store changed but mtls-edged refused the new state and keeps "
			 "serving the old one: %s",
			 reply_error(reply));
		json_decref(reply);
		return CTL_EREFUSED;
	}
	json_decref(reply);
	return CTL_OK;
}

static int call_or_fail(struct ctl *c, const char *cmd, json_t **reply)
{
	int rc = admin_call(c->state, cmd, reply, c->err, sizeof(c->err));

	if (not_running(rc))
		return ctl_error(CTL_EDAEMON, "mtls-edged is not running (%s)", c->err);
	if (rc)
		return ctl_error(CTL_EDAEMON, "%s", c->err);
	return CTL_OK;
}

/* "expiring.KIND/NAME: DATE (N days left)" lines instead of an array. */
static void human_expiring(json_t *reply)
{
	json_t *arr = json_object_get(reply, "expiring"), *o = json_object(), *e;
	size_t i;

	CTL_ARRAY_EACH(arr, i, e) {
		char key[320], val[96], buf[32];
		json_int_t left = json_integer_value(json_object_get(e, "days_left"));

		snprintf(key, sizeof(key), "%s/%s",
			 json_string_value(json_object_get(e, "kind")) ?: "?",
			 json_string_value(json_object_get(e, "name")) ?: "?");
		ctl_iso(json_integer_value(json_object_get(e, "not_after")), buf);
		if (left < 0)
			snprintf(val, sizeof(val), "%s (expired)", buf);
		else
			snprintf(val, sizeof(val), "%s (%" JSON_INTEGER_FORMAT " days left)", buf,
				 left);
		json_object_set_new(o, key, json_string(val));
	}
	if (!json_object_size(o))
		json_object_set_new(o, "none", json_string("nothing expires within the window"));
	json_object_set(reply, "expiring", o);
	json_decref(o);
	if (json_is_null(json_object_get(reply, "metrics_listen")))
		json_object_set_new(reply, "metrics_listen", json_string("off"));
}

static int cmd_status(struct ctl *c)
{
	json_t *reply;
	int rc = call_or_fail(c, "status", &reply);
	bool ok;

	if (rc)
		return rc;
	ok = json_is_true(json_object_get(reply, "ok"));
	if (!ok)
		ctl_error(CTL_EIO, "mtls-edged: %s", reply_error(reply));
	if (!c->json) { /* people read dates */
		json_t *lr = json_object_get(reply, "last_reload");
		json_int_t at = json_integer_value(json_object_get(lr, "at"));
		char buf[32];

		if (at > 0)
			json_object_set_new(lr, "at", json_string(ctl_iso(at, buf)));
		human_expiring(reply);
	}
	rc = ctl_emit(c, reply, NULL);
	return ok ? rc : CTL_EIO;
}

static int cmd_reload(struct ctl *c)
{
	json_t *reply;
	json_int_t gen;
	int rc = call_or_fail(c, "reload", &reply);

	if (rc)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		ctl_error(CTL_EREFUSED,
			  "mtls-edged refused the reload and keeps serving the old "
			  "state: %s",
			  reply_error(reply));
		if (c->json)
			ctl_emit(c, reply, NULL);
		else
			json_decref(reply);
		return CTL_EREFUSED;
	}
	gen = json_integer_value(json_object_get(reply, "generation"));
	return ctl_emit_msg(c, reply, "reloaded: generation %" JSON_INTEGER_FORMAT, gen);
}

/* The Prometheus text as the daemon renders it (--json: the admin reply). */
static int cmd_metrics(struct ctl *c)
{
	json_t *reply;
	const char *text;
	int rc = call_or_fail(c, "metrics", &reply);

	if (rc)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		ctl_error(CTL_EIO, "mtls-edged: %s", reply_error(reply));
		json_decref(reply);
		return CTL_EIO;
	}
	if (c->json)
		return ctl_emit(c, reply, NULL);
	text = json_string_value(json_object_get(reply, "text"));
	fputs(text ? text : "", stdout);
	json_decref(reply);
	return fflush(stdout) ? ctl_error(CTL_EIO, "stdout: %s", strerror(errno)) : CTL_OK;
}

/* The daemon fetches every CRL distribution point it follows now; status says how it went. */
static int cmd_crl_refresh(struct ctl *c)
{
	json_t *reply;
	int rc = call_or_fail(c, "crl-refresh", &reply);

	if (rc)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		rc = ctl_error(CTL_EDAEMON, "%s",
			       json_string_value(json_object_get(reply, "error"))
				       ? json_string_value(json_object_get(reply, "error"))
				       : "the daemon refused");
		json_decref(reply);
		return rc;
	}
	json_object_set_new(reply, "note",
			    json_string("fetching; `mtls-edgectl status` shows crl_fetch"));
	return ctl_emit(c, reply, NULL);
}

const struct ctl_cmd ctl_daemon_cmds[] = {
	{ "status", "", "show the running daemon's state (JSON with --json)", NULL, 0, 0, 0,
	  cmd_status },
	{ "reload", "", "ask the running daemon to reload the store", NULL, 0, 0, 0, cmd_reload },
	{ "metrics", "", "print the running daemon's metrics (Prometheus text format)", NULL, 0, 0,
	  0, cmd_metrics },
	{ "crl refresh", "",
	  "ask the running daemon to fetch the CRL distribution points it follows now", NULL, 0, 0,
	  0, cmd_crl_refresh },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
