/*
 * Scope table and MQTT topic matching; see e2e/scopes.h. The table is a
 * flat caller-owned struct so the sender can parse a fresh copy on reload
 * and swap it in without allocating.
 */
#include <string.h>

#include "e2e/scopes.h"
#include "state/fileio.h"
#include "state/textfile.h"

#define SCOPE_PUNCT "_-"

int e2e_scope_name_valid(const char *name, size_t len)
{
	return e2e_name_ok(name, len, E2E_SCOPE_NAME_MAX, 0, SCOPE_PUNCT);
}

int e2e_topic_name_valid(const char *topic, size_t len)
{
	if (!topic || len == 0 || len > E2E_TOPIC_MAX)
		return 0;
	/* MQTT forbids U+0000 in topics; wildcards are for filters only. */
	for (size_t i = 0; i < len; i++)
		if (topic[i] == '+' || topic[i] == '#' || topic[i] == '\0')
			return 0;
	return 1;
}

int e2e_topic_filter_valid(const char *filter, size_t len)
{
	if (!filter || len == 0 || len > E2E_TOPIC_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int starts = i == 0 || filter[i - 1] == '/';
		int ends = i + 1 == len || filter[i + 1] == '/';

		switch (filter[i]) {
		case '\0':
			return 0;
		case '+':
			if (!starts || !ends)
				return 0;
			break;
		case '#':
			/* '#' is the whole last level: "a/#" or "#", never "a#" or "#/a". */
			if (!starts || i + 1 != len)
				return 0;
			break;
		default:
			break;
		}
	}
	return 1;
}

/* End of the level starting at @p i: the index of the next '/' or @p len. */
static size_t level_end(const char *s, size_t len, size_t i)
{
	const char *slash = memchr(s + i, '/', len - i);

	return slash ? (size_t)(slash - s) : len;
}

/* Matching of a valid filter against a valid topic name. */
static int match(const char *filter, size_t filter_len, const char *topic, size_t topic_len)
{
	size_t fi = 0, ti = 0;

	/* MQTT 3.1.1 sec. 4.7.2: '$SYS/...' is not matched by '#' or '+/...'. */
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return 0;
	/* Indexes past the end (len + 1) mean "no level left". */
	for (;;) {
		size_t fe = level_end(filter, filter_len, fi), te;

		if (fe - fi == 1 && filter[fi] == '#')
			return 1;
		te = level_end(topic, topic_len, ti);
		if (!(fe - fi == 1 && filter[fi] == '+') &&
		    (fe - fi != te - ti || memcmp(filter + fi, topic + ti, fe - fi) != 0))
			return 0;
		fi = fe + 1;
		ti = te + 1;
		if (fi > filter_len)
			return ti > topic_len;
		if (ti > topic_len)
			/* "a/#" also matches "a": only a final '#' level may remain. */
			return filter_len - fi == 1 && filter[fi] == '#';
	}
}

int e2e_topic_matches(const char *filter, size_t filter_len, const char *topic,
	size_t topic_len)
{
	return e2e_topic_filter_valid(filter, filter_len) &&
	       e2e_topic_name_valid(topic, topic_len) &&
	       match(filter, filter_len, topic, topic_len);
}

static void add_default(struct e2e_scopes *s)
{
	struct e2e_scope *sc = &s->scope[s->count++];

	memset(sc, 0, sizeof *sc);
	memcpy(sc->name, "default", sizeof "default");
	sc->nfilters = 1;
	sc->filter_off[0] = (uint16_t)s->pool_used;
	sc->filter_len[0] = 1;
	memcpy(s->pool + s->pool_used, "#", 2);
	s->pool_used += 2;
	s->implied_default = 1;
}

void e2e_scopes_init(struct e2e_scopes *s)
{
	if (!s)
		return;
	s->count = 0;
	s->pool_used = 0;
	s->implied_default = 0;
	add_default(s);
}

/* Parse the filters of one scope line into @p sc. */
static enum e2e_status parse_filters(struct e2e_scopes *s, struct e2e_text *t,
	struct e2e_scope *sc, const struct e2e_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].len > E2E_FILTER_MAX || !e2e_topic_filter_valid(f[i].p, f[i].len))
			return e2e_text_fail(t, E2E_ERR_MALFORMED, "invalid topic filter '%.*s'",
				(int)(f[i].len > 64 ? 64 : f[i].len), f[i].p);
		if (f[i].len + 1 > E2E_SCOPES_POOL - s->pool_used)
			return e2e_text_fail(t, E2E_ERR_FULL, "topic filters exceed %u bytes",
				E2E_SCOPES_POOL);
		sc->filter_off[i] = (uint16_t)s->pool_used;
		sc->filter_len[i] = (uint16_t)f[i].len;
		memcpy(s->pool + s->pool_used, f[i].p, f[i].len);
		s->pool[s->pool_used + f[i].len] = '\0';
		s->pool_used += (uint32_t)f[i].len + 1;
	}
	sc->nfilters = (uint8_t)n;
	return E2E_OK;
}

/* "sign <name>": envelopes of that scope carry the sender's signature
 * (SPEC 3.4), for low-rate topics that need source authentication at once. */
static enum e2e_status parse_sign(struct e2e_scopes *s, struct e2e_text *t,
	const struct e2e_field *f, size_t n)
{
	if (n != 2)
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "expected: sign <scope-name>");
	for (uint32_t i = 0; i < s->count; i++) {
		if (e2e_field_is(&f[1], s->scope[i].name)) {
			s->scope[i].sign = 1;
			return E2E_OK;
		}
	}
	return e2e_text_fail(t, E2E_ERR_MALFORMED, "sign: no scope '%.*s' above this line",
		(int)(f[1].len > 32 ? 32 : f[1].len), f[1].p);
}

static enum e2e_status parse_line(struct e2e_scopes *s, struct e2e_text *t,
	const struct e2e_field *f, size_t n)
{
	struct e2e_scope *sc = &s->scope[s->count];
	uint64_t id;

	if (!e2e_field_is(&f[0], "scope"))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "expected 'scope', got '%.*s'",
			(int)(f[0].len > 32 ? 32 : f[0].len), f[0].p);
	if (n < 4)
		return e2e_text_fail(t, E2E_ERR_MALFORMED,
			"expected: scope <id> <name> <topic-filter>...");
	if (n - 3 > E2E_SCOPE_FILTERS_MAX)
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "more than %u topic filters",
			E2E_SCOPE_FILTERS_MAX);
	if (!e2e_field_uint(&f[1], 255, &id))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "scope id must be 0..255");
	if (!e2e_scope_name_valid(f[2].p, f[2].len))
		return e2e_text_fail(t, E2E_ERR_MALFORMED, "scope name must match [a-z0-9_-]{1,32}");
	for (uint32_t i = 0; i < s->count; i++) {
		if (s->scope[i].id == id)
			return e2e_text_fail(t, E2E_ERR_EXISTS, "scope id %u already on line %u",
				(unsigned)id, (unsigned)s->scope[i].line);
		if (e2e_field_is(&f[2], s->scope[i].name))
			return e2e_text_fail(t, E2E_ERR_EXISTS, "scope name '%s' already on line %u",
				s->scope[i].name, (unsigned)s->scope[i].line);
	}
	memset(sc, 0, sizeof *sc);
	sc->id = (uint8_t)id;
	sc->line = t->line;
	(void)e2e_field_copy(&f[2], sc->name, sizeof sc->name);
	return parse_filters(s, t, sc, f + 3, n - 3);
}

enum e2e_status e2e_scopes_parse(struct e2e_scopes *s, const char *buf, size_t len,
	const char *origin, char *err, size_t err_cap)
{
	struct e2e_text t;
	struct e2e_field f[E2E_TEXT_FIELDS_MAX];
	enum e2e_status ret = E2E_ERR_ARG;
	size_t n;
	int have_zero = 0;

	if (!s || (!buf && len))
		goto out;
	s->count = 0;
	s->pool_used = 0;
	s->implied_default = 0;
	e2e_text_init(&t, buf, len, origin, err, err_cap);
	for (;;) {
		ret = e2e_text_next(&t, f, E2E_TEXT_FIELDS_MAX, &n);
		if (ret != E2E_OK || n == 0)
			break;
		if (e2e_field_is(&f[0], "sign")) {
			ret = parse_sign(s, &t, f, n);
			if (ret != E2E_OK)
				break;
			continue;
		}
		/* Ids are unique in 0..255, so scope[] cannot overflow first. */
		ret = parse_line(s, &t, f, n);
		if (ret != E2E_OK)
			break;
		have_zero |= s->scope[s->count].id == 0;
		s->count++;
	}
	if (ret != E2E_OK)
		goto out;
	if (!have_zero) {
		for (uint32_t i = 0; i < s->count; i++) {
			if (strcmp(s->scope[i].name, "default") == 0) {
				t.line = s->scope[i].line;
				ret = e2e_text_fail(&t, E2E_ERR_EXISTS,
					"name 'default' belongs to the implied scope 0");
				goto out;
			}
		}
		if (s->pool_used + 2 > E2E_SCOPES_POOL) {
			ret = e2e_text_fail(&t, E2E_ERR_FULL, "no room for the default scope");
			goto out;
		}
		add_default(s);
	}
out:
	if (ret != E2E_OK && s)
		s->count = 0;
	return ret;
}

enum e2e_status e2e_scopes_load(struct e2e_scopes *s, const char *path, char *err,
	size_t err_cap)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!s || !path)
		goto out;
	s->count = 0;
	/* A missing file parses as an empty one: the implied default table. */
	ret = e2e_text_read(path, 0, &buf, &len, err, err_cap);
	if (ret != E2E_OK)
		goto out;
	ret = e2e_scopes_parse(s, (const char *)buf, len, path, err, err_cap);
out:
	e2e_file_free(buf, len);
	return ret;
}

enum e2e_status e2e_scopes_lookup(const struct e2e_scopes *s, const char *topic,
	size_t topic_len, uint8_t *scope_id)
{
	if (!s || !scope_id || !e2e_topic_name_valid(topic, topic_len))
		return E2E_ERR_ARG;
	/* Filters were validated at parse time: this runs per message. */
	for (uint32_t i = 0; i < s->count; i++) {
		const struct e2e_scope *sc = &s->scope[i];

		for (uint32_t k = 0; k < sc->nfilters; k++) {
			if (match(s->pool + sc->filter_off[k], sc->filter_len[k],
					topic, topic_len)) {
				*scope_id = sc->id;
				return E2E_OK;
			}
		}
	}
	return E2E_ERR_NOT_FOUND;
}

enum e2e_status e2e_scopes_rules(const struct e2e_scopes *s, struct e2e_scope_rule *out,
	uint32_t cap, uint32_t *n)
{
	uint32_t k = 0;

	if (!s || !n || (!out && cap))
		return E2E_ERR_ARG;
	/* The same order as e2e_scopes_lookup: receivers resolve exactly like us. */
	for (uint32_t i = 0; i < s->count; i++) {
		const struct e2e_scope *sc = &s->scope[i];

		for (uint32_t f = 0; f < sc->nfilters; f++, k++) {
			if (k >= cap)
				continue;
			out[k].scope = sc->id;
			out[k].filter = s->pool + sc->filter_off[f];
			out[k].filter_len = sc->filter_len[f];
		}
	}
	*n = k;
	return k > cap ? E2E_ERR_BUFFER : E2E_OK;
}

int e2e_scope_rules_match(const struct e2e_scope_rule *rules, uint32_t n, const char *topic,
	size_t topic_len, uint8_t *scope)
{
	if (!rules || !scope || !e2e_topic_name_valid(topic, topic_len))
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		if (match(rules[i].filter, rules[i].filter_len, topic, topic_len)) {
			*scope = rules[i].scope;
			return 1;
		}
	}
	return 0;
}

enum e2e_status e2e_scopes_id(const struct e2e_scopes *s, const char *name, size_t name_len,
	uint8_t *scope_id)
{
	if (!s || !name || !scope_id)
		return E2E_ERR_ARG;
	for (uint32_t i = 0; i < s->count; i++) {
		if (strlen(s->scope[i].name) == name_len &&
		    memcmp(s->scope[i].name, name, name_len) == 0) {
			*scope_id = s->scope[i].id;
			return E2E_OK;
		}
	}
	return E2E_ERR_NOT_FOUND;
}

const struct e2e_scope *e2e_scopes_get(const struct e2e_scopes *s, uint8_t id)
{
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < s->count; i++)
		if (s->scope[i].id == id)
			return &s->scope[i];
	return NULL;
}

const char *e2e_scope_filter(const struct e2e_scopes *s, const struct e2e_scope *sc, uint32_t i)
{
	if (!s || !sc || i >= sc->nfilters)
		return NULL;
	return s->pool + sc->filter_off[i];
}
