/* edge-upstream's listening socket (upstream.h). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream.h"

/* Binds spec ("ADDR:PORT", "[V6]:PORT"), fills the bound address as "ADDR:PORT"; returns the fd. */
int up_listen(const char *spec, char *bound, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[128], port[16], *colon;
	int fd = -1, one = 1, err;

	snprintf(host, sizeof(host), "%s", spec[0] == '[' ? spec + 1 : spec);
	colon = strrchr(host, ':');
	if (!colon || colon == host) {
		fprintf(stderr, "edge-upstream: %s: expected ADDR:PORT\n", spec);
		return -1;
	}
	*colon = '\0';
	if (colon[-1] == ']')
		colon[-1] = '\0';
	err = getaddrinfo(host, colon + 1, &hints, &ai);
	if (err) {
		fprintf(stderr, "edge-upstream: %s: %s\n", spec, gai_strerror(err));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		fprintf(stderr, "edge-upstream: %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	} else {
		getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(bound, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	}
	freeaddrinfo(ai);
	return fd;
}
