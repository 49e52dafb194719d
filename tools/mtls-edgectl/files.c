/* Files the CLI reads (PEM input) and creates (certificates, keys, PKCS#12). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#define MAX_INPUT (1024 * 1024)

int ctl_read_input(const char *path, char **buf, size_t *len)
{
	struct stat sb;
	size_t off = 0;
	char *b;
	int fd, err;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ctl_error(CTL_EINVAL, "%s: cannot read: %s", path, strerror(errno));
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > MAX_INPUT) {
		close(fd);
		return ctl_error(CTL_EINVAL, "%s: not a regular file of at most %d bytes", path,
				 MAX_INPUT);
	}
	b = malloc((size_t)sb.st_size + 1);
	if (!b) {
		close(fd);
		return ctl_error(CTL_EIO, "out of memory");
	}
	while (off < (size_t)sb.st_size) {
		ssize_t n = read(fd, b + off, (size_t)sb.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			close(fd);
			free(b);
			return ctl_error(CTL_EIO, "%s: read failed: %s", path, strerror(err));
		}
		off += (size_t)n;
	}
	close(fd);
	b[off] = '\0';
	*buf = b;
	*len = off;
	return CTL_OK;
}

int ctl_create(const char *path, mode_t mode, int *fd)
{
	*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (*fd < 0) {
		if (errno == EEXIST)
			return ctl_error(CTL_EINVAL, "%s already exists; refusing to overwrite it",
					 path);
		return ctl_error(CTL_EIO, "cannot create %s: %s", path, strerror(errno));
	}
	if (fchmod(*fd, mode)) { /* the exact mode, whatever the umask */
		int err = errno;

		close(*fd);
		unlink(path);
		return ctl_error(CTL_EIO, "cannot set the mode of %s: %s", path, strerror(err));
	}
	return CTL_OK;
}

int ctl_write_close(int fd, const char *path, const void *buf, size_t len)
{
	size_t off = 0;
	int err = 0;

	while (!err && off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		if (n < 0 && errno != EINTR)
			err = errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (!err && fsync(fd))
		err = errno;
	if (close(fd) && !err)
		err = errno;
	if (!err)
		return CTL_OK;
	unlink(path);
	return ctl_error(CTL_EIO, "cannot write %s: %s", path, strerror(err));
}
