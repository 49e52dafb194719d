/* The name tables of reason.h. */
#include "reason.h"

static const char *const close_names[EDGE_CLOSE_NREASONS] = {
	[EDGE_CLOSE_NONE] = "none",
	[EDGE_CLOSE_DONE] = "done",
	[EDGE_CLOSE_SHUTDOWN] = "shutdown",
	[EDGE_CLOSE_IDLE_TIMEOUT] = "idle_timeout",
	[EDGE_CLOSE_BLOCKED] = "blocked",
	[EDGE_CLOSE_CERT_REVOKED] = "cert_revoked",
	[EDGE_CLOSE_CERT_EXPIRED] = "cert_expired",
	[EDGE_CLOSE_UPSTREAM_CONNECT_FAILED] = "upstream_connect_failed",
	[EDGE_CLOSE_UPSTREAM_TLS_FAILED] = "upstream_tls_failed",
	[EDGE_CLOSE_UPSTREAM_TLS_TIMEOUT] = "upstream_tls_timeout",
	[EDGE_CLOSE_UPSTREAM_TLS_ERROR] = "upstream_tls_error",
	[EDGE_CLOSE_UPSTREAM_ERROR] = "upstream_error",
	[EDGE_CLOSE_UPSTREAM_RESET] = "upstream_reset",
	[EDGE_CLOSE_UPSTREAM_ALERT] = "upstream_alert",
	[EDGE_CLOSE_CLIENT_TLS_ERROR] = "client_tls_error",
	[EDGE_CLOSE_CLIENT_ERROR] = "client_error",
	[EDGE_CLOSE_CLIENT_RESET] = "client_reset",
	[EDGE_CLOSE_CLIENT_ALERT] = "client_alert",
	[EDGE_CLOSE_BAD_RECORD] = "bad_record",
	[EDGE_CLOSE_RENEGOTIATION] = "renegotiation",
	[EDGE_CLOSE_KEY_UPDATE] = "key_update",
	[EDGE_CLOSE_HTTP_REFUSED] = "http_refused",
	[EDGE_CLOSE_KTLS_INSTALL_FAILED] = "ktls_install_failed",
	[EDGE_CLOSE_OUT_OF_MEMORY] = "out_of_memory",
	[EDGE_CLOSE_INTERNAL_ERROR] = "internal_error",
	[EDGE_CLOSE_NOT_AUTHORIZED] = "not_authorized",
	[EDGE_CLOSE_UPSTREAM_ALPN] = "upstream_alpn_mismatch",
	[EDGE_CLOSE_H2_STREAM_RESET] = "stream_reset",
	[EDGE_CLOSE_H2_CLOSED] = "connection_closed",
	[EDGE_CLOSE_H2_GOAWAY] = "goaway",
	[EDGE_CLOSE_OTHER] = "other",
	[EDGE_CLOSE_HANDSHAKE] = "handshake",
};

const char *edge_close_reason_name(enum edge_close_reason r)
{
	return (unsigned int)r < EDGE_CLOSE_NREASONS && close_names[r] ? close_names[r] : "other";
}

static const enum edge_close_reason side_reasons[EDGE_XF_COUNT][2] = {
	[EDGE_XF_ERROR] = { EDGE_CLOSE_CLIENT_ERROR, EDGE_CLOSE_UPSTREAM_ERROR },
	[EDGE_XF_RESET] = { EDGE_CLOSE_CLIENT_RESET, EDGE_CLOSE_UPSTREAM_RESET },
	[EDGE_XF_TLS] = { EDGE_CLOSE_CLIENT_TLS_ERROR, EDGE_CLOSE_UPSTREAM_TLS_ERROR },
	[EDGE_XF_ALERT] = { EDGE_CLOSE_CLIENT_ALERT, EDGE_CLOSE_UPSTREAM_ALERT },
	[EDGE_XF_BAD_RECORD] = { EDGE_CLOSE_BAD_RECORD, EDGE_CLOSE_BAD_RECORD },
	[EDGE_XF_KEY_UPDATE] = { EDGE_CLOSE_KEY_UPDATE, EDGE_CLOSE_KEY_UPDATE },
	[EDGE_XF_RENEG] = { EDGE_CLOSE_RENEGOTIATION, EDGE_CLOSE_RENEGOTIATION },
	[EDGE_XF_NOMEM] = { EDGE_CLOSE_OUT_OF_MEMORY, EDGE_CLOSE_OUT_OF_MEMORY },
};

enum edge_close_reason edge_close_reason_of(enum edge_side_id side, enum edge_xprt_fail f)
{
	if ((unsigned int)f >= EDGE_XF_COUNT)
		return EDGE_CLOSE_OTHER;
	return side_reasons[f][side == EDGE_UPSTREAM];
}

static const char *const hs_names[EDGE_HS_FAIL_COUNT] = {
	[EDGE_HS_OK] = "ok",
	[EDGE_HS_VERIFY] = "verify_failed",
	[EDGE_HS_UNKNOWN_SNI] = "unknown_sni",
	[EDGE_HS_NO_SNI] = "no_sni",
	[EDGE_HS_BAD_SNI] = "bad_sni",
	[EDGE_HS_TLS_ERROR] = "tls_error",
	[EDGE_HS_CLIENT_CLOSED] = "client_closed",
	[EDGE_HS_NOT_TLS] = "not_tls",
	[EDGE_HS_UNSUPPORTED_VERSION] = "unsupported_version",
	[EDGE_HS_NO_SHARED_CIPHER] = "no_shared_cipher",
	[EDGE_HS_TIMEOUT] = "handshake_timeout",
	[EDGE_HS_INTERNAL_ERROR] = "internal_error",
	[EDGE_HS_ALPN_MISMATCH] = "alpn_mismatch",
	[EDGE_HS_ALPN_MISSING] = "alpn_missing",
};

const char *edge_hs_fail_name(enum edge_hs_fail f, enum edge_reason vreason)
{
	if (f == EDGE_HS_VERIFY)
		return edge_reason_name(vreason);
	return (unsigned int)f < EDGE_HS_FAIL_COUNT ? hs_names[f] : "other";
}

size_t edge_hs_fail_index(enum edge_hs_fail f, enum edge_reason vreason)
{
	const size_t nv = EDGE_REASON_COUNT - 1;

	if (f == EDGE_HS_VERIFY && vreason > EDGE_REASON_OK && vreason < EDGE_REASON_COUNT)
		return (size_t)vreason - 1;
	if (f >= EDGE_HS_UNKNOWN_SNI && f < EDGE_HS_FAIL_COUNT)
		return nv + (size_t)(f - EDGE_HS_UNKNOWN_SNI);
	return EDGE_HS_FAIL_INDEXES - 1;
}

const char *edge_hs_fail_index_name(size_t i)
{
	const size_t nv = EDGE_REASON_COUNT - 1;

	if (i < nv)
		return edge_reason_name((enum edge_reason)(i + 1));
	if (i - nv < (size_t)(EDGE_HS_FAIL_COUNT - EDGE_HS_UNKNOWN_SNI))
		return hs_names[EDGE_HS_UNKNOWN_SNI + (i - nv)];
	return "other";
}

static const char *const goaway_names[EDGE_H2_GOAWAY_COUNT] = {
	[EDGE_H2_GOAWAY_PROTOCOL] = "protocol_error",
	[EDGE_H2_GOAWAY_RAPID_RESET] = "rapid_reset",
	[EDGE_H2_GOAWAY_HEADER_FLOOD] = "header_flood",
	[EDGE_H2_GOAWAY_CONTROL_FLOOD] = "control_flood",
	[EDGE_H2_GOAWAY_IDLE] = "idle",
	[EDGE_H2_GOAWAY_SHUTDOWN] = "shutdown",
};

const char *edge_h2_goaway_name(enum edge_h2_goaway g)
{
	return (unsigned int)g < EDGE_H2_GOAWAY_COUNT ? goaway_names[g] : "other";
}
