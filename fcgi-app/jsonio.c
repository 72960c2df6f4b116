/* jsonio.c: strict bounded JSON parsing and the user encoder, over json-c. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonio.h"

/*
 * json-c 0.16 alone is not strict enough, even with JSON_TOKENER_STRICT |
 * JSON_TOKENER_VALIDATE_UTF8. It accepts NaN, Infinity, "1.", "-01",
 * single-quoted member names, raw control characters in strings, lone
 * surrogate escapes, overlong and surrogate UTF-8 and code points over
 * U+10FFFF, and it keeps only the last of duplicate members. Its depth
 * counts every value, scalars included: a top-level object holding a
 * number needs depth 2, while an empty object needs 1 (so N nested
 * containers need N + 1 when the innermost holds something, N when it is
 * empty). So the scanner below first checks the text against RFC 8259 and
 * RFC 3629, counts container depth exactly (top-level object = 1) and finds
 * duplicate member names after unescaping; json-c then builds the tree with
 * one level of depth slack.
 */

/* One member name of an open object, decoded into the scanner's arena. */
struct member {
	const char *name;
	size_t len;
	size_t offset;		/* of the name's opening quote */
};

/* One open container. */
struct frame {
	int object;
	size_t first;		/* its first member in scan.members */
	char *arena_mark;	/* arena top when it was opened */
};

struct scan {
	const unsigned char *text;
	size_t len;
	size_t pos;
	int max_depth;
	struct frame *frames;
	size_t nframes, frames_cap;
	struct member *members;
	size_t nmembers, members_cap;
	char *arena;		/* len + 1 bytes: names only shrink */
	char *arena_top;
	int has_dup;
	size_t dup_offset;	/* the first second occurrence in the text */
	struct jsonio_error *err;
};

static void
set_error(struct jsonio_error *err, enum jsonio_err code, int has_offset,
    size_t offset, const char *detail)
{
	err->code = code;
	err->has_offset = has_offset;
	err->offset = has_offset ? offset : 0;
	snprintf(err->detail, sizeof(err->detail), "%s", detail);
}

static enum jsonio_err
scan_fail(struct scan *sc, enum jsonio_err code, size_t offset,
    const char *detail)
{
	set_error(sc->err, code, 1, offset, detail);
	return code;
}

/* RFC 8259 whitespace: SP, HTAB, LF, CR (no \f or \v, unlike isspace). */
static int
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
skip_ws(struct scan *sc)
{
	while (sc->pos < sc->len && is_ws(sc->text[sc->pos]))
		sc->pos++;
}

/* Returns the byte at the scan position, or -1 at the end. */
static int
peek(const struct scan *sc)
{
	return sc->pos < sc->len ? sc->text[sc->pos] : -1;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
hex_value(int c)
{
	int v = -1;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	return v;
}

/* Reads the 4 hex digits at p (at least 4 bytes available); -1 if bad. */
static long
hex4(const unsigned char *p)
{
	long v = 0;
	int i, h;

	for (i = 0; i < 4; i++) {
		h = hex_value(p[i]);
		if (h < 0) {
			v = -1;
			goto out;
		}
		v = v * 16 + h;
	}
out:
	return v;
}

/* Appends code point cp (valid, no surrogate) as UTF-8 at *out. */
static void
put_utf8(char **out, unsigned long cp)
{
	unsigned char *o = (unsigned char *)*out;

	if (cp < 0x80)
		*o++ = (unsigned char)cp;
	else if (cp < 0x800) {
		*o++ = (unsigned char)(0xc0 | (cp >> 6));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (unsigned char)(0xe0 | (cp >> 12));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (unsigned char)(0xf0 | (cp >> 18));
		*o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*out = (char *)o;
}

/*
 * Scans the string at the scan position (on its opening quote). If out is
 * not NULL, the decoded bytes are written there (never more bytes than the
 * string's text takes) and *outlen receives their count.
 */
static enum jsonio_err
scan_string(struct scan *sc, char *out, size_t *outlen)
{
	enum jsonio_err rc = JSONIO_OK;
	const unsigned char *t = sc->text;
	char *o = out;
	unsigned long cp, lo;
	size_t n, i = sc->pos + 1;
	long h;
	int c;

	for (;;) {
		if (i >= sc->len) {
			rc = scan_fail(sc, JSONIO_MALFORMED, i,
			    "unterminated string");
			goto out;
		}
		c = t[i];
		if (c == '"')
			break;
		if (c < 0x20) {
			rc = scan_fail(sc, JSONIO_MALFORMED, i,
			    "control character in string");
			goto out;
		}
		if (c >= 0x80) {
			n = user_utf8_len(t + i, sc->len - i);
			if (n == 0) {
				rc = scan_fail(sc, JSONIO_MALFORMED, i,
				    "invalid utf-8");
				goto out;
			}
			if (o != NULL) {
				memcpy(o, t + i, n);
				o += n;
			}
			i += n;
			continue;
		}
		if (c != '\\') {
			if (o != NULL)
				*o++ = (char)c;
			i++;
			continue;
		}
		if (i + 1 >= sc->len) {
			rc = scan_fail(sc, JSONIO_MALFORMED, i,
			    "unterminated string");
			goto out;
		}
		c = t[i + 1];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			cp = (unsigned long)c;
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			cp = 0;
			break;
		default:
			rc = scan_fail(sc, JSONIO_MALFORMED, i,
			    "invalid escape in string");
			goto out;
		}
		if (c != 'u') {
			if (o != NULL)
				*o++ = (char)cp;
			i += 2;
			continue;
		}
		if (sc->len - i < 6 || (h = hex4(t + i + 2)) < 0) {
			rc = scan_fail(sc, JSONIO_MALFORMED, i,
			    "invalid unicode escape in string");
			goto out;
		}
		cp = (unsigned long)h;
		if (cp >= 0xdc00 && cp <= 0xdfff) {
			rc = scan_fail(sc, JSONIO_MALFORMED, i,
			    "lone surrogate escape in string");
			goto out;
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			/* A high surrogate needs a low one right after it. */
			if (sc->len - i < 12 || t[i + 6] != '\\' ||
			    t[i + 7] != 'u' || (h = hex4(t + i + 8)) < 0 ||
			    h < 0xdc00 || h > 0xdfff) {
				rc = scan_fail(sc, JSONIO_MALFORMED, i,
				    "lone surrogate escape in string");
				goto out;
			}
			lo = (unsigned long)h;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 6;
		}
		if (o != NULL)
			put_utf8(&o, cp);
		i += 6;
	}
	sc->pos = i + 1;
	if (outlen != NULL)
		*outlen = (size_t)(o - out);
out:
	return rc;
}

/* RFC 8259 section 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE][+-]?[0-9]+)? */
static enum jsonio_err
scan_number(struct scan *sc)
{
	enum jsonio_err rc = JSONIO_OK;
	size_t start = sc->pos;

	if (peek(sc) == '-')
		sc->pos++;
	if (peek(sc) == '0')
		sc->pos++;
	else if (is_digit(peek(sc)))
		while (is_digit(peek(sc)))
			sc->pos++;
	else
		goto bad;
	if (peek(sc) == '.') {
		sc->pos++;
		if (!is_digit(peek(sc)))
			goto bad;
		while (is_digit(peek(sc)))
			sc->pos++;
	}
	if (peek(sc) == 'e' || peek(sc) == 'E') {
		sc->pos++;
		if (peek(sc) == '+' || peek(sc) == '-')
			sc->pos++;
		if (!is_digit(peek(sc)))
			goto bad;
		while (is_digit(peek(sc)))
			sc->pos++;
	}
	/* "01" would end the number at "0" and fail as a missing separator. */
	goto out;
bad:
	rc = scan_fail(sc, JSONIO_MALFORMED, start, "invalid number");
out:
	return rc;
}

static enum jsonio_err
scan_literal(struct scan *sc)
{
	enum jsonio_err rc = JSONIO_OK;
	static const char *const words[] = { "true", "false", "null" };
	size_t i, n;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		n = strlen(words[i]);
		if (sc->len - sc->pos >= n &&
		    memcmp(sc->text + sc->pos, words[i], n) == 0) {
			sc->pos += n;
			goto out;
		}
	}
	rc = scan_fail(sc, JSONIO_MALFORMED, sc->pos, "unexpected character");
out:
	return rc;
}

static int
member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);

	if (c == 0)
		c = x->len < y->len ? -1 : x->len > y->len;
	if (c == 0)	/* equal names: keep text order, so [i+1] is later */
		c = x->offset < y->offset ? -1 : x->offset > y->offset;
	return c;
}

/* Opens a container on its bracket. */
static enum jsonio_err
push_frame(struct scan *sc, int object)
{
	enum jsonio_err rc = JSONIO_OK;
	struct frame *f;
	size_t cap;

	if (sc->nframes >= (size_t)sc->max_depth) {
		rc = scan_fail(sc, JSONIO_TOO_DEEP, sc->pos,
		    "nesting too deep");
		goto out;
	}
	if (sc->nframes == sc->frames_cap) {
		cap = sc->frames_cap ? sc->frames_cap * 2 : 16;
		f = realloc(sc->frames, cap * sizeof(*f));
		if (f == NULL) {
			rc = scan_fail(sc, JSONIO_NOMEM, sc->pos,
			    "out of memory");
			goto out;
		}
		sc->frames = f;
		sc->frames_cap = cap;
	}
	f = &sc->frames[sc->nframes++];
	f->object = object;
	f->first = sc->nmembers;
	f->arena_mark = sc->arena_top;
	sc->pos++;
out:
	return rc;
}

/* Closes the innermost container; for an object, checks its names. */
static void
pop_frame(struct scan *sc)
{
	struct frame *f = &sc->frames[--sc->nframes];
	size_t n = sc->nmembers - f->first, i;
	struct member *m;

	/* members is NULL until an object has a member: no pointer math. */
	if (f->object && n > 1) {
		m = sc->members + f->first;
		/* O(n log n): sort, then equal names are neighbours. */
		qsort(m, n, sizeof(*m), member_cmp);
		for (i = 0; i + 1 < n; i++) {
			if (m[i].len != m[i + 1].len ||
			    memcmp(m[i].name, m[i + 1].name, m[i].len) != 0)
				continue;
			if (!sc->has_dup || m[i + 1].offset < sc->dup_offset) {
				sc->has_dup = 1;
				sc->dup_offset = m[i + 1].offset;
			}
		}
	}
	sc->nmembers = f->first;
	sc->arena_top = f->arena_mark;
	sc->pos++;
}

/* Reads a member name (on its quote) into the arena. */
static enum jsonio_err
scan_name(struct scan *sc)
{
	enum jsonio_err rc = JSONIO_OK;
	struct member *m;
	size_t cap, len, offset = sc->pos;

	if (peek(sc) != '"') {
		rc = scan_fail(sc, JSONIO_MALFORMED, sc->pos,
		    "member name expected");
		goto out;
	}
	if ((rc = scan_string(sc, sc->arena_top, &len)) != JSONIO_OK)
		goto out;
	/* json-c keys are C strings: "a\u0000b" would silently become "a". */
	if (memchr(sc->arena_top, '\0', len) != NULL) {
		rc = scan_fail(sc, JSONIO_MALFORMED, offset,
		    "nul character in member name");
		goto out;
	}
	if (sc->nmembers == sc->members_cap) {
		cap = sc->members_cap ? sc->members_cap * 2 : 64;
		m = realloc(sc->members, cap * sizeof(*m));
		if (m == NULL) {
			rc = scan_fail(sc, JSONIO_NOMEM, offset,
			    "out of memory");
			goto out;
		}
		sc->members = m;
		sc->members_cap = cap;
	}
	m = &sc->members[sc->nmembers++];
	m->name = sc->arena_top;
	m->len = len;
	m->offset = offset;
	sc->arena_top += len;
out:
	return rc;
}

/*
 * Checks the whole text iteratively (no recursion, whatever the depth).
 * Returns JSONIO_OK with sc->has_dup set if some object repeats a name.
 */
static enum jsonio_err
scan_text(struct scan *sc)
{
	enum jsonio_err rc = JSONIO_OK;
	enum { VALUE, NAME, AFTER } state = VALUE;
	struct frame *top;
	int c;

	for (;;) {
		skip_ws(sc);
		c = peek(sc);
		if (state == NAME) {
			if ((rc = scan_name(sc)) != JSONIO_OK)
				goto out;
			skip_ws(sc);
			if (peek(sc) != ':') {
				rc = scan_fail(sc, JSONIO_MALFORMED, sc->pos,
				    "':' expected");
				goto out;
			}
			sc->pos++;
			state = VALUE;
		} else if (state == VALUE) {
			state = AFTER;
			if (c == '{' || c == '[') {
				if ((rc = push_frame(sc, c == '{')) !=
				    JSONIO_OK)
					goto out;
				skip_ws(sc);
				if (peek(sc) == (c == '{' ? '}' : ']'))
					pop_frame(sc);
				else
					state = c == '{' ? NAME : VALUE;
			} else if (c == '"')
				rc = scan_string(sc, NULL, NULL);
			else if (c == '-' || is_digit(c))
				rc = scan_number(sc);
			else if (c == -1)
				rc = scan_fail(sc, JSONIO_MALFORMED, sc->pos,
				    "unexpected end of data");
			else
				rc = scan_literal(sc);
			if (rc != JSONIO_OK)
				goto out;
		} else if (sc->nframes == 0) {
			if (c != -1)
				rc = scan_fail(sc, JSONIO_MALFORMED, sc->pos,
				    "unexpected data after the value");
			goto out;
		} else {
			top = &sc->frames[sc->nframes - 1];
			if (c == ',') {
				sc->pos++;
				state = top->object ? NAME : VALUE;
			} else if (c == (top->object ? '}' : ']'))
				pop_frame(sc);
			else {
				rc = scan_fail(sc, JSONIO_MALFORMED, sc->pos,
				    top->object ? "',' or '}' expected" :
				    "',' or ']' expected");
				goto out;
			}
		}
	}
out:
	return rc;
}

static const char *
tokener_detail(enum json_tokener_error e)
{
	const char *s = "malformed json";

	switch (e) {
	case json_tokener_error_depth:
		s = "nesting too deep";
		break;
	case json_tokener_error_parse_eof:
		s = "unexpected end of data";
		break;
	case json_tokener_error_parse_utf8_string:
		s = "invalid utf-8";
		break;
	case json_tokener_error_parse_string:
		s = "invalid escape in string";
		break;
	case json_tokener_error_parse_number:
		s = "invalid number";
		break;
	default:
		break;
	}
	return s;
}

enum jsonio_err
jsonio_parse_object(const char *text, size_t len, int max_depth,
    struct json_object **out, struct jsonio_error *err)
{
	enum jsonio_err rc = JSONIO_MALFORMED;
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	struct scan sc;
	enum json_tokener_error te;
	const char *nul;
	size_t end, i;

	memset(&sc, 0, sizeof(sc));
	*out = NULL;
	set_error(err, JSONIO_OK, 0, 0, "");
	if (max_depth < 0)
		max_depth = 0;
	if (text == NULL || len >= (size_t)INT_MAX) {
		/* json-c takes an int length. */
		rc = JSONIO_MALFORMED;
		set_error(err, rc, 0, 0, text == NULL ? "no document" :
		    "document too large");
		goto out;
	}
	if ((nul = memchr(text, '\0', len)) != NULL) {
		rc = JSONIO_MALFORMED;
		set_error(err, rc, 1, (size_t)(nul - text),
		    "nul character in body");
		goto out;
	}
	/*
	 * The strict scan runs first, so every grammar, encoding and depth
	 * error is reported the same way, at the first offending byte.
	 */
	sc.text = (const unsigned char *)text;
	sc.len = len;
	sc.max_depth = max_depth;
	sc.err = err;
	sc.arena = malloc(len + 1);
	if (sc.arena == NULL) {
		rc = JSONIO_NOMEM;
		set_error(err, rc, 0, 0, "out of memory");
		goto out;
	}
	sc.arena_top = sc.arena;
	if ((rc = scan_text(&sc)) != JSONIO_OK)
		goto out;
	/* One level of slack: json-c counts the scalar leaves as a level. */
	tok = json_tokener_new_ex(max_depth < INT_MAX ? max_depth + 1 :
	    max_depth);
	if (tok == NULL) {
		rc = JSONIO_NOMEM;
		set_error(err, rc, 0, 0, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok,
	    JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* len + 1: the NUL ends the input, so truncation is an error. */
	obj = json_tokener_parse_ex(tok, text, (int)len + 1);
	te = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/* obj is NULL on success too when the text is "null". */
	if (te != json_tokener_success) {
		/* Not reached for text the scan accepted: a second gate. */
		rc = te == json_tokener_error_depth ? JSONIO_TOO_DEEP :
		    JSONIO_MALFORMED;
		set_error(err, rc, 1, end > len ? len : end,
		    tokener_detail(te));
		goto out;
	}
	for (i = end; i < len; i++) {
		if (!is_ws((unsigned char)text[i])) {
			rc = JSONIO_MALFORMED;
			set_error(err, rc, 1, i,
			    "unexpected data after the value");
			goto out;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = JSONIO_NOT_OBJECT;
		for (i = 0; i < len && is_ws((unsigned char)text[i]); i++)
			continue;
		set_error(err, rc, 1, i, "top-level value is not an object");
		goto out;
	}
	if (sc.has_dup) {
		rc = JSONIO_DUPLICATE;
		set_error(err, rc, 1, sc.dup_offset, "duplicate member name");
		goto out;
	}
	rc = JSONIO_OK;
	*out = obj;
	obj = NULL;
out:
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	free(sc.arena);
	free(sc.frames);
	free(sc.members);
	return rc;
}

int
jsonio_string(struct json_object *v, const char **s, size_t *len)
{
	int ok = 0;
	const char *str;
	int n;

	if (v == NULL || !json_object_is_type(v, json_type_string))
		goto out;
	str = json_object_get_string(v);
	n = json_object_get_string_len(v);
	/* "a\u0000b" parses; its bytes stop at the NUL for C code. */
	if (str == NULL || n < 0 || (size_t)n != strlen(str))
		goto out;
	*s = str;
	*len = (size_t)n;
	ok = 1;
out:
	return ok;
}

/* The first and last second of the four-digit years, 0000 to 9999. */
#define TIME_MIN INT64_C(-62167219200)
#define TIME_MAX INT64_C(253402300799)

char *
jsonio_time(int64_t t, char buf[JSONIO_TIME_SIZE])
{
	int64_t days, secs, era, doe, yoe, doy, mp, y;
	int f[7], i;
	char *p = buf;

	/* Out of the four-digit years (never for real timestamps): the epoch. */
	if (t < TIME_MIN || t > TIME_MAX)
		t = 0;
	/*
	 * The civil date of a day count, in arithmetic alone: gmtime_r()
	 * takes glibc's time zone lock and strftime() reads the locale, and
	 * together they cost more than the rest of a representation. Days
	 * are counted in 400-year eras from 0000-03-01, so that the leap
	 * day ends each year.
	 */
	days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	secs = t - days * 86400;
	days += 719468;			/* 1970-01-01 from 0000-03-01 */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	y = yoe + era * 400 + (mp >= 10);
	f[0] = (int)(y / 100);
	f[1] = (int)(y % 100);
	f[2] = (int)(mp < 10 ? mp + 3 : mp - 9);
	f[3] = (int)(doy - (153 * mp + 2) / 5 + 1);
	f[4] = (int)(secs / 3600);
	f[5] = (int)(secs / 60 % 60);
	f[6] = (int)(secs % 60);
	/* Two digits at a time, by constants: no division by a variable. */
	for (i = 0; i < 7; i++) {
		*p++ = (char)('0' + f[i] / 10);
		*p++ = (char)('0' + f[i] % 10);
		if (i > 0)	/* the century runs into the year */
			*p++ = "?--T::Z"[i];
	}
	*p = '\0';
	return buf;
}

/* Adds val to o under key; releases val if that fails. Returns 0 on success. */
static int
add_member(struct json_object *o, const char *key, struct json_object *val)
{
	int rc = -1;

	if (val == NULL)
		goto out;
	rc = json_object_object_add(o, key, val);
	if (rc != 0)
		json_object_put(val);
out:
	return rc;
}

struct json_object *
jsonio_user(const struct user *u)
{
	struct json_object *o, *roles = NULL, *r;
	char num[32], tbuf[JSONIO_TIME_SIZE];
	size_t i, n;

	o = json_object_new_object();
	if (o == NULL)
		goto fail;
	if (add_member(o, "username", json_object_new_string(u->username)))
		goto fail;
	if (u->email[0] != '\0' &&
	    add_member(o, "email", json_object_new_string(u->email)))
		goto fail;
	if (u->display_name[0] != '\0' && add_member(o, "display_name",
	    json_object_new_string(u->display_name)))
		goto fail;
	if ((roles = json_object_new_array()) == NULL)
		goto fail;
	n = u->nroles > USER_ROLES_MAX ? USER_ROLES_MAX : u->nroles;
	for (i = 0; i < n; i++) {
		r = json_object_new_string(u->roles[i]);
		if (r == NULL || json_object_array_add(roles, r) != 0) {
			json_object_put(r);
			goto fail;
		}
	}
	r = roles;
	roles = NULL;	/* add_member owns it now, even on failure */
	if (add_member(o, "roles", r))
		goto fail;
	snprintf(num, sizeof(num), "%" PRId64, u->version);
	if (add_member(o, "version", json_object_new_string(num)))
		goto fail;
	if (add_member(o, "created_at",
	    json_object_new_string(jsonio_time(u->created_at, tbuf))))
		goto fail;
	if (add_member(o, "updated_at",
	    json_object_new_string(jsonio_time(u->updated_at, tbuf))))
		goto fail;
	goto out;
fail:
	json_object_put(roles);
	json_object_put(o);
	o = NULL;
out:
	return o;
}
