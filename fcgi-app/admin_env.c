/* admin_env.c: what every command of the userreg admin tool runs with. */
#include "admin_env.h"

#include <stdarg.h>
#include <stdlib.h>

#include "jsonio.h"

int
admin_registry_failed(struct admin_env *env, const char *what,
    enum reg_err rc)
{
	const char *why = env->reg != NULL ? registry_errmsg(env->reg) : "";

	if (why != NULL && why[0] != '\0')
		fprintf(env->err, "userreg: %s: %s (%s)\n", what,
		    registry_err_str(rc), why);
	else
		fprintf(env->err, "userreg: %s: %s\n", what,
		    registry_err_str(rc));
	return ADMIN_EXIT_FAILURE;
}

int
admin_print_user(FILE *f, const struct user *u)
{
	struct json_object *o = jsonio_user(u);
	char *s = o != NULL ? jsonio_serialize(o, NULL) : NULL;
	int rc = -1;

	json_object_put(o);
	if (s != NULL && fputs(s, f) != EOF && fputc('\n', f) != EOF)
		rc = 0;
	free(s);
	return rc;
}

int
admin_say(struct admin_env *env, int status, const char *fmt, ...)
{
	va_list ap;

	fputs("userreg: ", env->err);
	va_start(ap, fmt);
	vfprintf(env->err, fmt, ap);
	va_end(ap);
	fputc('\n', env->err);
	return status;
}
