/* admin_write.h: the admin tool's writes, each the API request it would be. */
#ifndef USERREG_ADMIN_WRITE_H
#define USERREG_ADMIN_WRITE_H

#include <stdint.h>

#include "admin_args.h"
#include "admin_env.h"
#include "http.h"
#include "user.h"
#include "write.h"

/*
 * add, set, grant, revoke and delete build the request the API would get
 * (a JSON body made with json-c, If-Match from --if-version) and run it
 * through write_run_locally(): the same order of checks as the workers,
 * in a write transaction of the tool's own on the registry, which the
 * pool shares through the registry's lock. Only access control differs:
 * it is open, since whoever runs the tool holds the registry itself.
 */

/* Attempts of a write whose If-Match the tool read itself (412: again). */
#define ADMIN_WRITE_TRIES 5

/*
 * Returns the exit status (enum admin_exit) for the answer status: 0 for
 * 2xx, ADMIN_EXIT_CONFLICT for 409, ADMIN_EXIT_STALE for 412,
 * ADMIN_EXIT_NOT_FOUND for 404, ADMIN_EXIT_USAGE for the other 4xx a
 * request of the tool can draw (400, 413, 415, 422, 428: values the
 * command line gave), ADMIN_EXIT_FAILURE otherwise (5xx, 401, 403).
 */
int admin_write_exit(int status);

/*
 * Builds the JSON body of the write a (ADMIN_CMD_ADD, SET, GRANT or
 * REVOKE) asks for: the members of POST /users for add, a merge patch
 * for the others. cur is the user as read now, for grant and revoke (its
 * roles with ROLE added or removed; NULL: just ROLE, or none). Returns a
 * new NUL-terminated string (free()), or NULL when out of memory or for
 * another command.
 */
char *admin_write_body(const struct admin_args *a, const struct user *cur);

/*
 * Runs one write: kind on name (NULL for WRITE_CREATE) with body (NULL
 * for none; copied) and If-Match: "if_version" when if_version > 0,
 * through write_run_locally() on env, answering into resp (initialized).
 */
void admin_write_send(struct admin_env *env, enum write_kind kind,
    const char *name, const char *body, int64_t if_version,
    struct http_response *resp);

/*
 * Reports the refusal resp of command cmd on name: a line on env->err
 * naming the status, the problem type and its detail, then the problem's
 * JSON as the API sends it.
 */
void admin_write_report(struct admin_env *env, enum admin_cmd cmd,
    const char *name, const struct http_response *resp);

/*
 * Runs the command a (ADMIN_CMD_ADD, SET, DELETE, GRANT or REVOKE):
 * prints the stored representation on env->out after add, set, grant and
 * revoke, nothing after delete; a refusal as admin_write_report() says.
 * Without --if-version a command on an existing user reads its version
 * first and runs again, up to ADMIN_WRITE_TRIES times, while another
 * write wins meanwhile (412). Returns the exit status (admin_write_exit).
 */
int admin_write(struct admin_env *env, const struct admin_args *a);

#endif
