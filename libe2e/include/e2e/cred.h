/*
 * Fleet trust (protocol/SPEC.md sec. 13): an authority (an ordinary
 * identity) signs credentials that say which topics a sender may seal and
 * which scopes a subscriber may fetch, for a time window. Senders and
 * subscribers that list the authority in their `authorities` file accept a
 * credential holder without a per-peer enrollment or trust entry.
 *
 * Parsing is split like the control messages: e2e_cred_parse is the cheap
 * layout check (no cryptography), e2e_cred_verify the signature, so a key
 * service can decide what a credential may cost before checking it.
 */
#ifndef E2E_CRED_H
#define E2E_CRED_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "identity.h"
#include "scopes.h"

#define E2E_CRED_VERSION      0x01U
#define E2E_CRED_SENDER       1U
#define E2E_CRED_SUBSCRIBER   2U
#define E2E_FP_BYTES          16U    /* authority id: the 7.3 fingerprint bytes */
#define E2E_CRED_SIG_BYTES    64U
/* version, kind, fp, serial, not_before, not_after, sign_pk, dh_pk */
#define E2E_CRED_FIXED_BYTES  (2U + E2E_FP_BYTES + 24U + E2E_PUB_BYTES)
#define E2E_CRED_RULES_MAX    64U    /* sender credential: topic rules */
#define E2E_CRED_SCOPES_MAX   64U    /* subscriber credential: scopes */
/* A credential fits in a REQUEST (2048 bytes) only when small; a sender's
 * may be larger and travels in DELIVERYs. */
#define E2E_CRED_MAX          4096U
/* "e2e-cred1 " + base64 of E2E_CRED_MAX bytes + NUL */
#define E2E_CRED_TEXT_MAX     (10U + (E2E_CRED_MAX + 2U) / 3U * 4U + 1U)
#define E2E_AUTHORITIES_MAX   16U

/* A decoded credential. Rule filters and raw point into the parsed bytes. */
struct e2e_cred {
	uint8_t kind;                       /* E2E_CRED_SENDER or E2E_CRED_SUBSCRIBER */
	uint8_t authority[E2E_FP_BYTES];    /* fp of the issuing authority */
	uint64_t serial;
	uint64_t not_before_ms, not_after_ms;
	struct e2e_public holder;           /* the keys the credential is for */
	uint16_t nrules;                    /* kind 1: topic filters it may seal */
	struct e2e_scope_rule rules[E2E_CRED_RULES_MAX];
	uint8_t nscopes;                    /* kind 2: scopes granted */
	uint8_t scopes[E2E_CRED_SCOPES_MAX];
	const uint8_t *raw;                 /* the whole credential, signature included */
	size_t raw_len;
};

/* What an authority is given to sign (e2e_cred_issue). */
struct e2e_cred_spec {
	uint8_t kind;
	uint64_t serial;
	uint64_t not_before_ms, not_after_ms;
	struct e2e_public holder;
	uint16_t nrules;
	const struct e2e_scope_rule *rules;
	uint8_t nscopes;
	const uint8_t *scopes;
};

/** The 16 fingerprint bytes of SPEC 7.3 (the authority id). */
E2E_API void e2e_public_fp(uint8_t fp[E2E_FP_BYTES], const struct e2e_public *pub);

/**
 * Sign a credential for @p spec with @p authority into @p out (at most
 * E2E_CRED_MAX bytes). E2E_ERR_ARG for a bad kind, no rule/scope, too many,
 * an invalid filter, a window with not_after <= not_before.
 */
E2E_API enum e2e_status e2e_cred_issue(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_cred_spec *spec, const struct e2e_identity *authority) E2E_WARN_UNUSED;

/**
 * Layout only (no signature check): version, kind, counts, every filter a
 * valid MQTT filter, consumed exactly. @p c points into @p p afterwards.
 * E2E_ERR_VERSION, E2E_ERR_MALFORMED.
 */
E2E_API enum e2e_status e2e_cred_parse(struct e2e_cred *c, const uint8_t *p,
	size_t len) E2E_WARN_UNUSED;

/**
 * The authority signature of a parsed credential: E2E_ERR_AUTH unless
 * @p authority is the one it names (fp) and the signature verifies.
 */
E2E_API enum e2e_status e2e_cred_verify(const struct e2e_cred *c,
	const struct e2e_public *authority) E2E_WARN_UNUSED;

/** 1 if not_before <= @p now_ms < not_after. */
E2E_API int e2e_cred_current(const struct e2e_cred *c, uint64_t now_ms);

/** 1 if a kind 2 credential grants @p scope. */
E2E_API int e2e_cred_grants(const struct e2e_cred *c, uint8_t scope);

/** 1 if a kind 1 credential has the rule (@p scope, filter) exactly. */
E2E_API int e2e_cred_has_rule(const struct e2e_cred *c, uint8_t scope, const char *filter,
	size_t filter_len);

/** Text form "e2e-cred1 <base64>" (no newline, NUL-terminated). */
E2E_API enum e2e_status e2e_cred_format(char *out, size_t cap, const uint8_t *cred,
	size_t len) E2E_WARN_UNUSED;

/**
 * Credential file text ('#' comments, blank lines, exactly one "e2e-cred1"
 * line) to the binary credential in @p out. Layout is checked too.
 */
E2E_API enum e2e_status e2e_cred_decode(uint8_t *out, size_t cap, size_t *len,
	const char *text, size_t text_len) E2E_WARN_UNUSED;

/** Read and decode a `credential` file (SPEC 7.4 owner and mode rules). */
E2E_API enum e2e_status e2e_cred_load(uint8_t *out, size_t cap, size_t *len,
	const char *path) E2E_WARN_UNUSED;

/* The trusted authorities of a sender or subscriber (file `authorities`). */
struct e2e_authority {
	struct e2e_public pub;
	uint8_t fp[E2E_FP_BYTES];
	char name[E2E_NAME_MAX + 1];
};

struct e2e_authorities {
	uint32_t n;
	struct e2e_authority a[E2E_AUTHORITIES_MAX];
};

/**
 * Parse an `authorities` file: '#' comments, blank lines, one public line
 * (7.2) each, at most E2E_AUTHORITIES_MAX. E2E_ERR_CORRUPT with "line N"
 * in @p err.
 */
E2E_API enum e2e_status e2e_authorities_parse(struct e2e_authorities *au, const char *buf,
	size_t len, char *err, size_t err_cap) E2E_WARN_UNUSED;

/** Load one (7.4 rules; a missing file is an empty list). */
E2E_API enum e2e_status e2e_authorities_load(struct e2e_authorities *au, const char *path,
	char *err, size_t err_cap) E2E_WARN_UNUSED;

/** The authority whose fp is @p fp, or NULL. */
E2E_API const struct e2e_authority *e2e_authorities_find(const struct e2e_authorities *au,
	const uint8_t fp[E2E_FP_BYTES]);

/**
 * Parse and fully check a credential against trusted @p au at @p now_ms:
 * E2E_ERR_MALFORMED/VERSION (layout), E2E_ERR_NOT_FOUND (authority not
 * listed), E2E_ERR_AUTH (signature), E2E_ERR_EXHAUSTED (outside its time
 * window), E2E_ERR_ARG (not of @p kind). Revocation is the caller's check.
 */
E2E_API enum e2e_status e2e_cred_check(struct e2e_cred *c, const uint8_t *p, size_t len,
	const struct e2e_authorities *au, uint8_t kind, uint64_t now_ms) E2E_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif
