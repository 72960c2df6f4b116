/* log.h: one-line error and access logs, on stderr or in log_file. */
#ifndef USERREG_LOG_H
#define USERREG_LOG_H

#include <stddef.h>

#include "config.h"

/* Sets the most verbose level written; the default is CONFIG_LOG_INFO. */
void log_set_level(enum config_log level);

/*
 * Sends every log line to the file at path (appended; created with mode
 * 0640) from now on. The file takes the place of stderr (fd 2), so what
 * libraries print there lands in it too. Returns 0, or -1 with errno set
 * (stderr is then unchanged).
 */
int log_open(const char *path);

/*
 * Opens the log file at its path again, for logrotate: lines written
 * after it go to the new file. A no-op while logging to stderr; on
 * failure the old file stays in use and the reason is logged there.
 */
void log_reopen(void);

/*
 * Writes "TIME userreg[PID]: LEVEL: message" when level is enabled.
 * Messages are lowercase, error first, subjects quoted.
 */
void log_msg(enum config_log level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(CONFIG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(CONFIG_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(CONFIG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(CONFIG_LOG_DEBUG, __VA_ARGS__)

/*
 * Copies untrusted text into dst (size bytes, always terminated) with
 * bytes outside printable ASCII written as \xHH, so a log line stays one
 * line whatever a client sent. Returns dst.
 */
char *log_escape(char *dst, size_t size, const char *src);

#endif
