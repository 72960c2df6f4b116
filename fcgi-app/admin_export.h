/* admin_export.h: list and export, the registry read from one snapshot. */
#ifndef USERREG_ADMIN_EXPORT_H
#define USERREG_ADMIN_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin_args.h"
#include "admin_env.h"
#include "registry.h"

/*
 * The export format (docs/man/userreg.1, "EXPORT FORMAT"): JSON lines,
 * the first {"userreg_export":1,"revision":N} with the registry's
 * revision counter, then one user a line, the representation exactly as
 * the API sends it, in canonical order. Every line comes from one read
 * transaction, so an export taken while workers write is one state of
 * the registry.
 */

/* The format version the header line names. */
#define ADMIN_EXPORT_FORMAT 1

/*
 * Returns the header line of an export at revision (no newline) as a new
 * string (free()), or NULL when out of memory.
 */
char *admin_export_header(int64_t revision);

/*
 * Writes to f, from one read transaction of reg: the header line when
 * header is 1, then every user whose canonical name starts with prefix
 * (NULL or "" for all; any case), one representation a line. Stores the
 * users written in *count. Returns REG_OK; a registry error (nothing
 * more is written); or REG_ERROR with *io_failed set when writing to f
 * failed.
 */
enum reg_err admin_export_write(struct registry *reg, FILE *f,
    const char *prefix, int header, size_t *count, int *io_failed);

/* `userreg list`: the users (a->prefix) on env->out. Returns the exit. */
int admin_list(struct admin_env *env, const struct admin_args *a);

/*
 * `userreg export [FILE]`: the export on env->out, or into FILE, written
 * beside it under a temporary name, synced, then renamed over it, so
 * FILE is either the old one or a whole export. Returns the exit status.
 */
int admin_export(struct admin_env *env, const struct admin_args *a);

#endif
