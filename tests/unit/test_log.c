/* test_log.c: log lines on stderr or in log_file, reopening, escaping. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "support.h"

/*
 * log_open() puts the file in place of fd 2: the fixture keeps the
 * test's own stderr and puts it back afterwards. Parameters hold arrays,
 * not pointers: Criterion runs each test in a fresh process, where the
 * parent's pointers need not be valid.
 */

#define LINE_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z " \
	"userreg\\[[0-9]+\\]: (error|warn|info|debug): "

static char tmpdir[64];
static char logpath[128];
static int saved_stderr = -1;

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_log.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	snprintf(logpath, sizeof(logpath), "%s/userreg.log", tmpdir);
	saved_stderr = dup(STDERR_FILENO);
	cr_assert(ge(int, saved_stderr, 0));
	log_set_level(CONFIG_LOG_INFO);
}

static void
teardown(void)
{
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
	}
	saved_stderr = -1;
	support_remove_dir(tmpdir);
}

TestSuite(log, .init = setup, .fini = teardown);

/* The whole of the file at path (NUL-terminated); free() it. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	cr_assert(not(eq(ptr, f, NULL)), "%s: %s", path, strerror(errno));
	cr_assert(eq(int, fseek(f, 0, SEEK_END), 0));
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert(not(eq(ptr, buf, NULL)));
	cr_assert(eq(sz, fread(buf, 1, (size_t)n, f), (size_t)n));
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Asserts that every line of text is one whole log line ending msg_re. */
static void
assert_lines(const char *text, const char *msg_re)
{
	char pattern[256], *copy, *line, *save = NULL;
	regex_t re;

	snprintf(pattern, sizeof(pattern), "%s%s$", LINE_RE, msg_re);
	cr_assert(eq(int, regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0));
	cr_assert(not(eq(ptr, copy = strdup(text), NULL)));
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		cr_assert(eq(int, regexec(&re, line, 0, NULL, 0), 0),
		    "not a log line: [%s]", line);
	free(copy);
	regfree(&re);
}

static ino_t
stderr_inode(void)
{
	struct stat sb;

	cr_assert(eq(int, fstat(STDERR_FILENO, &sb), 0));
	return sb.st_ino;
}

/* ---- the log file ------------------------------------------------------- */

Test(log, open_sends_lines_to_the_file)
{
	char *text;

	cr_assert(eq(int, log_open(logpath), 0), "%s", strerror(errno));
	log_info("listening on '%s'", "unix:/run/userreg.sock");
	text = slurp(logpath);
	cr_assert(eq(sz, count_lines(text), 1), "[%s]", text);
	assert_lines(text, "listening on 'unix:/run/userreg.sock'");
	cr_assert(not(eq(ptr, strstr(text, ": info: "), NULL)));
	free(text);
}

Test(log, file_takes_the_place_of_stderr)
{
	char *text;

	cr_assert(eq(int, log_open(logpath), 0));
	/* What a library prints on stderr lands in the log too. */
	cr_assert(gt(int, fprintf(stderr, "a library speaks\n"), 0));
	fflush(stderr);
	text = slurp(logpath);
	cr_assert(not(eq(ptr, strstr(text, "a library speaks\n"), NULL)),
	    "[%s]", text);
	free(text);
}

Test(log, open_appends_to_what_the_file_holds)
{
	char *text;
	FILE *f;

	cr_assert(not(eq(ptr, f = fopen(logpath, "w"), NULL)));
	fputs("earlier line\n", f);
	fclose(f);
	cr_assert(eq(int, log_open(logpath), 0));
	log_warn("later line");
	text = slurp(logpath);
	cr_assert(eq(int, strncmp(text, "earlier line\n", 13), 0), "[%s]",
	    text);
	cr_assert(eq(sz, count_lines(text), 2));
	free(text);
}

Test(log, file_is_created_with_mode_0640)
{
	struct stat sb;

	umask(022);
	cr_assert(eq(int, log_open(logpath), 0));
	cr_assert(eq(int, stat(logpath, &sb), 0));
	cr_assert(eq(int, (int)(sb.st_mode & 0777), 0640));
}

Test(log, open_of_an_unwritable_path_fails_and_keeps_stderr)
{
	char path[192];
	ino_t before = stderr_inode();

	snprintf(path, sizeof(path), "%s/missing/userreg.log", tmpdir);
	errno = 0;
	cr_assert(eq(int, log_open(path), -1));
	cr_assert(eq(int, errno, ENOENT));
	cr_assert(eq(u64, (uint64_t)stderr_inode(), (uint64_t)before));
	cr_assert(eq(int, access(path, F_OK), -1));
}

Test(log, open_of_a_path_too_long_fails)
{
	char *path = malloc(CONFIG_PATH_MAX + 2);

	cr_assert(not(eq(ptr, path, NULL)));
	memset(path, 'l', CONFIG_PATH_MAX + 1);
	path[0] = '/';
	path[CONFIG_PATH_MAX + 1] = '\0';
	errno = 0;
	cr_assert(eq(int, log_open(path), -1));
	cr_assert(eq(int, errno, ENAMETOOLONG));
	free(path);
}

Test(log, reopen_after_rename_writes_to_the_new_file)
{
	char rotated[192], *old, *cur;

	cr_assert(eq(int, log_open(logpath), 0));
	log_info("before rotation");
	/* logrotate: move the file away, then SIGHUP, i.e. log_reopen(). */
	snprintf(rotated, sizeof(rotated), "%s.1", logpath);
	cr_assert(eq(int, rename(logpath, rotated), 0));
	log_reopen();
	log_info("after rotation");
	old = slurp(rotated);
	cur = slurp(logpath);
	cr_assert(eq(sz, count_lines(old), 1), "[%s]", old);
	assert_lines(old, "before rotation");
	cr_assert(eq(sz, count_lines(cur), 1), "[%s]", cur);
	assert_lines(cur, "after rotation");
	free(old);
	free(cur);
}

Test(log, reopen_while_on_stderr_changes_nothing)
{
	ino_t before = stderr_inode();

	log_reopen();
	cr_assert(eq(u64, (uint64_t)stderr_inode(), (uint64_t)before));
}

Test(log, failed_reopen_keeps_the_old_file_and_says_why)
{
	char dir[128], path[192], *text;

	/* The log's directory disappears: the open file stays in use. */
	snprintf(dir, sizeof(dir), "%s/logs", tmpdir);
	cr_assert(eq(int, mkdir(dir, 0700), 0));
	snprintf(path, sizeof(path), "%s/userreg.log", dir);
	cr_assert(eq(int, log_open(path), 0));
	cr_assert(eq(int, rename(path, logpath), 0));
	cr_assert(eq(int, rmdir(dir), 0));
	log_reopen();
	log_info("still here");
	text = slurp(logpath);
	cr_assert(eq(sz, count_lines(text), 2), "[%s]", text);
	cr_assert(not(eq(ptr, strstr(text, ": error: cannot reopen log "
	    "file"), NULL)), "[%s]", text);
	cr_assert(not(eq(ptr, strstr(text, "still here"), NULL)));
	free(text);
}

/* ---- lines -------------------------------------------------------------- */

Test(log, each_message_is_one_line)
{
	char *text, *big = malloc(5001);

	cr_assert(not(eq(ptr, big, NULL)));
	memset(big, 'a', 5000);
	big[5000] = '\0';
	cr_assert(eq(int, log_open(logpath), 0));
	log_info("first");
	log_error("second %d", 2);
	/* A message too long for a line is cut, still one line. */
	log_warn("%s", big);
	text = slurp(logpath);
	cr_assert(eq(sz, count_lines(text), 3), "%zu lines",
	    count_lines(text));
	cr_assert(eq(chr, text[strlen(text) - 1], '\n'));
	assert_lines(text, "(first|second 2|a+)");
	free(text);
	free(big);
}

Test(log, lines_of_several_processes_never_mix)
{
	char *text, msg[900];
	pid_t pids[4];
	int i, j, status;

	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	cr_assert(eq(int, log_open(logpath), 0));
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		cr_assert(ge(int, pids[i], 0));
		if (pids[i] == 0) {
			for (j = 0; j < 200; j++)
				log_info("%d %s", i, msg);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		cr_assert(eq(int, waitpid(pids[i], &status, 0), pids[i]));
		cr_assert(eq(int, status, 0));
	}
	text = slurp(logpath);
	cr_assert(eq(sz, count_lines(text), 800));
	assert_lines(text, "[0-3] x{899}");
	free(text);
}

struct level_case {
	int level;		/* enum config_log set */
	char written[5];	/* error, warn, info, debug: '1' if written */
};

ParameterizedTestParameters(log, level_keeps_what_is_at_least_as_severe)
{
	static struct level_case cases[] = {
		{ CONFIG_LOG_ERROR, "1000" },
		{ CONFIG_LOG_WARN, "1100" },
		{ CONFIG_LOG_INFO, "1110" },
		{ CONFIG_LOG_DEBUG, "1111" },
	};

	return cr_make_param_array(struct level_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct level_case *c, log,
    level_keeps_what_is_at_least_as_severe)
{
	static const char *const names[] = { "error", "warn", "info",
	    "debug" };
	char *text, want[32];
	int i;

	cr_assert(eq(int, log_open(logpath), 0));
	log_set_level((enum config_log)c->level);
	log_error("m-error");
	log_warn("m-warn");
	log_info("m-info");
	log_debug("m-debug");
	text = slurp(logpath);
	for (i = 0; i < 4; i++) {
		snprintf(want, sizeof(want), ": %s: m-%s\n", names[i],
		    names[i]);
		if (c->written[i] == '1')
			cr_assert(not(eq(ptr, strstr(text, want), NULL)),
			    "level %d: %s missing", c->level, names[i]);
		else
			cr_assert(eq(ptr, strstr(text, want), NULL),
			    "level %d: %s written", c->level, names[i]);
	}
	free(text);
}

/* ---- log_escape ----------------------------------------------------------- */

struct escape_case {
	char in[32];
	size_t size;
	char out[64];
};

ParameterizedTestParameters(log, escape_keeps_a_line_one_line)
{
	static struct escape_case cases[] = {
		{ "plain text", 64, "plain text" },
		{ "a\nb", 64, "a\\x0ab" },
		{ "a\r\nX-Evil: 1", 64, "a\\x0d\\x0aX-Evil: 1" },
		{ "tab\there", 64, "tab\\x09here" },
		{ "back\\slash", 64, "back\\x5cslash" },
		{ "caf\xc3\xa9", 64, "caf\\xc3\\xa9" },
		{ "\x7f", 64, "\\x7f" },
		/* Cut at the buffer, never inside an escape. */
		{ "abcdef", 4, "abc" },
		{ "ab\ncd", 6, "ab" },
		{ "ab\ncd", 7, "ab\\x0a" },
		{ "", 64, "" },
	};

	return cr_make_param_array(struct escape_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct escape_case *c, log, escape_keeps_a_line_one_line)
{
	char out[64];

	memset(out, '#', sizeof(out));
	cr_assert(eq(ptr, log_escape(out, c->size, c->in), out));
	cr_assert(eq(str, out, c->out), "[%s] in %zu bytes", c->in, c->size);
	cr_assert(lt(sz, strlen(out), c->size));
}

Test(log, escape_of_null_is_empty)
{
	char out[8] = "xxxxxxx";

	cr_assert(eq(str, log_escape(out, sizeof(out), NULL), ""));
	/* size 0 writes nothing at all. */
	cr_assert(eq(ptr, log_escape(out, 0, "abc"), out));
	cr_assert(eq(chr, out[0], '\0'));
}
