/* The running command's arguments as the noun files read them: option values
 * (filled by the parser in main.c), integer and choice options, ID arguments,
 * and the option tables several commands share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int ctl_opt_index(const struct ctl_opt *opts, const char *name, size_t len)
{
	for (int i = 0; opts && opts[i].name; i++)
		if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
			return i;
	return -1;
}

int ctl_opts(struct ctl *c, const char *name, char ***v)
{
	int i = ctl_opt_index(c->cmd->opts, name, strlen(name));

	if (i < 0 || !c->vals[i].n) {
		*v = NULL;
		return 0;
	}
	*v = c->vals[i].v;
	return c->vals[i].n;
}

const char *ctl_opt(struct ctl *c, const char *name)
{
	char **v;
	int n = ctl_opts(c, name, &v);

	return n ? v[n - 1] : NULL;
}

bool ctl_flag(struct ctl *c, const char *name)
{
	return ctl_opt(c, name) != NULL;
}

int ctl_opt_int(struct ctl *c, const char *name, long min, long max, long def, long *out)
{
	const char *s = ctl_opt(c, name);
	char *end;

	*out = def;
	if (!s)
		return CTL_OK;
	errno = 0;
	*out = strtol(s, &end, 10);
	if (!*s || *end || errno)
		return ctl_error(CTL_EUSAGE, "--%s: '%s' is not a number", name, s);
	if (*out < min || *out > max)
		return ctl_error(CTL_EINVAL, "--%s: %ld is out of range (%ld to %ld)", name, *out,
				 min, max);
	return CTL_OK;
}

int ctl_opt_choice(struct ctl *c, const char *name, const char *const *choices, const char *def,
		   const char **out)
{
	const char *s = ctl_opt(c, name);
	char list[256] = "";

	*out = def;
	if (!s)
		return CTL_OK;
	for (int i = 0; choices[i]; i++) {
		if (!strcmp(s, choices[i])) {
			*out = choices[i];
			return CTL_OK;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "|" : "",
			 choices[i]);
	}
	return ctl_error(CTL_EUSAGE, "--%s: '%s' is not one of %s", name, s, list);
}

int ctl_arg_id(const char *s, const char *what, int64_t *id)
{
	char *end;

	errno = 0;
	*id = strtoll(s, &end, 10);
	if (!*s || *end || errno || *id < 1)
		return ctl_error(CTL_EUSAGE, "'%s' is not a %s ID (a positive number)", s, what);
	return CTL_OK;
}

const struct ctl_opt ctl_pem_opts[] = {
	{ "pem", 0, NULL, "print the certificate in PEM" },
	{ NULL, 0, NULL, NULL },
};
