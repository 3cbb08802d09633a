/*
 * Internal to the MQTT codec (mqtt_codec.c, mqtt_props.c): MQTT's field
 * types on libe2e's bounds-checked cursors (libe2e/base/wire.h, the tree's only
 * ones), and the property helpers the codec uses. Not part of the
 * normative API in mqtt_codec.h.
 *
 * The reader is sticky: the first short read sets @bad and every later read
 * yields zeros, so a parser can read a run of fields and test once. Inside a
 * packet whose length is known, running short is always MQTT_MALFORMED.
 *
 * The writer counts: bytes beyond @cap are not stored but still counted in
 * @off, so one serialiser serves as both the size query and the real write.
 */
#ifndef E2E_MQTT_WIRE_H
#define E2E_MQTT_WIRE_H

#include <string.h>

#include "mqtt_base.h"
#include "base/wire.h"

/* A span of @n bytes at the cursor; empty and bad if fewer remain. */
static inline struct mqtt_span mqtt_rd_span(struct e2e_rd *r, size_t n)
{
	struct mqtt_span s = { NULL, 0 };

	s.p = e2e_rd_skip(r, n);
	if (s.p)
		s.len = n;
	return s;
}

/* Two-byte length prefix, then that many bytes (MQTT "Binary Data"). */
static inline struct mqtt_span mqtt_rd_bin(struct e2e_rd *r)
{
	uint16_t n = e2e_rd_u16(r);

	return mqtt_rd_span(r, n);
}

/*
 * Variable Byte Integer: at most 4 bytes and minimal (MQTT-1.5.5-1), so a
 * last byte of 0x00 after a continuation is refused: it would let one value
 * have several encodings, and a filter comparing bytes could be bypassed.
 */
static inline uint32_t mqtt_rd_varint(struct e2e_rd *r)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < 4; i++) {
		uint8_t b = e2e_rd_u8(r);

		if (r->bad)
			return 0;
		v |= (uint32_t)(b & 0x7F) << (7 * i);
		if (!(b & 0x80)) {
			if (i > 0 && b == 0)
				break;
			return v;
		}
	}
	r->bad = 1;
	return 0;
}

/* Callers check @v <= MQTT_MAX_REMAINING first; a larger one writes nothing. */
static inline void mqtt_wr_varint(struct e2e_wr *w, uint32_t v)
{
	uint8_t b[4];

	e2e_wr_bytes(w, b, mqtt_varint_write(b, v));
}

/* Length-prefixed field; callers check @s.len <= 0xFFFF first. */
static inline void mqtt_wr_bin(struct e2e_wr *w, struct mqtt_span s)
{
	e2e_wr_u16(w, (uint16_t)s.len);
	e2e_wr_bytes(w, s.p, s.len);
}

/* Topic Name (MQTT-4.7.3): UTF-8, and never the filter wildcards + or #. */
static inline int mqtt_topic_name_ok(struct mqtt_span t)
{
	return t.len <= 0xFFFF && mqtt_utf8_valid(t.p, t.len) &&
		!(t.len && (memchr(t.p, '+', t.len) || memchr(t.p, '#', t.len)));
}

/* ---- property helpers (mqtt_props.c) ---- */

#define MQTT_PROP_PFI          0x01
#define MQTT_PROP_RESPONSE_TOPIC 0x08
#define MQTT_PROP_SUB_ID       0x0B
#define MQTT_PROP_TOPIC_ALIAS  0x23
#define MQTT_PROP_USER         0x26
#define MQTT_PROP_BIT(id)      ((uint64_t)1 << (id))

/* One decoded property. */
struct mqtt_prop {
	uint8_t id;
	uint32_t num;              /* Byte, Two/Four Byte Integer, Variable Byte Integer */
	struct mqtt_span s1, s2;   /* String or Binary in s1; a String Pair in s1, s2 */
	struct mqtt_span raw;      /* the whole property, id included */
};

/*
 * Decode the property at @r (identifier and value, no semantic check beyond
 * the value's own framing). MQTT_MALFORMED on an unknown identifier or a
 * value running past the block.
 */
enum mqtt_status mqtt_prop_next(struct e2e_rd *r, struct mqtt_prop *pr);

/*
 * Copy the properties of the (validated) block @props to @w, leaving out
 * every identifier whose MQTT_PROP_BIT is in @drop; order is kept, so User
 * Properties keep their order (MQTT-3.3.2-18).
 */
enum mqtt_status mqtt_props_copy(struct e2e_wr *w, struct mqtt_span props, uint64_t drop);

/* Size of what mqtt_props_copy would write. */
enum mqtt_status mqtt_props_copy_len(struct mqtt_span props, uint64_t drop, size_t *len);

/* The first property @id of @props in @pr; *found is 0 if absent. */
enum mqtt_status mqtt_props_find(struct mqtt_span props, uint8_t id, struct mqtt_prop *pr,
	int *found);

/* Read a property block (varint length, then the block) and validate it for @type. */
enum mqtt_status mqtt_rd_props(struct e2e_rd *r, int type, struct mqtt_span *props);

#endif
