/*
 * Control messages of the key distribution protocol (protocol/SPEC.md
 * sec. 11): key request, key delivery, refusal and rotation announcement.
 * Every message is signed with Ed25519 over a context string, the MQTT topic
 * it is published on and its bytes, so the broker can neither forge one nor
 * move it to another topic. Pure functions on caller buffers.
 */
#ifndef E2E_CONTROL_H
#define E2E_CONTROL_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "envelope.h"
#include "identity.h"
#include "scopes.h"

#define E2E_CTL_VERSION      0x01U
#define E2E_CTL_REQUEST      0x01U
#define E2E_CTL_DELIVERY     0x02U
#define E2E_CTL_REFUSAL      0x03U
#define E2E_CTL_ANNOUNCE     0x04U
#define E2E_CTL_SUMMARY      0x05U

#define E2E_CTL_HEAD_BYTES   14U   /* version, type, sender u32, time u64 */
#define E2E_CTL_SIG_BYTES    64U
#define E2E_CTL_NONCE_BYTES  16U
#define E2E_CTL_HASH_BYTES   32U
#define E2E_CTL_WANT_MAX     16U   /* scopes per request */
#define E2E_CTL_KEYS_MAX     32U   /* keys per delivery */
#define E2E_CTL_REPLY_MAX    128U  /* reply topic length */
#define E2E_CTL_MSG_MAX      2048U /* no control message but a summary or delivery is larger */
#define E2E_CTL_SUMMARY_MAX  65535U
#define E2E_SUMMARY_DIGEST_BYTES 8U  /* d_s = BLAKE2b-64(envelope), SPEC 11.6 */
#define E2E_SUMMARY_HEAD_BYTES 16U   /* interval, boot, number, part, parts, n */
#define E2E_SUMMARY_ENTRY_FIXED 14U  /* run, topic length, first, last */
/* Summary history (SPEC 11.6): part 0 also repeats the stream ranges of at
 * most E2E_SUMMARY_HIST_MAX earlier summaries, in at most
 * E2E_SUMMARY_HIST_BYTES (from its count byte on). */
#define E2E_SUMMARY_HIST_MAX 6U
#define E2E_SUMMARY_HIST_BYTES 4096U
#define E2E_SUMMARY_HIST_FIXED 6U    /* number, m */
#define E2E_SUMMARY_RANGE_FIXED 14U  /* run, topic length, first, last */
/* Longest topic a summary lists: one entry with one digest fits in a part. */
#define E2E_SUMMARY_TOPIC_MAX 32767U
#define E2E_CTL_DELIVERY_MAX 65535U
#define E2E_CTL_CRED_MAX     4096U   /* a credential carried (E2E_CRED_MAX) */
/* Sealed plaintext of a delivery: head, req_hash, u16 m, box overhead and
 * signature leave this much of E2E_CTL_DELIVERY_MAX. */
#define E2E_CTL_PLAIN_MAX    (E2E_CTL_DELIVERY_MAX - E2E_CTL_HEAD_BYTES - E2E_CTL_HASH_BYTES - \
	2U - E2E_CTL_CRED_MAX - 2U - 48U - E2E_CTL_SIG_BYTES)
/* Bytes left for the encoded map (u16 r and the rules) next to 32 keys and
 * the summary interval: a sender whose map is larger cannot start. */
#define E2E_CTL_MAP_MAX      (E2E_CTL_PLAIN_MAX - 1U - E2E_CTL_KEYS_MAX * 46U - 4U - 16U)
#define E2E_CTL_TOPIC_DEFAULT "e2e/control"
#define E2E_CTL_REPLY_PREFIX  "e2e/k/"

enum e2e_refusal {
	E2E_REFUSE_NOT_ENROLLED = 1,
	E2E_REFUSE_SCOPE = 2,        /* none of the wanted scopes is allowed */
	E2E_REFUSE_RATE = 3,         /* rate-limited: retry later */
	E2E_REFUSE_REVOKED = 4,
	E2E_REFUSE_STALE = 5,        /* timestamp outside the accepted window */
};

struct e2e_ctl_want {
	uint8_t scope;
	uint32_t epoch;              /* 0 = the current epoch */
};

/* e2e_ctl_key.flags */
#define E2E_KEY_SIGNED 0x01U   /* envelopes under this key must be suite 0x02 */
/* A key ahead of a scheduled rotation (SPEC 11.5): not yet used by the
 * sender; its not_after_ms field carries the time it becomes current
 * (0 = when the current key reaches its message limit). */
#define E2E_KEY_NEXT 0x02U

struct e2e_ctl_key {
	uint8_t scope;
	uint32_t epoch;
	uint64_t not_after_ms;       /* 0 = current key, no deadline yet;
	                                E2E_KEY_NEXT: the time it becomes current */
	uint8_t flags;               /* E2E_KEY_SIGNED, E2E_KEY_NEXT; others must be 0 */
	uint8_t key[E2E_KEY_BYTES];
};

/* A decoded control message; which fields are set depends on type. */
struct e2e_ctl {
	uint8_t type;
	uint32_t sender;             /* REQUEST: target sender; others: issuer */
	uint64_t time_ms;
	/* REQUEST */
	struct e2e_public requester;
	uint8_t eph_pk[E2E_DH_BYTES];
	uint8_t nonce[E2E_CTL_NONCE_BYTES];
	char reply_topic[E2E_CTL_REPLY_MAX + 1];
	uint8_t nwant;
	struct e2e_ctl_want want[E2E_CTL_WANT_MAX];
	/* DELIVERY, REFUSAL: hash of the request answered */
	uint8_t request_hash[E2E_CTL_HASH_BYTES];
	/* DELIVERY (after e2e_ctl_open_delivery) */
	uint8_t nkeys;
	struct e2e_ctl_key keys[E2E_CTL_KEYS_MAX];
	uint32_t summary_interval_ms;  /* the sender's (0 = no summaries) */
	uint64_t refresh_from_ms;      /* ask again in [from, by] for keys ahead */
	uint64_t refresh_by_ms;        /* (both 0: nothing scheduled; SPEC 11.5) */
	uint16_t nrules;               /* its topic map, >= 1 rules in match order; */
	const uint8_t *rules;          /* encoded, in the caller's plain buffer: */
	size_t rules_len;              /* walk with e2e_ctl_rule_next */
	const uint8_t *cred;         /* REQUEST: the requester's credential, DELIVERY: */
	size_t cred_len;             /* the sender's (SPEC 13.4); into the message, 0 = none */
	const uint8_t *sealed;       /* DELIVERY: points into the message */
	size_t sealed_len;
	/* REFUSAL */
	uint8_t reason;
	/* ANNOUNCE */
	uint8_t scope;
	uint32_t epoch;
	/* SUMMARY: entries stay in the message; walk them with e2e_summary_entry_next */
	uint32_t interval_ms;
	uint32_t boot;               /* random non-zero per sender start */
	uint32_t number;
	uint8_t part, parts;
	uint16_t nentries;
	const uint8_t *entries;
	size_t entries_len;
	/* SUMMARY history (part 0 only; sumhist.h walks it) */
	uint8_t nhist;
	const uint8_t *hist;
	size_t hist_len;
};

/* One stream of a SUMMARY (topic points into the message, not NUL-terminated). */
struct e2e_summary_entry {
	uint32_t run;
	const char *topic;
	size_t topic_len;
	uint32_t first, last;
	const uint8_t *digests;      /* (last - first + 1) x d_s, into the message */
};

/** Iterator over the entries of a parsed SUMMARY. */
struct e2e_summary_iter {
	const uint8_t *p;
	size_t len, off;
	uint16_t left;
};

E2E_API void e2e_summary_iter_init(struct e2e_summary_iter *it, const struct e2e_ctl *m);

/** Next entry: 1 and @p e filled, or 0 at the end (entries were validated by parse). */
E2E_API int e2e_summary_entry_next(struct e2e_summary_iter *it, struct e2e_summary_entry *e);

/** A sender's profile as carried in a delivery (SPEC 11.2). */
struct e2e_ctl_map {
	uint32_t summary_interval_ms;
	uint32_t nrules;                        /* 1..65535, match order */
	const struct e2e_scope_rule *rules;
	/* When a subscriber should ask again to get the next key ahead of its
	 * rotation (SPEC 11.5); 0, 0 = nothing scheduled. */
	uint64_t refresh_from_ms, refresh_by_ms;
};

/** Iterator over the map rules of an opened DELIVERY. */
struct e2e_ctl_rule_iter {
	const uint8_t *p;
	size_t len, off;
	uint32_t left;
};

E2E_API void e2e_ctl_rules_init(struct e2e_ctl_rule_iter *it, const struct e2e_ctl *m);

/** Next rule: 1 and @p r filled (filter points into the plain buffer), or 0 at the end. */
E2E_API int e2e_ctl_rule_next(struct e2e_ctl_rule_iter *it, struct e2e_scope_rule *r);

/** Encoded size of @p map in a delivery (u16 r and the rules), 0 if it cannot be encoded. */
E2E_API size_t e2e_ctl_map_size(const struct e2e_ctl_map *map);

/** Zero a decoded message (it may hold payload keys). */
E2E_API void e2e_ctl_wipe(struct e2e_ctl *m);

/**
 * Build a signed key request into @p out. @p eph_sk receives the ephemeral
 * X25519 secret (keep it until the delivery, then wipe it); @p req is filled
 * with what was sent. @p reply_topic: where the answer must go (see
 * e2e_ctl_reply_topic), or NULL for a fresh random one.
 */
E2E_API enum e2e_status e2e_ctl_request(uint8_t *out, size_t cap, size_t *len,
	struct e2e_ctl *req, uint8_t eph_sk[E2E_DH_BYTES],
	const struct e2e_identity *subscriber, uint32_t target_sender,
	const struct e2e_ctl_want *want, uint8_t nwant, const char *reply_topic,
	const char *control_topic, uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * e2e_ctl_request carrying the subscriber's credential @p cred (SPEC 13.4;
 * NULL, 0: none, which is what e2e_ctl_request sends). E2E_ERR_ARG if
 * @p cred does not parse as a credential.
 */
E2E_API enum e2e_status e2e_ctl_request_cred(uint8_t *out, size_t cap, size_t *len,
	struct e2e_ctl *req, uint8_t eph_sk[E2E_DH_BYTES],
	const struct e2e_identity *subscriber, uint32_t target_sender,
	const struct e2e_ctl_want *want, uint8_t nwant, const char *reply_topic,
	const char *control_topic, const uint8_t *cred, size_t cred_len,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** A fresh private reply topic: "e2e/k/" + 32 random hex digits (128 bits). */
E2E_API void e2e_ctl_reply_topic(char out[E2E_CTL_REPLY_MAX + 1]);

/** BLAKE2b-256 of a request message exactly as received (binds the answer). */
E2E_API void e2e_ctl_hash(uint8_t out[E2E_CTL_HASH_BYTES], const uint8_t *msg, size_t len);

/**
 * Size, version, type and layout of a control message, without the
 * signature: the cheap part of e2e_ctl_parse, for deciding what a message
 * may cost before verifying it (a key service's rate buckets, SPEC 11.3).
 * Nothing @p m holds is authentic yet.
 */
E2E_API enum e2e_status e2e_ctl_peek(struct e2e_ctl *m, const uint8_t *msg,
	size_t len) E2E_WARN_UNUSED;

/**
 * Parse a control message received on @p topic and check its signature with
 * @p signer (NULL for REQUEST: the requester's key inside is used). Cheap
 * structural checks run before the signature. E2E_ERR_MALFORMED,
 * E2E_ERR_VERSION or E2E_ERR_AUTH on failure.
 */
E2E_API enum e2e_status e2e_ctl_parse(struct e2e_ctl *m, const uint8_t *msg, size_t len,
	const char *topic, const struct e2e_public *signer) E2E_WARN_UNUSED;

/**
 * Build a signed delivery of @p keys and the sender's profile @p map (its
 * complete topic map and summary interval), sealed to the request's
 * ephemeral key. Up to E2E_CTL_DELIVERY_MAX bytes: size @p out for that.
 * @return E2E_ERR_ARG also for a map of no rule, an invalid filter or one
 *         longer than 65535; E2E_ERR_BUFFER if it does not fit.
 */
E2E_API enum e2e_status e2e_ctl_delivery(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const struct e2e_ctl *req,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES],
	const struct e2e_ctl_key *keys, uint8_t nkeys, const struct e2e_ctl_map *map,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** e2e_ctl_delivery carrying the sender's credential (SPEC 13.4; NULL, 0: none). */
E2E_API enum e2e_status e2e_ctl_delivery_cred(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const struct e2e_ctl *req,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES],
	const struct e2e_ctl_key *keys, uint8_t nkeys, const struct e2e_ctl_map *map,
	const uint8_t *cred, size_t cred_len, uint64_t now_ms) E2E_WARN_UNUSED;

/**
 * Decrypt a parsed delivery with the request's ephemeral key pair into
 * @p plain (at least m->sealed_len - 48 bytes; E2E_CTL_PLAIN_MAX always
 * suffices) and decode it: keys into m->keys, the map and interval into
 * m->rules (pointing into @p plain) and m->summary_interval_ms. Every rule's
 * filter is checked to be a valid MQTT filter. @p plain holds the payload
 * keys: zero it when done.
 * @return E2E_ERR_AUTH (not sealed to us), E2E_ERR_MALFORMED (layout,
 *         flags, no rule, bad filter), E2E_ERR_BUFFER, E2E_ERR_ARG.
 */
E2E_API enum e2e_status e2e_ctl_open_delivery(struct e2e_ctl *m,
	const uint8_t eph_pk[E2E_DH_BYTES], const uint8_t eph_sk[E2E_DH_BYTES],
	uint8_t *plain, size_t plain_cap) E2E_WARN_UNUSED;

E2E_API enum e2e_status e2e_ctl_refusal(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const struct e2e_ctl *req,
	const uint8_t req_hash[E2E_CTL_HASH_BYTES], enum e2e_refusal reason,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** Rotation announcement, published on "<control topic>/<sender id hex>". */
E2E_API enum e2e_status e2e_ctl_announce(uint8_t *out, size_t cap, size_t *len,
	const struct e2e_identity *sender, const char *topic, uint8_t scope, uint32_t epoch,
	uint64_t now_ms) E2E_WARN_UNUSED;

/** "<control>/<8 hex digits>" — where a sender publishes announcements. */
E2E_API enum e2e_status e2e_ctl_sender_topic(char *out, size_t cap, const char *control_topic,
	uint32_t sender) E2E_WARN_UNUSED;

/**
 * Sign a control message of *@p len bytes in @p out (head and body already
 * written) for publication on @p topic: appends the signature.
 */
E2E_API enum e2e_status e2e_ctl_sign(uint8_t *out, size_t cap, size_t *len, const char *topic,
	const struct e2e_identity *id) E2E_WARN_UNUSED;

/** Name of a refusal reason ("not enrolled", ...). */
E2E_API const char *e2e_refusal_name(uint8_t reason);

#ifdef __cplusplus
}
#endif

#endif
