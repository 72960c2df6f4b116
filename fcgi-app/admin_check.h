/* admin_check.h: check, the registry's integrity and invariants. */
#ifndef USERREG_ADMIN_CHECK_H
#define USERREG_ADMIN_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "admin_args.h"
#include "admin_env.h"
#include "registry.h"
#include "user.h"

/* Room for why one user or record is at fault. */
#define ADMIN_CHECK_WHY_SIZE 192

/*
 * Checks one stored user of a registry whose revision counter is
 * revision: every member valid as API.md says (roles sorted and
 * distinct), a version from 1 to revision, created_at not after
 * updated_at. Returns 0, or -1 with the first fault in why
 * (ADMIN_CHECK_WHY_SIZE bytes).
 */
int admin_check_user(const struct user *u, int64_t revision, char *why);

/*
 * Checks one stored idempotency record: scope empty or a SHA-256 in hex,
 * key 1-REG_IDEM_KEY_MAX visible ASCII characters, fingerprint a SHA-256
 * in hex, a final status (200-499: 5xx answers are never stored) and an
 * answer http_response_decode() restores. Returns 0, or -1 with the
 * first fault in why (ADMIN_CHECK_WHY_SIZE bytes).
 */
int admin_check_idem(const char *scope, const char *key,
    const struct reg_idem *rec, char *why);

/*
 * `userreg check`: the backend's own integrity check, then, from one
 * read snapshot, every user (admin_check_user()), canonical names and
 * emails each held once, the users count against the users listed, and
 * every idempotency record (admin_check_idem()). Reports each fault on
 * env->err; on success one summary line on env->out. Returns
 * ADMIN_EXIT_OK, or ADMIN_EXIT_FAILURE when a fault was found or the
 * registry failed.
 */
int admin_check(struct admin_env *env, const struct admin_args *a);

#endif
