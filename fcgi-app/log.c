/* log.c: one-line error and access logs, on stderr or in log_file. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum config_log log_level = CONFIG_LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };
static char log_path[CONFIG_PATH_MAX];	/* "" while on stderr */

void
log_set_level(enum config_log level)
{
	log_level = level;
}

/* Opens path over fd 2. Returns 0 or -1 with errno set. */
static int
open_over_stderr(const char *path)
{
	int fd, saved;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640)) < 0)
		return -1;
	if (fd != STDERR_FILENO) {
		if (dup2(fd, STDERR_FILENO) < 0) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		close(fd);
	}
	return 0;
}

int
log_open(const char *path)
{
	if (strlen(path) >= sizeof(log_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (open_over_stderr(path) != 0)
		return -1;
	memcpy(log_path, path, strlen(path) + 1);
	return 0;
}

void
log_reopen(void)
{
	if (log_path[0] == '\0')
		return;
	if (open_over_stderr(log_path) != 0)
		log_error("cannot reopen log file '%s': %s", log_path,
		    strerror(errno));
}

void
log_msg(enum config_log level, const char *fmt, ...)
{
	static char stamp[32];
	static time_t stamped = -1;
	char line[1200];
	struct tm tm;
	time_t now;
	va_list ap;
	int n, m;

	if (level > log_level)
		return;
	/* One access line per request: format the time once a second. */
	if ((now = time(NULL)) != stamped) {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		stamped = now;
	}
	n = snprintf(line, sizeof(line), "%s userreg[%ld]: %s: ", stamp,
	    (long)getpid(), level_names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/*
	 * One write(2) per line: lines of several processes appending to
	 * one file or pipe never mix.
	 */
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}

char *
log_escape(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (size == 0)
		return dst;
	for (; src != NULL && *src != '\0'; src++) {
		unsigned char c = (unsigned char)*src;
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= size)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= size)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
