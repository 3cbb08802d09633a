/*
 * MQTT 5 properties (MQTT 5.0 section 2.2.2): the identifier table, the
 * validator, and the copy-with-filter the codec uses to drop Topic Alias and
 * Payload Format Indicator when it re-serialises a PUBLISH or a will.
 */
#include "mqtt_props.h"
#include "mqtt_wire.h"

enum ptype { P_NONE, P_BYTE, P_U16, P_U32, P_VARINT, P_STR, P_BIN, P_PAIR };

/* Bit n = packet type n may carry the property; bit 0 = Will Properties. */
#define W   (1U << 0)
#define B(t) (1U << (t))
#define ACKS (B(MQTT_PUBACK) | B(MQTT_PUBREC) | B(MQTT_PUBREL) | B(MQTT_PUBCOMP))

struct prop_info {
	uint8_t type;
	uint16_t where;
};

/* MQTT 5.0 Table 2-4, and the "used in" column of section 3.x. */
static const struct prop_info props[0x2B] = {
	[0x01] = { P_BYTE,   B(MQTT_PUBLISH) | W },   /* Payload Format Indicator */
	[0x02] = { P_U32,    B(MQTT_PUBLISH) | W },   /* Message Expiry Interval */
	[0x03] = { P_STR,    B(MQTT_PUBLISH) | W },   /* Content Type */
	[0x08] = { P_STR,    B(MQTT_PUBLISH) | W },   /* Response Topic */
	[0x09] = { P_BIN,    B(MQTT_PUBLISH) | W },   /* Correlation Data */
	[0x0B] = { P_VARINT, B(MQTT_PUBLISH) | B(MQTT_SUBSCRIBE) }, /* Subscription Identifier */
	[0x11] = { P_U32,    B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_DISCONNECT) },
	[0x12] = { P_STR,    B(MQTT_CONNACK) },       /* Assigned Client Identifier */
	[0x13] = { P_U16,    B(MQTT_CONNACK) },       /* Server Keep Alive */
	[0x15] = { P_STR,    B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_AUTH) }, /* Auth Method */
	[0x16] = { P_BIN,    B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_AUTH) }, /* Auth Data */
	[0x17] = { P_BYTE,   B(MQTT_CONNECT) },       /* Request Problem Information */
	[0x18] = { P_U32,    W },                     /* Will Delay Interval */
	[0x19] = { P_BYTE,   B(MQTT_CONNECT) },       /* Request Response Information */
	[0x1A] = { P_STR,    B(MQTT_CONNACK) },       /* Response Information */
	[0x1C] = { P_STR,    B(MQTT_CONNACK) | B(MQTT_DISCONNECT) }, /* Server Reference */
	[0x1F] = { P_STR,    B(MQTT_CONNACK) | ACKS | B(MQTT_SUBACK) | B(MQTT_UNSUBACK) |
			     B(MQTT_DISCONNECT) | B(MQTT_AUTH) },  /* Reason String */
	[0x21] = { P_U16,    B(MQTT_CONNECT) | B(MQTT_CONNACK) }, /* Receive Maximum */
	[0x22] = { P_U16,    B(MQTT_CONNECT) | B(MQTT_CONNACK) }, /* Topic Alias Maximum */
	[0x23] = { P_U16,    B(MQTT_PUBLISH) },       /* Topic Alias */
	[0x24] = { P_BYTE,   B(MQTT_CONNACK) },       /* Maximum QoS */
	[0x25] = { P_BYTE,   B(MQTT_CONNACK) },       /* Retain Available */
	[0x26] = { P_PAIR,   0xFFFFU & ~(B(MQTT_PINGREQ) | B(MQTT_PINGRESP)) }, /* User Property */
	[0x27] = { P_U32,    B(MQTT_CONNECT) | B(MQTT_CONNACK) }, /* Maximum Packet Size */
	[0x28] = { P_BYTE,   B(MQTT_CONNACK) },       /* Wildcard Subscription Available */
	[0x29] = { P_BYTE,   B(MQTT_CONNACK) },       /* Subscription Identifiers Available */
	[0x2A] = { P_BYTE,   B(MQTT_CONNACK) },       /* Shared Subscription Available */
};

static uint8_t prop_type(uint8_t id)
{
	return id < sizeof props / sizeof props[0] ? props[id].type : P_NONE;
}

enum mqtt_status mqtt_prop_next(struct e2e_rd *r, struct mqtt_prop *pr)
{
	size_t start = r->off;

	memset(pr, 0, sizeof *pr);
	/*
	 * The identifier is formally a Variable Byte Integer, but every MQTT 5
	 * identifier fits one byte; a continuation bit is an unknown id.
	 */
	pr->id = e2e_rd_u8(r);
	switch (r->bad ? P_NONE : prop_type(pr->id)) {
	case P_BYTE:   pr->num = e2e_rd_u8(r); break;
	case P_U16:    pr->num = e2e_rd_u16(r); break;
	case P_U32:    pr->num = e2e_rd_u32(r); break;
	case P_VARINT: pr->num = mqtt_rd_varint(r); break;
	case P_STR:
	case P_BIN:    pr->s1 = mqtt_rd_bin(r); break;
	case P_PAIR:   pr->s1 = mqtt_rd_bin(r); pr->s2 = mqtt_rd_bin(r); break;
	default:       return MQTT_MALFORMED;
	}
	if (r->bad)
		return MQTT_MALFORMED;
	pr->raw.p = r->p + start;
	pr->raw.len = r->off - start;
	return MQTT_OK;
}

/* Value rules the spec calls a Protocol Error (MQTT 5.0 section 3.x.2.x). */
static int prop_value_ok(const struct mqtt_prop *pr)
{
	switch (pr->id) {
	case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
		return pr->num <= 1;               /* booleans */
	case 0x0B: case 0x21: case 0x23: case 0x27:
		return pr->num != 0;               /* sub id, receive max, alias, max packet */
	case MQTT_PROP_RESPONSE_TOPIC:
		return pr->s1.len > 0 && mqtt_topic_name_ok(pr->s1);
	default:
		break;
	}
	switch (prop_type(pr->id)) {
	case P_STR:  return mqtt_utf8_valid(pr->s1.p, pr->s1.len);
	case P_PAIR: return mqtt_utf8_valid(pr->s1.p, pr->s1.len) &&
			mqtt_utf8_valid(pr->s2.p, pr->s2.len);
	default:     return 1;
	}
}

enum mqtt_status mqtt_validate_props(const uint8_t *p, size_t len, int type)
{
	/* Only these two may repeat (MQTT 5.0 section 2.2.2.2). */
	const uint64_t repeatable = MQTT_PROP_BIT(MQTT_PROP_USER) | MQTT_PROP_BIT(MQTT_PROP_SUB_ID);
	uint64_t seen = 0;
	struct mqtt_prop pr;
	struct e2e_rd r;

	if ((!p && len) || type < 0 || type > MQTT_AUTH)
		return MQTT_MALFORMED;
	e2e_rd_init(&r, p, len);
	while (e2e_rd_left(&r)) {
		if (mqtt_prop_next(&r, &pr) != MQTT_OK)
			return MQTT_MALFORMED;
		if (!(props[pr.id].where & (1U << type)))
			return MQTT_MALFORMED;
		if (seen & MQTT_PROP_BIT(pr.id) & ~repeatable)
			return MQTT_MALFORMED;
		seen |= MQTT_PROP_BIT(pr.id);
		if (!prop_value_ok(&pr))
			return MQTT_MALFORMED;
	}
	return MQTT_OK;
}

enum mqtt_status mqtt_rd_props(struct e2e_rd *r, int type, struct mqtt_span *out)
{
	uint32_t n = mqtt_rd_varint(r);

	*out = mqtt_rd_span(r, n);
	if (r->bad)
		return MQTT_MALFORMED;
	return mqtt_validate_props(out->p, out->len, type);
}

enum mqtt_status mqtt_props_copy(struct e2e_wr *w, struct mqtt_span props_blk, uint64_t drop)
{
	struct mqtt_prop pr;
	struct e2e_rd r;

	e2e_rd_init(&r, props_blk.p, props_blk.len);
	while (e2e_rd_left(&r)) {
		if (mqtt_prop_next(&r, &pr) != MQTT_OK)
			return MQTT_MALFORMED;
		if (!(drop & MQTT_PROP_BIT(pr.id)))
			e2e_wr_bytes(w, pr.raw.p, pr.raw.len);
	}
	return MQTT_OK;
}

enum mqtt_status mqtt_props_copy_len(struct mqtt_span props_blk, uint64_t drop, size_t *len)
{
	struct e2e_wr w;
	enum mqtt_status st;

	e2e_wr_init(&w, NULL, 0);
	st = mqtt_props_copy(&w, props_blk, drop);
	*len = w.off;
	return st;
}

enum mqtt_status mqtt_props_find(struct mqtt_span props_blk, uint8_t id, struct mqtt_prop *pr,
	int *found)
{
	struct e2e_rd r;

	*found = 0;
	e2e_rd_init(&r, props_blk.p, props_blk.len);
	while (e2e_rd_left(&r)) {
		if (mqtt_prop_next(&r, pr) != MQTT_OK)
			return MQTT_MALFORMED;
		if (pr->id == id) {
			*found = 1;
			return MQTT_OK;
		}
	}
	return MQTT_OK;
}
