/* The verdict table: every mode x action x certificate status. */
#include "policy.h"
#include "tap.h"

int main(void)
{
	static const enum edge_mtls_mode modes[] = { EDGE_MTLS_REQUIRED, EDGE_MTLS_OPTIONAL,
						     EDGE_MTLS_OFF };
	enum edge_mtls_mode m;
	enum edge_rule_action a;

	/* What the handshake asks of the client. */
	is_int(edge_policy_cert_request(EDGE_MTLS_REQUIRED, EDGE_ACTION_NONE), EDGE_REQUEST_DEMAND,
	       "required, no rule: certificate demanded");
	is_int(edge_policy_cert_request(EDGE_MTLS_OPTIONAL, EDGE_ACTION_NONE), EDGE_REQUEST_ASK,
	       "optional, no rule: certificate asked for");
	is_int(edge_policy_cert_request(EDGE_MTLS_OFF, EDGE_ACTION_NONE), EDGE_REQUEST_NONE,
	       "off, no rule: no certificate request");
	is_int(edge_policy_cert_request(EDGE_MTLS_REQUIRED, EDGE_ACTION_BLOCK), EDGE_REQUEST_ASK,
	       "block rule: the handshake must finish to send the 403 page");
	is_int(edge_policy_cert_request(EDGE_MTLS_OFF, EDGE_ACTION_DROP), EDGE_REQUEST_ASK,
	       "a rule on an mTLS-off host still asks (the rule needs a verdict)");
	is_int(edge_policy_cert_request(EDGE_MTLS_OPTIONAL, EDGE_ACTION_ALERT), EDGE_REQUEST_DEMAND,
	       "alert rule: the TLS stack refuses");

	/* Abort during the handshake on a bad chain. */
	ok(edge_policy_abort_handshake(EDGE_MTLS_REQUIRED, EDGE_ACTION_NONE),
	   "required, no rule: bad chain aborts with an alert");
	ok(!edge_policy_abort_handshake(EDGE_MTLS_OPTIONAL, EDGE_ACTION_NONE),
	   "optional, no rule: bad chain does not abort (verdict forwarded)");
	ok(!edge_policy_abort_handshake(EDGE_MTLS_REQUIRED, EDGE_ACTION_BLOCK),
	   "block rule: bad chain does not abort (403 comes after)");
	ok(!edge_policy_abort_handshake(EDGE_MTLS_REQUIRED, EDGE_ACTION_DROP),
	   "drop rule: bad chain does not abort (silent close after)");
	ok(edge_policy_abort_handshake(EDGE_MTLS_OFF, EDGE_ACTION_ALERT),
	   "alert rule: bad chain aborts");

	/* A valid certificate always passes. */
	for (unsigned int i = 0; i < 3; i++)
		for (a = EDGE_ACTION_NONE; a <= EDGE_ACTION_DROP; a++)
			is_int(edge_policy_decide(modes[i], a, EDGE_CERT_VALID), EDGE_VERDICT_PASS,
			       "valid certificate passes (mode %s, action %s)",
			       edge_mtls_mode_name(modes[i]), edge_rule_action_name(a));

	/* A rule matches every verdict other than success, no certificate included. */
	for (unsigned int i = 0; i < 3; i++) {
		m = modes[i];
		is_int(edge_policy_decide(m, EDGE_ACTION_BLOCK, EDGE_CERT_ABSENT),
		       EDGE_VERDICT_BLOCK, "block rule, no certificate: blocked (mode %s)",
		       edge_mtls_mode_name(m));
		is_int(edge_policy_decide(m, EDGE_ACTION_BLOCK, EDGE_CERT_INVALID),
		       EDGE_VERDICT_BLOCK, "block rule, invalid certificate: blocked (mode %s)",
		       edge_mtls_mode_name(m));
		is_int(edge_policy_decide(m, EDGE_ACTION_DROP, EDGE_CERT_INVALID),
		       EDGE_VERDICT_DROP, "drop rule, invalid certificate: dropped (mode %s)",
		       edge_mtls_mode_name(m));
		is_int(edge_policy_decide(m, EDGE_ACTION_ALERT, EDGE_CERT_ABSENT),
		       EDGE_VERDICT_REFUSE, "alert rule, no certificate: refused (mode %s)",
		       edge_mtls_mode_name(m));
	}

	/* No rule: the mode decides. */
	is_int(edge_policy_decide(EDGE_MTLS_REQUIRED, EDGE_ACTION_NONE, EDGE_CERT_ABSENT),
	       EDGE_VERDICT_REFUSE, "required, no certificate: refused");
	is_int(edge_policy_decide(EDGE_MTLS_REQUIRED, EDGE_ACTION_NONE, EDGE_CERT_INVALID),
	       EDGE_VERDICT_REFUSE, "required, invalid certificate: refused");
	is_int(edge_policy_decide(EDGE_MTLS_OPTIONAL, EDGE_ACTION_NONE, EDGE_CERT_ABSENT),
	       EDGE_VERDICT_UNVERIFIED, "optional, no certificate: relayed unverified");
	is_int(edge_policy_decide(EDGE_MTLS_OPTIONAL, EDGE_ACTION_NONE, EDGE_CERT_INVALID),
	       EDGE_VERDICT_UNVERIFIED, "optional, invalid certificate: relayed unverified");
	is_int(edge_policy_decide(EDGE_MTLS_OFF, EDGE_ACTION_NONE, EDGE_CERT_ABSENT),
	       EDGE_VERDICT_PASS, "off: passes");

	/* Names round-trip. */
	ok(!edge_mtls_mode_parse("optional", &m) && m == EDGE_MTLS_OPTIONAL, "parse 'optional'");
	ok(edge_mtls_mode_parse("maybe", &m) == -22, "parse 'maybe' refused");
	ok(!edge_rule_action_parse("drop", &a) && a == EDGE_ACTION_DROP, "parse 'drop'");
	ok(edge_rule_action_parse("none", &a) == -22, "'none' is not a rule action");
	return tap_done();
}
