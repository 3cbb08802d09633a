/*
 * Key scopes: which topics are sealed under which scope's key chain.
 * The sender's `scopes` file has one line per scope:
 *
 *   scope <id 0..255> <name [a-z0-9_-]{1,32}> <topic-filter> [<topic-filter> ...]
 *
 * A topic belongs to the FIRST scope, in file order, with a matching filter.
 * Scope 0 "default" with filter '#' is implied (after all other scopes)
 * when the file is absent or has no scope 0 line; an explicit scope 0 line
 * replaces it, and then a topic that matches nothing has no scope at all
 * (e2e_scopes_lookup says E2E_ERR_NOT_FOUND and the sender must not publish
 * it). '#' does not match '$'-topics, so neither does the implied default.
 */
#ifndef E2E_SCOPES_H
#define E2E_SCOPES_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"

#define E2E_SCOPES_MAX        256U
#define E2E_SCOPE_FILTERS_MAX 16U
#define E2E_SCOPE_NAME_MAX    32U
#define E2E_FILTER_MAX        1024U    /* bytes of one topic filter */
#define E2E_TOPIC_MAX         65535U   /* MQTT's limit for a topic name */
#define E2E_SCOPES_POOL       65536U   /* bytes for all filters together */

struct e2e_scope {
	uint8_t id;
	uint8_t nfilters;
	uint32_t line;                                  /* 0: implied default */
	uint8_t sign;                                   /* "sign <name>": suite 0x02 */
	char name[E2E_SCOPE_NAME_MAX + 1];
	uint16_t filter_off[E2E_SCOPE_FILTERS_MAX];     /* into e2e_scopes.pool */
	uint16_t filter_len[E2E_SCOPE_FILTERS_MAX];
};

/*
 * A scope table, owned by the caller (about 90 KiB: keep it static or on
 * the heap rather than on a small stack). Nothing in it needs freeing.
 */
struct e2e_scopes {
	uint32_t count;                         /* scopes in scope[], file order */
	uint8_t implied_default;                /* scope 0 was added implicitly */
	struct e2e_scope scope[E2E_SCOPES_MAX];
	uint32_t pool_used;
	char pool[E2E_SCOPES_POOL];             /* NUL-terminated filters */
};

/**
 * One rule of a sender's topic map (SPEC 11.2, DELIVERY): topics matching
 * @p filter belong to @p scope. A map is a list of rules in match order:
 * the first rule whose filter matches a topic gives its scope.
 */
struct e2e_scope_rule {
	uint8_t scope;
	const char *filter;     /* MQTT topic filter; need not be NUL-terminated */
	size_t filter_len;      /* 1..E2E_TOPIC_MAX */
};

/** Reset @p s to the implied table: scope 0 "default" matching '#'. */
E2E_API void e2e_scopes_init(struct e2e_scopes *s);

/**
 * Parse the text of a scopes file.
 * @param origin file name used in messages
 * @param err    receives "<origin>:<line>: <reason>" on failure (may be NULL)
 * @return E2E_OK; E2E_ERR_MALFORMED (bad line), E2E_ERR_EXISTS (duplicate id
 *         or name), E2E_ERR_FULL (filters exceed the pool), E2E_ERR_ARG.
 *         On failure the table is left empty, so every lookup fails closed.
 */
E2E_API enum e2e_status e2e_scopes_parse(struct e2e_scopes *s, const char *buf, size_t len,
	const char *origin, char *err, size_t err_cap) E2E_WARN_UNUSED;

/**
 * Read and parse @p path. A missing file is not an error: @p s becomes the
 * implied default table. Other read errors leave the table empty.
 */
E2E_API enum e2e_status e2e_scopes_load(struct e2e_scopes *s, const char *path,
	char *err, size_t err_cap) E2E_WARN_UNUSED;

/**
 * The scope of a topic name (first match in file order).
 * @return E2E_OK; E2E_ERR_NOT_FOUND if no scope matches; E2E_ERR_ARG for an
 *         invalid topic name (empty, too long, wildcard or NUL in it).
 */
E2E_API enum e2e_status e2e_scopes_lookup(const struct e2e_scopes *s, const char *topic,
	size_t topic_len, uint8_t *scope_id) E2E_WARN_UNUSED;

/**
 * The table as a map in match order (the order e2e_scopes_lookup tries):
 * scope by scope in file order, each scope's filters in line order, the
 * implied default last. @p out receives at most @p cap rules (filters
 * point into @p s); *@p n is the full count, so E2E_ERR_BUFFER tells the
 * size needed (at most E2E_SCOPES_MAX * E2E_SCOPE_FILTERS_MAX).
 */
E2E_API enum e2e_status e2e_scopes_rules(const struct e2e_scopes *s,
	struct e2e_scope_rule *out, uint32_t cap, uint32_t *n) E2E_WARN_UNUSED;

/**
 * The scope of @p topic under a map: the first rule whose filter matches.
 * Filters must have been validated (e2e_topic_filter_valid).
 * @return 1 and *@p scope set; 0 if no rule matches or @p topic is not a
 *         valid topic name.
 */
E2E_API int e2e_scope_rules_match(const struct e2e_scope_rule *rules, uint32_t n,
	const char *topic, size_t topic_len, uint8_t *scope);

/** Scope id of a name; E2E_ERR_NOT_FOUND if no scope has it. */
E2E_API enum e2e_status e2e_scopes_id(const struct e2e_scopes *s, const char *name,
	size_t name_len, uint8_t *scope_id) E2E_WARN_UNUSED;

/** The scope with id @p id, or NULL. */
E2E_API const struct e2e_scope *e2e_scopes_get(const struct e2e_scopes *s, uint8_t id);

/** Filter @p i of @p sc as a NUL-terminated string (NULL if out of range). */
E2E_API const char *e2e_scope_filter(const struct e2e_scopes *s, const struct e2e_scope *sc,
	uint32_t i);

/**
 * MQTT topic matching: '+' matches exactly one level (possibly empty), '#'
 * as the last level matches the parent and any number of levels below, and
 * a topic starting with '$' never matches a filter starting with a wildcard.
 * @return 1 on match; 0 on no match or if either argument is invalid.
 */
E2E_API int e2e_topic_matches(const char *filter, size_t filter_len, const char *topic,
	size_t topic_len);

/** 1 if @p filter is a valid filter: wildcards only as whole levels, '#' last. */
E2E_API int e2e_topic_filter_valid(const char *filter, size_t len);

/** 1 if @p topic is a valid topic name: non-empty, no wildcard, no NUL. */
E2E_API int e2e_topic_name_valid(const char *topic, size_t len);

/** 1 if @p name matches [a-z0-9_-]{1,32}. */
E2E_API int e2e_scope_name_valid(const char *name, size_t len);

#ifdef __cplusplus
}
#endif

#endif
