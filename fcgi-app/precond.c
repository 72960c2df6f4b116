/* precond.c: RFC 9110 entity-tag lists and If-Match / If-None-Match. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "precond.h"

/* One entity-tag of a list: its opaque-tag without the quotes. */
struct etag {
	int weak;
	const char *opaque;
	size_t len;
};

/* Result of reading one list element. */
enum elem {
	ELEM_END = 0,	/* no more elements */
	ELEM_TAG,	/* an entity-tag was read */
	ELEM_EMPTY,	/* an empty element (RFC 9110 5.6.1.2) */
	ELEM_BAD	/* a syntax error */
};

/* OWS = *( SP / HTAB ), RFC 9110 5.6.3. */
static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text (%x80-FF), RFC 9110 8.8.3. */
static int
is_etagc(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* Returns 1 if value is not NULL and at most PRECOND_HEADER_MAX bytes. */
static int
fits(const char *value)
{
	return value != NULL &&
	    strnlen(value, PRECOND_HEADER_MAX + 1) <= PRECOND_HEADER_MAX;
}

/*
 * Reads the list element at *p (RFC 9110 5.6.1.2: OWS, an optional
 * entity-tag, OWS, then "," or the end) and moves *p past it and its comma.
 */
static enum elem
next_elem(const char **p, struct etag *tag)
{
	enum elem rc = ELEM_BAD;
	const unsigned char *s = (const unsigned char *)*p;

	while (is_ows(*s))
		s++;
	if (*s == '\0') {
		rc = ELEM_END;
		goto out;
	}
	if (*s == ',') {
		s++;
		rc = ELEM_EMPTY;
		goto out;
	}
	tag->weak = 0;
	if (s[0] == 'W' && s[1] == '/') {	/* case-sensitive */
		tag->weak = 1;
		s += 2;
	}
	if (*s != '"')
		goto out;
	s++;
	tag->opaque = (const char *)s;
	while (is_etagc(*s))
		s++;
	if (*s != '"')
		goto out;
	tag->len = (size_t)((const char *)s - tag->opaque);
	s++;
	while (is_ows(*s))
		s++;
	if (*s == ',')
		s++;
	else if (*s != '\0')
		goto out;
	rc = ELEM_TAG;
out:
	*p = (const char *)s;
	return rc;
}

/*
 * Walks the list in value. Returns -1 if it is malformed, otherwise the
 * number of entity-tags in it; *match is set to 1 if one of them equals
 * the tag of version (strong comparison if strong is 1, weak otherwise).
 */
static long
scan_list(const char *value, int64_t version, int strong, int *match)
{
	long ntags = 0;
	char etag[PRECOND_ETAG_SIZE];
	const char *p = value, *cur;
	size_t curlen;
	struct etag tag;
	enum elem e;

	*match = 0;
	precond_etag(version, etag);
	cur = etag + 1;			/* the opaque part, unquoted */
	curlen = strlen(etag) - 2;
	while ((e = next_elem(&p, &tag)) != ELEM_END) {
		if (e == ELEM_BAD) {
			ntags = -1;
			goto out;
		}
		if (e != ELEM_TAG)
			continue;
		ntags++;
		/* Opaque comparison: "05" never matches version 5. */
		if (version > 0 && !(strong && tag.weak) && tag.len == curlen &&
		    memcmp(tag.opaque, cur, curlen) == 0)
			*match = 1;
	}
out:
	return ntags;
}

int
precond_is_star(const char *value)
{
	int star = 0;
	const char *s = value;

	if (!fits(value))
		goto out;
	while (is_ows((unsigned char)*s))
		s++;
	if (*s != '*')
		goto out;
	s++;
	while (is_ows((unsigned char)*s))
		s++;
	star = *s == '\0';
out:
	return star;
}

int
precond_valid(const char *value)
{
	int valid = 0, match;

	if (!fits(value))
		goto out;
	/* "*" alone, or a list that holds at least one entity-tag. */
	valid = precond_is_star(value) || scan_list(value, 0, 1, &match) > 0;
out:
	return valid;
}

int
precond_if_match(const char *value, int64_t version)
{
	int rc = 0, match;

	/* A malformed value is false: never let it authorize a write. */
	if (!fits(value))
		goto out;
	if (precond_is_star(value)) {
		rc = version > 0;
		goto out;
	}
	if (scan_list(value, version, 1, &match) > 0)
		rc = match;
out:
	return rc;
}

int
precond_if_none_match(const char *value, int64_t version)
{
	int rc = 0, match;

	/* A malformed value is false too (412, never a blind write). */
	if (!fits(value))
		goto out;
	if (precond_is_star(value)) {
		rc = version <= 0;
		goto out;
	}
	if (scan_list(value, version, 0, &match) > 0)
		rc = !match;
out:
	return rc;
}

enum precond_outcome
precond_evaluate(const char *if_match, const char *if_none_match, int safe,
    int64_t version)
{
	enum precond_outcome rc = PRECOND_PROCEED;

	/* RFC 9110 13.2.2 step 1. */
	if (if_match != NULL && !precond_if_match(if_match, version)) {
		rc = PRECOND_FAILED;
		goto out;
	}
	/* Step 3 (steps 2 and 4 concern dates, which the service lacks). */
	if (if_none_match != NULL &&
	    !precond_if_none_match(if_none_match, version))
		rc = safe ? PRECOND_NOT_MODIFIED : PRECOND_FAILED;
out:
	return rc;
}

char *
precond_etag(int64_t version, char buf[PRECOND_ETAG_SIZE])
{
	/* By hand: every read and conditional request formats one or two. */
	char digits[20];
	uint64_t mag = version < 0 ? 0 - (uint64_t)version : (uint64_t)version;
	size_t n = 0, o = 0;

	do {
		digits[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	buf[o++] = '"';
	if (version < 0)
		buf[o++] = '-';
	while (n > 0)
		buf[o++] = digits[--n];
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
