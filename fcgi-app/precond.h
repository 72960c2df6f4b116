/* precond.h: RFC 9110 entity tags and the If-Match / If-None-Match checks. */
#ifndef USERREG_PRECOND_H
#define USERREG_PRECOND_H

#include <stdint.h>

/*
 * The service's entity tags are strong and carry the user's version:
 * "<decimal version>". A version of 0 below means "no current
 * representation" (the user does not exist).
 *
 * Header values follow RFC 9110 8.8.3 and 13.1: "*" or a comma-separated
 * list of entity-tags (W/"..." or "..."), optional whitespace (SP, HTAB)
 * around elements, empty list elements tolerated (RFC 9110 5.6.1).
 */

/* Longest header value parsed; longer values are malformed. */
#define PRECOND_HEADER_MAX 8192

/* What the preconditions of a request decide (RFC 9110 13.2.2). */
enum precond_outcome {
	PRECOND_PROCEED = 0,	/* evaluate the method */
	PRECOND_FAILED,		/* 412 Precondition Failed */
	PRECOND_NOT_MODIFIED	/* 304 Not Modified (GET and HEAD only) */
};

/*
 * Returns 1 if value is a syntactically valid If-Match / If-None-Match
 * field value ("*" or a non-empty list of entity-tags), 0 otherwise. Tags
 * that are valid but unknown to the service are valid here.
 */
int precond_valid(const char *value);

/* Returns 1 if the (valid) value is "*" (with optional whitespace). */
int precond_is_star(const char *value);

/*
 * RFC 9110 13.1.1, on a valid value: true (1) if value is "*" and version
 * is not 0, or if the list holds a strong tag equal to "<version>" (strong
 * comparison: W/ tags never match); false (0) otherwise.
 */
int precond_if_match(const char *value, int64_t version);

/*
 * RFC 9110 13.1.2, on a valid value: false (0) if value is "*" and version
 * is not 0, or if the list holds a tag weakly equal to "<version>" (W/
 * ignored); true (1) otherwise.
 */
int precond_if_none_match(const char *value, int64_t version);

/*
 * RFC 9110 13.2.2 steps 1 and 3 for a request whose current version is
 * version (0: none). if_match and if_none_match are the valid header
 * values or NULL when absent; safe is 1 for GET and HEAD. A false
 * If-Match fails; a false If-None-Match is "not modified" for safe
 * methods and fails otherwise.
 */
enum precond_outcome precond_evaluate(const char *if_match,
    const char *if_none_match, int safe, int64_t version);

/*
 * Formats the strong entity-tag of version into buf ("\"1841\"");
 * buf has room for PRECOND_ETAG_SIZE bytes. Returns buf.
 */
#define PRECOND_ETAG_SIZE 24
char *precond_etag(int64_t version, char buf[PRECOND_ETAG_SIZE]);

#endif
