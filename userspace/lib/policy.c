#include "policy.h"

#include <errno.h>
#include <string.h>

/*
 * A block rule needs a verdict, so a host with a rule always asks for a
 * certificate, even when its SNI object says mTLS off. The "alert" action is
 * carried out by the TLS stack itself (demand + abort); "block" must finish
 * the handshake to send its 403 page, and "drop" finishes it to close without
 * a word.
 */
enum edge_cert_request edge_policy_cert_request(enum edge_mtls_mode mode,
						enum edge_rule_action action)
{
	switch (action) {
	case EDGE_ACTION_ALERT:
		return EDGE_REQUEST_DEMAND;
	case EDGE_ACTION_BLOCK:
	case EDGE_ACTION_DROP:
		return EDGE_REQUEST_ASK;
	case EDGE_ACTION_NONE:
		break;
	}
	switch (mode) {
	case EDGE_MTLS_REQUIRED:
		return EDGE_REQUEST_DEMAND;
	case EDGE_MTLS_OPTIONAL:
		return EDGE_REQUEST_ASK;
	case EDGE_MTLS_OFF:
		break;
	}
	return EDGE_REQUEST_NONE;
}

bool edge_policy_abort_handshake(enum edge_mtls_mode mode, enum edge_rule_action action)
{
	if (action == EDGE_ACTION_ALERT)
		return true;
	if (action != EDGE_ACTION_NONE)
		return false;
	return mode == EDGE_MTLS_REQUIRED;
}

enum edge_verdict edge_policy_decide(enum edge_mtls_mode mode, enum edge_rule_action action,
				     enum edge_cert_status cert)
{
	if (cert == EDGE_CERT_VALID)
		return EDGE_VERDICT_PASS;
	switch (action) {
	case EDGE_ACTION_BLOCK:
		return EDGE_VERDICT_BLOCK;
	case EDGE_ACTION_DROP:
		return EDGE_VERDICT_DROP;
	case EDGE_ACTION_ALERT:
		return EDGE_VERDICT_REFUSE;
	case EDGE_ACTION_NONE:
		break;
	}
	switch (mode) {
	case EDGE_MTLS_OFF:
		return EDGE_VERDICT_PASS;
	case EDGE_MTLS_OPTIONAL:
		return EDGE_VERDICT_UNVERIFIED;
	case EDGE_MTLS_REQUIRED:
		break;
	}
	return EDGE_VERDICT_REFUSE;
}

const char *edge_verdict_name(enum edge_verdict v)
{
	static const char *const names[] = {
		[EDGE_VERDICT_PASS] = "pass",   [EDGE_VERDICT_UNVERIFIED] = "unverified",
		[EDGE_VERDICT_BLOCK] = "block", [EDGE_VERDICT_DROP] = "drop",
		[EDGE_VERDICT_REFUSE] = "fail",
	};
	return (unsigned int)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

static const char *const mode_names[] = {
	[EDGE_MTLS_REQUIRED] = "required",
	[EDGE_MTLS_OPTIONAL] = "optional",
	[EDGE_MTLS_OFF] = "off",
};

const char *edge_mtls_mode_name(enum edge_mtls_mode m)
{
	return (unsigned int)m < 3 ? mode_names[m] : "?";
}

int edge_mtls_mode_parse(const char *s, enum edge_mtls_mode *out)
{
	for (unsigned int i = 0; i < 3; i++) {
		if (!strcmp(s, mode_names[i])) {
			*out = (enum edge_mtls_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const action_names[] = {
	[EDGE_ACTION_NONE] = "none",
	[EDGE_ACTION_BLOCK] = "block",
	[EDGE_ACTION_ALERT] = "alert",
	[EDGE_ACTION_DROP] = "drop",
};

const char *edge_rule_action_name(enum edge_rule_action a)
{
	return (unsigned int)a < 4 ? action_names[a] : "?";
}

int edge_rule_action_parse(const char *s, enum edge_rule_action *out)
{
	for (unsigned int i = 1; i < 4; i++) {
		if (!strcmp(s, action_names[i])) {
			*out = (enum edge_rule_action)i;
			return 0;
		}
	}
	return -EINVAL;
}
