/* log.c: one-line error and access logs on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static enum config_log log_level = CONFIG_LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum config_log level)
{
	log_level = level;
}

void
log_msg(enum config_log level, const char *fmt, ...)
{
	char stamp[32], msg[1024];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level > log_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf per line so lines from several workers do not mix. */
	fprintf(stderr, "%s userreg[%ld]: %s: %s\n", stamp, (long)getpid(),
	    level_names[level], msg);
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
