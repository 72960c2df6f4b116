/* admin_export.c: list and export, the registry read from one snapshot. */
#include "admin_export.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "admin_keys.h"
#include "jsonio.h"
#include "user.h"

char *
admin_export_header(int64_t revision)
{
	struct json_object *o = json_object_new_object();
	char *s = NULL;

	if (o != NULL &&
	    json_object_object_add(o, "userreg_export",
	    json_object_new_int(ADMIN_EXPORT_FORMAT)) == 0 &&
	    json_object_object_add(o, "revision",
	    json_object_new_int64(revision)) == 0)
		s = jsonio_serialize(o, NULL);
	json_object_put(o);
	return s;
}

/* Writes the header of the snapshot open on reg. */
static enum reg_err
write_header(struct registry *reg, FILE *f, int *io_failed)
{
	int64_t revision;
	enum reg_err rc;
	char *h;

	if ((rc = registry_revision(reg, &revision)) != REG_OK)
		return rc;
	if ((h = admin_export_header(revision)) == NULL)
		return REG_ERROR;
	if (fputs(h, f) == EOF || fputc('\n', f) == EOF) {
		*io_failed = 1;
		rc = REG_ERROR;
	}
	free(h);
	return rc;
}

enum reg_err
admin_export_write(struct registry *reg, FILE *f, const char *prefix,
    int header, size_t *count, int *io_failed)
{
	char after[USER_NAME_MAX + 1] = "", lower[USER_NAME_MAX + 1] = "";
	struct user *page;
	enum reg_err rc;
	size_t n, i;
	int more = 1;

	*count = 0;
	*io_failed = 0;
	admin_keys_canonical(prefix != NULL ? prefix : "", lower,
	    sizeof(lower));
	if ((page = calloc(REG_LIST_MAX, sizeof(*page))) == NULL)
		return REG_ERROR;
	/* One snapshot for the header and every page. */
	if ((rc = registry_begin_read(reg)) != REG_OK)
		goto out;
	if (header && (rc = write_header(reg, f, io_failed)) != REG_OK)
		goto out;
	while (more) {
		rc = registry_list(reg, after, lower, REG_LIST_MAX, page, &n,
		    &more);
		if (rc != REG_OK)
			goto out;
		for (i = 0; i < n; i++) {
			if (admin_print_user(f, &page[i]) != 0) {
				*io_failed = 1;
				rc = REG_ERROR;
				goto out;
			}
			(*count)++;
		}
		if (n == 0)
			break;
		user_canonical(page[n - 1].username, after);
	}
out:
	registry_rollback(reg);
	free(page);
	return rc;
}

int
admin_list(struct admin_env *env, const struct admin_args *a)
{
	enum reg_err rc;
	size_t count;
	int io_failed;

	rc = admin_export_write(env->reg, env->out, a->prefix, 0, &count,
	    &io_failed);
	if (io_failed || fflush(env->out) == EOF)
		return admin_say(env, ADMIN_EXIT_FAILURE, "list: cannot "
		    "write: %s", strerror(errno));
	return rc == REG_OK ? ADMIN_EXIT_OK :
	    admin_registry_failed(env, "list", rc);
}

/* Syncs the directory holding path, so a rename in it is durable. */
static int
sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = -1;

	if (copy == NULL)
		return -1;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY)) >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

/* Exports into a new file beside path, then renames it over path. */
static int
export_file(struct admin_env *env, const char *path)
{
	size_t len = strlen(path) + sizeof(".tmp-XXXXXX"), count = 0;
	char *tmp = malloc(len);
	FILE *f = NULL;
	enum reg_err rc = REG_OK;
	int fd = -1, io_failed = 0, status = ADMIN_EXIT_FAILURE;

	if (tmp == NULL)
		return admin_say(env, ADMIN_EXIT_FAILURE, "export: out of "
		    "memory");
	snprintf(tmp, len, "%s.tmp-XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0 || (f = fdopen(fd, "w")) == NULL) {
		admin_say(env, ADMIN_EXIT_FAILURE, "export: cannot create "
		    "'%s': %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
		return ADMIN_EXIT_FAILURE;
	}
	rc = admin_export_write(env->reg, f, NULL, 1, &count, &io_failed);
	if (rc != REG_OK && !io_failed) {
		admin_registry_failed(env, "export", rc);
		goto out;
	}
	if (io_failed || fflush(f) == EOF || fsync(fileno(f)) != 0) {
		admin_say(env, ADMIN_EXIT_FAILURE, "export: cannot write "
		    "'%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		admin_say(env, ADMIN_EXIT_FAILURE, "export: cannot write "
		    "'%s': %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		admin_say(env, ADMIN_EXIT_FAILURE, "export: cannot rename "
		    "'%s' to '%s': %s", tmp, path, strerror(errno));
		goto out;
	}
	sync_dir_of(path);
	status = ADMIN_EXIT_OK;
out:
	if (f != NULL)
		fclose(f);
	if (status != ADMIN_EXIT_OK)
		unlink(tmp);
	free(tmp);
	return status;
}

/* Exports to standard output, a pipe or a device: written as it comes. */
static int
export_stream(struct admin_env *env, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? env->out : fopen(path, "w");
	enum reg_err rc;
	size_t count;
	int io_failed;

	if (f == NULL)
		return admin_say(env, ADMIN_EXIT_FAILURE, "export: cannot "
		    "open '%s': %s", path, strerror(errno));
	rc = admin_export_write(env->reg, f, NULL, 1, &count, &io_failed);
	if (f != env->out ? fclose(f) != 0 : fflush(f) == EOF)
		io_failed = 1;
	if (io_failed)
		return admin_say(env, ADMIN_EXIT_FAILURE, "export: cannot "
		    "write '%s': %s", path, strerror(errno));
	return rc == REG_OK ? ADMIN_EXIT_OK :
	    admin_registry_failed(env, "export", rc);
}

int
admin_export(struct admin_env *env, const struct admin_args *a)
{
	const char *path = a->npos > 0 ? a->pos[0] : "-";
	struct stat st;

	if (strcmp(path, "-") == 0 ||
	    (stat(path, &st) == 0 && !S_ISREG(st.st_mode)))
		return export_stream(env, path);
	return export_file(env, path);
}
