/*
 * jsonwrite.c: jsonio_serialize(), the text of every answer body.
 *
 * Writes what json-c's json_object_to_json_string_ext() writes with
 * JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, byte for byte
 * (tests/unit/test_jsonio.c compares the two), in one buffer and one pass:
 * json-c's own printer was a sixth of a 409's cost. Reads the tree only.
 * jsonio_user_text() writes a user's representation with no tree at all,
 * the very bytes jsonio_serialize(jsonio_user(u)) gives.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonio.h"

struct out {
	char *buf;
	size_t len, cap;
	int failed;
};

static int
reserve(struct out *o, size_t n)
{
	size_t cap;
	char *p;

	if (o->failed)
		return -1;
	if (n <= o->cap - o->len)
		return 0;
	cap = o->cap != 0 ? o->cap : 256;
	while (cap - o->len < n) {
		if (cap > SIZE_MAX / 2) {
			o->failed = 1;
			return -1;
		}
		cap *= 2;
	}
	if ((p = realloc(o->buf, cap)) == NULL) {
		o->failed = 1;
		return -1;
	}
	o->buf = p;
	o->cap = cap;
	return 0;
}

static void
put(struct out *o, const char *s, size_t n)
{
	if (reserve(o, n) == 0) {
		memcpy(o->buf + o->len, s, n);
		o->len += n;
	}
}

static void
put_char(struct out *o, char c)
{
	put(o, &c, 1);
}

/*
 * What each byte becomes in a string: 0 for itself, else the letter of
 * its two-character escape, or 'u' for \u00XX (as json-c escapes them).
 */
static const char escape_of[256] = {
	['\b'] = 'b', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['\f'] = 'f',
	['"'] = '"', ['\\'] = '\\',
	[0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
	[0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u',
	[0x0f] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',
	[0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u',
	[0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
	[0x1e] = 'u', [0x1f] = 'u',
};

/* A string, quoted and escaped. */
static void
put_string(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t i = 0, run;

	put_char(o, '"');
	while (i < n) {
		/* The bytes that go out as they are, in one copy. */
		for (run = i; i < n && escape_of[p[i]] == 0; i++)
			;
		put(o, s + run, i - run);
		if (i == n)
			break;
		esc[1] = escape_of[p[i]];
		if (esc[1] == 'u') {
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 0xf];
			put(o, esc, 6);
		} else
			put(o, esc, 2);
		i++;
	}
	put_char(o, '"');
}

static void
put_int(struct out *o, int64_t v)
{
	char digits[20];
	uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	if (v < 0)
		put_char(o, '-');
	if (reserve(o, n) == 0)
		while (n > 0)
			o->buf[o->len++] = digits[--n];
}

static void
put_value(struct out *o, struct json_object *v)
{
	const char *s;
	size_t i, n;
	int first = 1;

	switch (json_object_get_type(v)) {
	case json_type_null:
		put(o, "null", 4);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(v))
			put(o, "true", 4);
		else
			put(o, "false", 5);
		break;
	case json_type_int:
		put_int(o, json_object_get_int64(v));
		break;
	case json_type_string:
		put_string(o, json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
		break;
	case json_type_object:
		put_char(o, '{');
		json_object_object_foreach(v, key, member) {
			if (!first)
				put_char(o, ',');
			first = 0;
			put_string(o, key, strlen(key));
			put_char(o, ':');
			put_value(o, member);
		}
		put_char(o, '}');
		break;
	case json_type_array:
		put_char(o, '[');
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			if (i > 0)
				put_char(o, ',');
			put_value(o, json_object_array_get_idx(v, i));
		}
		put_char(o, ']');
		break;
	default:
		/* Numbers with a fraction: json-c's own digits. */
		s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s != NULL)
			put(o, s, strlen(s));
		else
			o->failed = 1;
		break;
	}
}

/* o's text, NUL-terminated, its length in *len; NULL if anything failed. */
static char *
finish(struct out *o, size_t *len)
{
	if (reserve(o, 1) != 0) {
		free(o->buf);
		return NULL;
	}
	o->buf[o->len] = '\0';
	if (len != NULL)
		*len = o->len;
	return o->buf;
}

char *
jsonio_serialize(struct json_object *obj, size_t *len)
{
	struct out o = { NULL, 0, 0, 0 };

	put_value(&o, obj);
	return finish(&o, len);
}

/* ,"name":"value" (no comma first), value a C string. */
static void
put_member(struct out *o, const char *name, const char *value, int first)
{
	if (!first)
		put_char(o, ',');
	put_string(o, name, strlen(name));
	put_char(o, ':');
	put_string(o, value, strlen(value));
}

char *
jsonio_user_text(const struct user *u, size_t *len)
{
	struct out o = { NULL, 0, 0, 0 };
	char tbuf[JSONIO_TIME_SIZE];
	size_t i, n = u->nroles > USER_ROLES_MAX ? USER_ROLES_MAX : u->nroles;

	/* Most answers fit: one allocation. */
	if (reserve(&o, 512) != 0)
		return NULL;
	put_char(&o, '{');
	put_member(&o, "username", u->username, 1);
	if (u->email[0] != '\0')
		put_member(&o, "email", u->email, 0);
	if (u->display_name[0] != '\0')
		put_member(&o, "display_name", u->display_name, 0);
	put(&o, ",\"roles\":[", 10);
	for (i = 0; i < n; i++) {
		if (i > 0)
			put_char(&o, ',');
		put_string(&o, u->roles[i], strlen(u->roles[i]));
	}
	put_char(&o, ']');
	/* The version is a string of digits: nothing to escape. */
	put(&o, ",\"version\":\"", 12);
	put_int(&o, u->version);
	put_char(&o, '"');
	put_member(&o, "created_at", jsonio_time(u->created_at, tbuf), 0);
	put_member(&o, "updated_at", jsonio_time(u->updated_at, tbuf), 0);
	put_char(&o, '}');
	return finish(&o, len);
}
