/*
 * mtls-edgectl: the dispatcher and the one argument parser.
 *
 * A command is a path of words ("ca hosts set") in one of the noun tables.
 * Global options (--state DIR, --json, --help/-h, --version) are accepted
 * anywhere; the command's own options ("--name X", "--name=X") anywhere after
 * its words; "--" ends the options. The commands read the values through
 * args.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"

#define DEFAULT_STATE "/var/lib/mtls-edge"

static const struct ctl_cmd *const tables[] = {
	ctl_site_cmds,     ctl_cert_cmds,   ctl_ca_cmds,    ctl_sni_cmds,    ctl_rule_cmds,
	ctl_identity_cmds, ctl_daemon_cmds, ctl_flows_cmds, ctl_verify_cmds, ctl_fleet_cmds,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* What a noun's commands mean together, printed by their --help. */
static const struct {
	const char *noun;
	const char *const *lines;
} notes[] = {
	{ "identity", ctl_identity_notes },
};

static const struct ctl_opt global_opts[] = {
	{ "state", CTL_ARG, "DIR",
	  "state directory (default $MTLS_EDGE_STATE, else " DEFAULT_STATE ")" },
	{ "json", 0, NULL, "machine-readable output" },
	{ "help", 0, NULL, "show help (also -h)" },
	{ "version", 0, NULL, "show the version" },
	{ NULL, 0, NULL, NULL },
};

#define for_each_cmd(cmd)                       \
	for (size_t t_ = 0; t_ < NTABLES; t_++) \
		for (const struct ctl_cmd *cmd = tables[t_]; cmd->path; cmd++)

/* ---- help --------------------------------------------------------------- */

static void print_opts(FILE *f, const struct ctl_opt *opts)
{
	for (int i = 0; opts && opts[i].name; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
			 opts[i].metavar ? opts[i].metavar : "",
			 opts[i].flags & CTL_MULTI ? "..." : "");
		fprintf(f, "  %-26s ", left);
		/* A "\n" in the help continues it under its first line. */
		for (const char *h = opts[i].help, *nl; h; h = nl ? nl + 1 : NULL) {
			nl = strchr(h, '\n');
			fprintf(f, "%s%.*s\n",
				h == opts[i].help ? "" : "                             ",
				nl ? (int)(nl - h) : (int)strlen(h), h);
		}
	}
}

/* The notes of the noun that prefix ("identity allow", "identity") starts with. */
static void print_notes(FILE *f, const char *prefix)
{
	for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
		size_t len = strlen(notes[i].noun);

		if (strncmp(prefix, notes[i].noun, len) || (prefix[len] && prefix[len] != ' '))
			continue;
		fputc('\n', f);
		for (int k = 0; notes[i].lines[k]; k++)
			fprintf(f, "%s\n", notes[i].lines[k]);
	}
}

static void cmd_usage(FILE *f, const struct ctl_cmd *cmd)
{
	fprintf(f, "usage: " CTL_PROG " %s%s%s%s\n\n%s\n", cmd->path, *cmd->args ? " " : "",
		cmd->args, cmd->opts ? " [options]" : "", cmd->summary);
	print_notes(f, cmd->path);
	if (cmd->opts) {
		fprintf(f, "\nOptions:\n");
		print_opts(f, cmd->opts);
	}
	fprintf(f, "\nGlobal options:\n");
	print_opts(f, global_opts);
}

/* Every command under prefix ("" for all). */
static void group_usage(FILE *f, const char *prefix)
{
	size_t len = strlen(prefix);

	fprintf(f,
		"usage: " CTL_PROG " [--state DIR] [--json] %s%sCOMMAND [ARGS] [options]\n\n"
		"Commands:\n",
		prefix, len ? " " : "");
	for_each_cmd(cmd) {
		char left[256];
		int n;

		if (len &&
		    (strncmp(cmd->path, prefix, len) || (cmd->path[len] && cmd->path[len] != ' ')))
			continue;
		n = snprintf(left, sizeof(left), "%s %s", cmd->path, cmd->args);
		/* A synopsis wider than its column: the summary on the next line. */
		if (n > 34)
			fprintf(f, "  %s\n  %-34s %s\n", left, "", cmd->summary);
		else
			fprintf(f, "  %-34s %s\n", left, cmd->summary);
	}
	if (len)
		print_notes(f, prefix);
	fprintf(f, "\nGlobal options:\n");
	print_opts(f, global_opts);
	fprintf(f, "\nExit codes: 0 ok, 1 internal or I/O error, 2 usage, 3 not found, 4 limit "
		   "reached,\n5 invalid input, 6 daemon unreachable, 7 daemon refused the new "
		   "state.\n'" CTL_PROG " COMMAND --help' describes a command.\n");
}

/* ---- parsing ------------------------------------------------------------ */

/* Is "prefix word" the start of (or equal to) a command path? */
static bool path_extends(const char *prefix, const char *word, const struct ctl_cmd **exact)
{
	char want[128];
	size_t len;
	bool any = false;

	len = (size_t)snprintf(want, sizeof(want), "%s%s%s", prefix, *prefix ? " " : "", word);
	if (len >= sizeof(want))
		return false;
	*exact = NULL;
	for_each_cmd(cmd) {
		if (strncmp(cmd->path, want, len) || (cmd->path[len] && cmd->path[len] != ' '))
			continue;
		any = true;
		if (!cmd->path[len])
			*exact = cmd;
	}
	return any;
}

static int global_opt(struct ctl *c, int argc, char **argv, int *i, bool *help, bool *version)
{
	const char *a = argv[*i];

	if (!strcmp(a, "--json")) {
		c->json = true;
	} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		*help = true;
	} else if (!strcmp(a, "--version")) {
		*version = true;
	} else if (!strncmp(a, "--state=", 8)) {
		c->state = a + 8;
	} else if (!strcmp(a, "--state")) {
		if (*i + 1 >= argc)
			return ctl_error(CTL_EUSAGE, "--state needs a value");
		c->state = argv[++*i];
	} else {
		return -1;
	}
	return CTL_OK;
}

static int parse2(struct ctl *c, char **rest, int nrest);

static int parse(struct ctl *c, int argc, char **argv)
{
	bool help = false, version = false, matching = true, dashdash = false;
	const struct ctl_cmd *cmd = NULL, *exact;
	char prefix[128] = "";
	char **rest;
	int nrest = 0, rc;

	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest)
		return ctl_error(CTL_EIO, "out of memory");
	/* Pass 1: global options anywhere, then the command's words. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!dashdash && !strcmp(a, "--")) {
			dashdash = true;
			rest[nrest++] = argv[i];
			matching = false;
			continue;
		}
		if (!dashdash && a[0] == '-' && a[1]) {
			rc = global_opt(c, argc, argv, &i, &help, &version);
			if (rc > 0) {
				free(rest);
				return rc;
			}
			if (rc < 0) {
				matching = false;
				rest[nrest++] = argv[i];
			}
			continue;
		}
		if (matching && path_extends(prefix, a, &exact)) {
			snprintf(prefix + strlen(prefix), sizeof(prefix) - strlen(prefix), "%s%s",
				 *prefix ? " " : "", a);
			cmd = exact;
			continue;
		}
		matching = false;
		rest[nrest++] = argv[i];
	}
	if (version && !cmd) {
		printf(CTL_PROG " " CTL_VERSION "\n");
		free(rest);
		return -1;
	}
	if (!cmd) {
		rc = help && (!nrest || !*prefix) ? -1 : CTL_EUSAGE;
		if (rc == CTL_EUSAGE && nrest)
			ctl_error(rc, "unknown %s '%s%s%s'",
				  rest[0][0] == '-' ? "option" : "command", prefix,
				  *prefix ? " " : "", rest[0]);
		else if (rc == CTL_EUSAGE && *prefix)
			ctl_error(rc, "'%s' needs a subcommand", prefix);
		group_usage(rc < 0 ? stdout : stderr, prefix);
		free(rest);
		return rc;
	}
	c->cmd = cmd;
	rc = help ? -1 : parse2(c, rest, nrest);
	if (help)
		cmd_usage(stdout, cmd);
	free(rest);
	return rc;
}

/* Pass 2: the command's options and positional arguments. */
static int parse2(struct ctl *c, char **rest, int nrest)
{
	const struct ctl_cmd *cmd = c->cmd;
	bool dashdash = false;
	int nopts = 0;

	while (cmd->opts && cmd->opts[nopts].name)
		nopts++;
	c->args = calloc((size_t)nrest + 1, sizeof(*c->args));
	c->vals = calloc((size_t)nopts + 1, sizeof(*c->vals));
	if (!c->args || !c->vals)
		return ctl_error(CTL_EIO, "out of memory");
	for (int i = 0; i < nrest; i++) {
		const char *a = rest[i], *eq;
		int o;

		if (!dashdash && !strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		if (dashdash || a[0] != '-' || !a[1]) {
			c->args[c->nargs++] = rest[i];
			continue;
		}
		eq = strchr(a, '=');
		o = a[1] == '-' ? ctl_opt_index(cmd->opts, a + 2,
						eq ? (size_t)(eq - a - 2) : strlen(a + 2))
				: -1;
		if (o < 0)
			return ctl_error(CTL_EUSAGE,
					 "unknown option '%s' for '%s' (see "
					 "'" CTL_PROG " %s --help')",
					 a, cmd->path, cmd->path);
		if (c->vals[o].n && !(cmd->opts[o].flags & CTL_MULTI))
			return ctl_error(CTL_EUSAGE, "--%s given more than once",
					 cmd->opts[o].name);
		if (!c->vals[o].v)
			c->vals[o].v = calloc((size_t)nrest + 1, sizeof(char *));
		if (!c->vals[o].v)
			return ctl_error(CTL_EIO, "out of memory");
		if (!(cmd->opts[o].flags & CTL_ARG)) {
			if (eq)
				return ctl_error(CTL_EUSAGE, "--%s takes no value",
						 cmd->opts[o].name);
			c->vals[o].v[c->vals[o].n++] = (char *)"";
		} else if (eq) {
			c->vals[o].v[c->vals[o].n++] = (char *)eq + 1;
		} else if (i + 1 < nrest) {
			c->vals[o].v[c->vals[o].n++] = rest[++i];
		} else {
			return ctl_error(CTL_EUSAGE, "--%s needs a value (%s)", cmd->opts[o].name,
					 cmd->opts[o].metavar);
		}
	}
	if (c->nargs < cmd->min_args || (cmd->max_args >= 0 && c->nargs > cmd->max_args)) {
		ctl_error(CTL_EUSAGE, "'%s' %s", cmd->path,
			  c->nargs < cmd->min_args ? "is missing arguments"
						   : "was given too many arguments");
		fprintf(stderr, "usage: " CTL_PROG " %s %s\n", cmd->path, cmd->args);
		return CTL_EUSAGE;
	}
	return CTL_OK;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	int rc;

	umask(077); /* store, WAL and key files: never group or world readable */
	c.now = time(NULL);
	c.state = getenv("MTLS_EDGE_STATE");
	if (!c.state || !*c.state)
		c.state = DEFAULT_STATE;
	rc = parse(&c, argc, argv);
	if (!rc && (c.cmd->flags & CTL_STORE))
		rc = ctl_open_store(&c, 0);
	if (!rc)
		rc = c.cmd->run(&c);
	else if (rc < 0)
		rc = CTL_OK; /* --help or --version printed */
	if (c.st)
		edge_store_close(c.st);
	for (int i = 0; c.vals && c.cmd->opts && c.cmd->opts[i].name; i++)
		free(c.vals[i].v);
	free(c.vals);
	free(c.args);
	if (fflush(stdout) && !rc)
		rc = ctl_error(CTL_EIO, "cannot write the output");
	return rc;
}
