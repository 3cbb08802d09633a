/*
 * One-time enrollment tickets (protocol/SPEC.md sec. 14): an authority
 * records a ticket (id, secret, scopes, expiry, uses) and hands out a short
 * token; a new machine redeems it over MQTT (REDEEM) and gets a subscriber
 * credential back (GRANT). The token's secret keys a MAC over the REDEEM,
 * which binds the redeemer's keys, its reply topic and its time; the GRANT
 * carries the authority's keys, checked against the fingerprint in the
 * token, so the redeemer needs nothing but the token.
 *
 * Messages use the control layout and signature of SPEC 11.2 (types 0x07
 * and 0x08). Pure functions on caller buffers, except the ticket store
 * (e2e_tickets_*), which owns the authority's `tickets` file.
 */
#ifndef E2E_TICKET_H
#define E2E_TICKET_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "control.h"
#include "cred.h"
#include "identity.h"

#define E2E_CTL_REDEEM       0x07U
#define E2E_CTL_GRANT        0x08U

#define E2E_TICKET_ID_BYTES     8U
#define E2E_TICKET_SECRET_BYTES 16U
#define E2E_TICKET_FP_BYTES     E2E_FP_BYTES   /* the authority id (e2e_public_fp) */
#define E2E_TICKET_MAC_BYTES    32U
#define E2E_TICKET_SCOPES_MAX   64U
/* "e2et1-" + unpadded base64url of id || secret || fp (40 bytes: 54 chars) */
#define E2E_TICKET_TOKEN_LEN    60U
#define E2E_TICKET_TOPIC_MAX    256U
/* A GRANT's credential (a subscriber's is about 200 bytes). */
#define E2E_TICKET_CRED_MAX     1024U

/* Ticket refusal reasons, carried in a GRANT (next to 11.2's REFUSAL 1..5;
 * E2E_REFUSE_STALE is used too). */
#define E2E_REFUSE_TICKET_UNKNOWN 6U
#define E2E_REFUSE_TICKET_EXPIRED 7U
#define E2E_REFUSE_TICKET_USED    8U
#define E2E_REFUSE_TICKET_MAC     9U

/** What a token carries. Wipe it after use: the secret redeems the ticket. */
struct e2e_ticket_token {
	uint8_t id[E2E_TICKET_ID_BYTES];
	uint8_t secret[E2E_TICKET_SECRET_BYTES];
	uint8_t fp[E2E_TICKET_FP_BYTES];
};

/** "e2et1-<base64url>" of @p t into @p out (NUL-terminated). */
E2E_API void e2e_ticket_token_format(char out[E2E_TICKET_TOKEN_LEN + 1],
	const struct e2e_ticket_token *t);

/** Parse a token (surrounding blanks allowed). E2E_ERR_MALFORMED. */
E2E_API enum e2e_status e2e_ticket_token_parse(struct e2e_ticket_token *t,
	const char *text) E2E_WARN_UNUSED;

/** "<control>/authority/<32 hex of fp>" and the same + "/redeem". */
E2E_API enum e2e_status e2e_ticket_authority_topic(char *out, size_t cap,
	const char *control_topic, const uint8_t fp[E2E_TICKET_FP_BYTES]) E2E_WARN_UNUSED;
E2E_API enum e2e_status e2e_ticket_redeem_topic(char *out, size_t cap,
	const char *control_topic, const uint8_t fp[E2E_TICKET_FP_BYTES]) E2E_WARN_UNUSED;

/* A decoded REDEEM or GRANT. */
struct e2e_redeem {
	uint8_t type;
	uint32_t sender;             /* REDEEM: 0; GRANT: the authority's sender id */
	uint64_t time_ms;
	/* REDEEM */
	uint8_t ticket_id[E2E_TICKET_ID_BYTES];
	struct e2e_public redeemer;
	uint8_t nonce[E2E_CTL_NONCE_BYTES];
	char reply_topic[E2E_CTL_REPLY_MAX + 1];
	uint8_t mac[E2E_TICKET_MAC_BYTES];
	/* GRANT */
	uint8_t request_hash[E2E_CTL_HASH_BYTES];
	struct e2e_public authority;
	uint8_t reason;              /* 0 granted, else a refusal reason */
	const uint8_t *cred;         /* into the message; cred_len 0 for a refusal */
	size_t cred_len;
};

/**
 * Build a REDEEM of ticket @p tok by @p redeemer into @p out (at most
 * E2E_CTL_MSG_MAX bytes), signed for the redeem topic @p topic; @p r is
 * filled with what was sent (its fresh reply topic, unless @p reply_topic).
 */
E2E_API enum e2e_status e2e_ticket_redeem(uint8_t *out, size_t cap, size_t *len,
	struct e2e_redeem *r, const struct e2e_identity *redeemer,
	const struct e2e_ticket_token *tok, const char *reply_topic, const char *topic,
	uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Parse a REDEEM received on @p topic: size, version, type, layout (reply
 * topic rule of 11.2, consumed exactly), then the signature with the key
 * it carries. Not the MAC: see e2e_ticket_redeem_mac_ok.
 * E2E_ERR_MALFORMED, E2E_ERR_VERSION, E2E_ERR_AUTH.
 */
E2E_API enum e2e_status e2e_ticket_redeem_parse(struct e2e_redeem *r, const uint8_t *msg,
	size_t len, const char *topic) E2E_WARN_UNUSED;

/** 1 if the REDEEM @p msg (as parsed) carries a MAC made with @p secret (constant time). */
E2E_API int e2e_ticket_redeem_mac_ok(const uint8_t *msg, size_t len,
	const uint8_t secret[E2E_TICKET_SECRET_BYTES]);

/**
 * Build the authority's answer to REDEEM @p r (hash @p req_hash): a GRANT
 * of @p cred (reason 0) or a refusal (@p reason != 0, no credential),
 * signed for r->reply_topic.
 */
E2E_API enum e2e_status e2e_ticket_grant(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *authority, const struct e2e_redeem *r,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], uint8_t reason, const uint8_t *cred,
	size_t cred_len, uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Parse a GRANT received on @p topic, from the authority of fingerprint
 * @p fp: the keys it carries must have that fingerprint (else AUTH) and
 * sign it over @p topic (else AUTH); its sender field must be their sender
 * id (else MALFORMED). The req_hash and the credential are the caller's
 * checks.
 */
E2E_API enum e2e_status e2e_ticket_grant_parse(struct e2e_redeem *g, const uint8_t *msg,
	size_t len, const char *topic, const uint8_t fp[E2E_TICKET_FP_BYTES]) E2E_WARN_UNUSED;

/* ---- The authority's ticket records (file `tickets`, SPEC 14.2) ---- */

struct e2e_ticket_use {
	uint8_t req_hash[E2E_CTL_HASH_BYTES];
	uint16_t cred_len;
	uint8_t cred[E2E_TICKET_CRED_MAX];
};

struct e2e_ticket {
	uint8_t id[E2E_TICKET_ID_BYTES];
	uint8_t secret[E2E_TICKET_SECRET_BYTES];
	uint64_t expires_ms;
	uint32_t uses_left;
	uint8_t nscopes;
	uint8_t scopes[E2E_TICKET_SCOPES_MAX];
	uint32_t nused;              /* redemptions recorded (their answers, for replays) */
	struct e2e_ticket_use *used;
};

struct e2e_tickets {
	uint32_t n;
	struct e2e_ticket *t;
};

/** Load @p path (a missing file is an empty list). Free with e2e_tickets_free. */
E2E_API enum e2e_status e2e_tickets_load(struct e2e_tickets *ts, const char *path,
	char *err, size_t err_cap) E2E_WARN_UNUSED;

/** Write atomically, mode 0600. */
E2E_API enum e2e_status e2e_tickets_save(const struct e2e_tickets *ts,
	const char *path) E2E_WARN_UNUSED;

/** Wipe and free. */
E2E_API void e2e_tickets_free(struct e2e_tickets *ts);

/**
 * A new ticket with a random id and secret; records that expired more than
 * a day before @p now_ms are dropped on the way. *@p out points into @p ts.
 */
E2E_API enum e2e_status e2e_tickets_add(struct e2e_tickets *ts, const uint8_t *scopes,
	uint8_t nscopes, uint64_t expires_ms, uint32_t uses, uint64_t now_ms,
	const struct e2e_ticket **out) E2E_WARN_UNUSED;

/** The ticket of id @p id, or NULL. */
E2E_API struct e2e_ticket *e2e_tickets_find(struct e2e_tickets *ts,
	const uint8_t id[E2E_TICKET_ID_BYTES]);

/** The recorded use of @p t answering @p req_hash, or NULL. */
E2E_API const struct e2e_ticket_use *e2e_ticket_use_find(const struct e2e_ticket *t,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES]);

/** Record a use (uses_left - 1) answering @p req_hash with @p cred. */
E2E_API enum e2e_status e2e_ticket_consume(struct e2e_ticket *t,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], const uint8_t *cred,
	size_t cred_len) E2E_WARN_UNUSED;

/* ---- The two ends of a redemption (SPEC 14.4, 14.5) ---- */

/** What e2e_ticket_serve decided about one REDEEM. */
struct e2e_ticket_outcome {
	uint8_t reason;              /* 0 granted, else the refusal reason sent */
	int consumed;                /* a use was recorded: save @p ts BEFORE publishing */
	int replayed;                /* a REDEEM already answered: the same GRANT again */
	uint64_t serial;             /* of the credential issued (consumed) */
	uint8_t ticket_id[E2E_TICKET_ID_BYTES];
	uint8_t req_hash[E2E_CTL_HASH_BYTES];
	struct e2e_public redeemer;
	char reply_topic[E2E_CTL_REPLY_MAX + 1];   /* publish the answer here */
};

/**
 * The authority's answer to the message @p msg received on its redeem topic
 * @p topic, into @p out (E2E_CTL_MSG_MAX bytes suffice): the checks of SPEC
 * 14.4 in order, then a GRANT of a fresh subscriber credential valid
 * @p cred_ttl_ms (a use consumed in @p ts), the recorded GRANT again for a
 * REDEEM already answered, or a refusal. A REDEEM whose time is more than
 * @p window_ms off @p now_ms is refused as stale.
 * @return E2E_OK with an answer to publish on res->reply_topic (after
 *         saving @p ts if res->consumed); E2E_ERR_MALFORMED, _VERSION or
 *         _AUTH: drop the message, no answer.
 */
E2E_API enum e2e_status e2e_ticket_serve(uint8_t *out, size_t cap, size_t *out_len,
	struct e2e_ticket_outcome *res, struct e2e_tickets *ts,
	const struct e2e_identity *authority, const uint8_t *msg, size_t len, const char *topic,
	uint64_t now_ms, uint64_t window_ms, uint64_t cred_ttl_ms) E2E_WARN_UNUSED;

/**
 * The redeemer's check of an answer @p msg on its reply topic @p topic to
 * the REDEEM @p sent of hash @p req_hash, from the authority of token
 * fingerprint @p fp: e2e_ticket_grant_parse, then the req_hash (else
 * E2E_ERR_EXISTS: an answer to another REDEEM), then for a grant
 * (g->reason 0) the credential: signed by that authority, a subscriber
 * credential, for exactly the redeemer's keys (else E2E_ERR_AUTH). A
 * refusal is E2E_OK with g->reason set. @p c points into @p msg.
 */
E2E_API enum e2e_status e2e_ticket_accept(struct e2e_redeem *g, struct e2e_cred *c,
	const uint8_t *msg, size_t len, const char *topic, const struct e2e_redeem *sent,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES],
	const uint8_t fp[E2E_FP_BYTES]) E2E_WARN_UNUSED;

/**
 * Install a granted credential: add @p authority's public line to
 * @p auth_path (the `authorities` file; kept if already listed) and write
 * @p cred to @p cred_path (the `credential` file), atomically, mode 0600.
 * On failure "<path>: why" goes to @p err.
 */
E2E_API enum e2e_status e2e_ticket_install(const char *auth_path, const char *cred_path,
	const struct e2e_public *authority, const uint8_t *cred, size_t cred_len,
	char *err, size_t err_cap) E2E_WARN_UNUSED;

/** Words for a ticket refusal reason (6..9), else e2e_refusal_name's. */
E2E_API const char *e2e_ticket_reason_name(uint8_t reason);

#ifdef __cplusplus
}
#endif

#endif
