/* userlist.h: GET /users, keyset pages over the canonical name. */
#ifndef USERREG_USERLIST_H
#define USERREG_USERLIST_H

#include "http.h"
#include "users.h"

/*
 * Answers a list page for req (steps 1-3 passed): reads limit, cursor
 * and prefix from the query (400 invalid-query-parameter for bad ones),
 * then one indexed range scan of the registry: 200 with items, next and
 * a Link rel="next" when more follow.
 */
void userlist_page(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp);

#endif
