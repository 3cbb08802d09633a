/*
 * MQTT 3.1 / 3.1.1 / 5.0 framing and the packets e2e-proxy rewrites
 * (CONNECT for the will, PUBLISH) or must read (acks), plus the UTF-8 rule
 * of MQTT 1.5.4. Pure: bytes in, bytes out; see mqtt_codec.h.
 *
 * Everything arrives from an untrusted peer, so every length is checked
 * against what is left before use, and every field the spec constrains is
 * checked here rather than left to the broker: what we let through, the
 * broker sees as coming from us.
 */
#include "mqtt_codec.h"
#include "mqtt_wire.h"

const char *mqtt_strerror(enum mqtt_status st)
{
	switch (st) {
	case MQTT_OK:        return "success";
	case MQTT_NEED_MORE: return "incomplete packet";
	case MQTT_MALFORMED: return "malformed MQTT packet";
	case MQTT_TOO_BIG:   return "packet too big";
	case MQTT_BUFFER:    return "output buffer too small";
	case MQTT_UNSUPPORTED: return "unsupported MQTT protocol level";
	default:             return "unknown MQTT status";
	}
}

/* MQTT-2.1.3-1 (3.1.1) / 2.1.3 (5.0): the flag nibble is fixed except for PUBLISH. */
static int fixed_flags_ok(uint8_t b0)
{
	uint8_t flags = b0 & 0x0F;

	switch (b0 >> 4) {
	case 0:
		return 0;
	case MQTT_PUBLISH:
		return (flags & 0x06) != 0x06;     /* QoS 3 is malformed (MQTT-3.3.1-4) */
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return flags == 0x02;
	default:
		return flags == 0;
	}
}

enum mqtt_status mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet,
	size_t *pkt_len, size_t *hdr_len)
{
	uint32_t rl = 0;
	size_t i;

	if (!pkt_len || !hdr_len || (!buf && len))
		return MQTT_MALFORMED;
	*pkt_len = *hdr_len = 0;
	if (len < 1)
		return MQTT_NEED_MORE;
	if (!fixed_flags_ok(buf[0]))
		return MQTT_MALFORMED;
	/* Remaining Length: same rules as mqtt_rd_varint, but "short" means "wait". */
	for (i = 1; ; i++) {
		if (i > 4)
			return MQTT_MALFORMED;
		if (i >= len)
			return MQTT_NEED_MORE;
		rl |= (uint32_t)(buf[i] & 0x7F) << (7 * (i - 1));
		if (!(buf[i] & 0x80))
			break;
	}
	if (i > 1 && buf[i] == 0)
		return MQTT_MALFORMED;
	/* Decided before the body arrives, so an oversized packet is never buffered. */
	if (1 + i + rl > max_packet)
		return MQTT_TOO_BIG;
	*hdr_len = 1 + i;
	*pkt_len = 1 + i + rl;
	return len < *pkt_len ? MQTT_NEED_MORE : MQTT_OK;
}


/*
 * Check that @pkt is exactly one whole packet of @type and put a reader on
 * its body. A caller handing us a truncated or padded packet gets
 * MQTT_MALFORMED: it framed the bytes itself, so the packet lied about its size.
 */
static enum mqtt_status open_packet(const uint8_t *pkt, size_t len, int type,
	struct e2e_rd *r, uint8_t *b0)
{
	size_t plen, hlen;

	if (mqtt_frame(pkt, len, len, &plen, &hlen) != MQTT_OK || plen != len)
		return MQTT_MALFORMED;
	if (type && pkt[0] >> 4 != type)
		return MQTT_MALFORMED;
	*b0 = pkt[0];
	e2e_rd_init(r, pkt + hlen, len - hlen);
	return MQTT_OK;
}

/* A UTF-8 Encoded String (MQTT 1.5.4). */
static struct mqtt_span rd_str(struct e2e_rd *r)
{
	struct mqtt_span s = mqtt_rd_bin(r);

	if (!r->bad && !mqtt_utf8_valid(s.p, s.len))
		r->bad = 1;
	return s;
}

/* ---- CONNECT ---- */

#define CF_RESERVED  0x01
#define CF_CLEAN     0x02
#define CF_WILL      0x04
#define CF_WILL_QOS  0x18
#define CF_RETAIN    0x20
#define CF_PASSWORD  0x40
#define CF_USERNAME  0x80

static const uint8_t name_v31[6] = { 'M', 'Q', 'I', 's', 'd', 'p' };
static const uint8_t name_v311[4] = { 'M', 'Q', 'T', 'T' };

/*
 * The protocol name must match the level: "MQIsdp" is 3.1 only, "MQTT" is 4
 * or 5. MQTT_OK, MQTT_UNSUPPORTED for a known name with another level (the
 * peer speaks MQTT, just not a version we do), else MQTT_MALFORMED.
 */
static enum mqtt_status protocol_check(struct mqtt_span name, uint8_t level)
{
	if (name.len == sizeof name_v31 && !memcmp(name.p, name_v31, sizeof name_v31))
		return level == MQTT_V31 ? MQTT_OK : MQTT_UNSUPPORTED;
	if (name.len == sizeof name_v311 && !memcmp(name.p, name_v311, sizeof name_v311))
		return level == MQTT_V311 || level == MQTT_V5 ? MQTT_OK : MQTT_UNSUPPORTED;
	return MQTT_MALFORMED;
}

/*
 * Flag rules (3.1.1 section 3.1.2.3-3.1.2.9, 5.0 section 3.1.2.3-3.1.2.9).
 * Applied to 3.1 as well: no 3.1 client we know sets these bits otherwise,
 * and passing an ambiguous CONNECT on is how two parsers come to disagree.
 */
static int connect_flags_ok(uint8_t f, uint8_t version)
{
	if (f & CF_RESERVED)
		return 0;
	if ((f & CF_WILL_QOS) == CF_WILL_QOS)
		return 0;
	if (!(f & CF_WILL) && (f & (CF_WILL_QOS | CF_RETAIN)))
		return 0;
	/* 5.0 dropped MQTT-3.1.2-22, so a password alone is fine there. */
	return version == MQTT_V5 || !(f & CF_PASSWORD) || (f & CF_USERNAME);
}

enum mqtt_status mqtt_parse_connect(const uint8_t *pkt, size_t len, struct mqtt_connect *c)
{
	enum mqtt_status st = MQTT_MALFORMED;
	struct mqtt_span name;
	struct e2e_rd r;
	uint8_t b0;

	if (!c)
		return MQTT_MALFORMED;
	memset(c, 0, sizeof *c);
	if (open_packet(pkt, len, MQTT_CONNECT, &r, &b0) != MQTT_OK)
		goto out;
	name = mqtt_rd_bin(&r);
	c->version = e2e_rd_u8(&r);
	if (r.bad)
		goto out;
	/* Judged on name and level only: the rest of a future version's CONNECT may differ. */
	st = protocol_check(name, c->version);
	if (st != MQTT_OK)
		goto out;
	st = MQTT_MALFORMED;
	c->flags = e2e_rd_u8(&r);
	c->keepalive = e2e_rd_u16(&r);
	if (r.bad || !connect_flags_ok(c->flags, c->version))
		goto out;
	c->will = !!(c->flags & CF_WILL);
	c->will_qos = (uint8_t)((c->flags & CF_WILL_QOS) >> 3);
	c->will_retain = !!(c->flags & CF_RETAIN);
	c->has_username = !!(c->flags & CF_USERNAME);
	c->has_password = !!(c->flags & CF_PASSWORD);
	if (c->version == MQTT_V5 && mqtt_rd_props(&r, MQTT_CONNECT, &c->props) != MQTT_OK)
		goto out;
	c->client_id = rd_str(&r);
	if (c->will) {
		if (c->version == MQTT_V5 && mqtt_rd_props(&r, 0, &c->will_props) != MQTT_OK)
			goto out;
		c->will_topic = rd_str(&r);
		c->will_payload = mqtt_rd_bin(&r);
		if (!r.bad && (c->will_topic.len == 0 || !mqtt_topic_name_ok(c->will_topic)))
			goto out;
	}
	if (c->has_username)
		c->username = rd_str(&r);
	if (c->has_password)
		c->password = mqtt_rd_bin(&r);
	/* Trailing bytes are malformed too: a broker might read them differently. */
	if (r.bad || e2e_rd_left(&r))
		goto out;
	st = MQTT_OK;
out:
	if (st != MQTT_OK) {
		uint8_t level = c->version;

		memset(c, 0, sizeof *c);
		if (st == MQTT_UNSUPPORTED)
			c->version = level;   /* for the refusal's log line */
	}
	return st;
}

/* The fields mqtt_write_connect puts out, after substitutions. */
struct connect_out {
	const struct mqtt_connect *c;
	uint8_t flags;
	struct mqtt_span will_payload, username, password;
	uint64_t will_drop;
};

static void connect_body(struct e2e_wr *w, const void *arg)
{
	const struct connect_out *o = arg;
	const struct mqtt_connect *c = o->c;
	struct mqtt_span name = { name_v311, sizeof name_v311 };
	size_t wplen = 0;

	if (c->version == MQTT_V31) {
		name.p = name_v31;
		name.len = sizeof name_v31;
	}
	mqtt_wr_bin(w, name);
	e2e_wr_u8(w, c->version);
	e2e_wr_u8(w, o->flags);
	e2e_wr_u16(w, c->keepalive);
	if (c->version == MQTT_V5) {
		mqtt_wr_varint(w, (uint32_t)c->props.len);
		e2e_wr_bytes(w, c->props.p, c->props.len);
	}
	mqtt_wr_bin(w, c->client_id);
	if (o->flags & CF_WILL) {
		if (c->version == MQTT_V5) {
			/* Both calls cannot fail: the block was validated first. */
			(void)mqtt_props_copy_len(c->will_props, o->will_drop, &wplen);
			mqtt_wr_varint(w, (uint32_t)wplen);
			(void)mqtt_props_copy(w, c->will_props, o->will_drop);
		}
		mqtt_wr_bin(w, c->will_topic);
		mqtt_wr_bin(w, o->will_payload);
	}
	if (o->flags & CF_USERNAME)
		mqtt_wr_bin(w, o->username);
	if (o->flags & CF_PASSWORD)
		mqtt_wr_bin(w, o->password);
}

/* Re-check what a caller may have built by hand, so we never emit a CONNECT we would refuse. */
static enum mqtt_status connect_out_check(const struct connect_out *o)
{
	const struct mqtt_connect *c = o->c;

	if (c->version < MQTT_V31 || c->version > MQTT_V5 ||
	    !connect_flags_ok(o->flags, c->version))
		return MQTT_MALFORMED;
	if (c->client_id.len > 0xFFFF || !mqtt_utf8_valid(c->client_id.p, c->client_id.len))
		return MQTT_MALFORMED;
	if (c->version == MQTT_V5 &&
	    mqtt_validate_props(c->props.p, c->props.len, MQTT_CONNECT) != MQTT_OK)
		return MQTT_MALFORMED;
	if (o->flags & CF_WILL) {
		if (c->will_topic.len == 0 || !mqtt_topic_name_ok(c->will_topic))
			return MQTT_MALFORMED;
		if (c->version == MQTT_V5 &&
		    mqtt_validate_props(c->will_props.p, c->will_props.len, 0) != MQTT_OK)
			return MQTT_MALFORMED;
		if (!o->will_payload.p && o->will_payload.len)
			return MQTT_MALFORMED;
		/* A sealed will can outgrow the two-byte length a will payload has. */
		if (o->will_payload.len > 0xFFFF)
			return MQTT_TOO_BIG;
	}
	if ((o->flags & CF_USERNAME) &&
	    (o->username.len > 0xFFFF || !mqtt_utf8_valid(o->username.p, o->username.len)))
		return MQTT_MALFORMED;
	if ((o->flags & CF_PASSWORD) &&
	    (o->password.len > 0xFFFF || (!o->password.p && o->password.len)))
		return MQTT_MALFORMED;
	return MQTT_OK;
}

/* Write fixed header + body in two passes: count, then (if it fits) store. */
typedef void body_fn(struct e2e_wr *w, const void *arg);

static enum mqtt_status write_packet(uint8_t *out, size_t cap, size_t *len, uint8_t b0,
	body_fn *body, const void *arg)
{
	uint8_t rl[4];
	struct e2e_wr w;
	size_t n, blen;

	e2e_wr_init(&w, NULL, 0);
	body(&w, arg);
	blen = w.off;
	if (blen > MQTT_MAX_REMAINING)
		return MQTT_TOO_BIG;
	n = mqtt_varint_write(rl, (uint32_t)blen);
	*len = 1 + n + blen;
	if (!out || cap < *len)
		return MQTT_BUFFER;
	e2e_wr_init(&w, out, cap);
	e2e_wr_u8(&w, b0);
	e2e_wr_bytes(&w, rl, n);
	body(&w, arg);
	return MQTT_OK;
}

enum mqtt_status mqtt_write_connect(uint8_t *out, size_t cap, size_t *len,
	const struct mqtt_connect *c, struct mqtt_span will_payload, int drop_will_pfi,
	const struct mqtt_span *username, const struct mqtt_span *password)
{
	struct connect_out o;
	enum mqtt_status st;

	if (!len || !c)
		return MQTT_MALFORMED;
	*len = 0;
	memset(&o, 0, sizeof o);
	o.c = c;
	o.flags = c->flags & CF_CLEAN;
	if (c->will)
		o.flags |= (uint8_t)(CF_WILL | (c->will_qos & 3) << 3 |
			(c->will_retain ? CF_RETAIN : 0));
	o.will_payload = will_payload;
	o.will_drop = drop_will_pfi ? MQTT_PROP_BIT(MQTT_PROP_PFI) : 0;
	o.username = username ? *username : c->username;
	o.password = password ? *password : c->password;
	if (username || c->has_username)
		o.flags |= CF_USERNAME;
	if (password || c->has_password)
		o.flags |= CF_PASSWORD;
	st = connect_out_check(&o);
	if (st != MQTT_OK)
		return st;
	return write_packet(out, cap, len, MQTT_CONNECT << 4, connect_body, &o);
}

/* ---- PUBLISH ---- */

enum mqtt_status mqtt_parse_publish(const uint8_t *pkt, size_t len, uint8_t version,
	struct mqtt_publish *p)
{
	enum mqtt_status st = MQTT_MALFORMED;
	struct mqtt_prop pr;
	struct e2e_rd r;
	uint8_t b0;

	if (!p)
		return MQTT_MALFORMED;
	memset(p, 0, sizeof *p);
	if (version < MQTT_V31 || version > MQTT_V5)
		goto out;
	if (open_packet(pkt, len, MQTT_PUBLISH, &r, &b0) != MQTT_OK)
		goto out;
	p->flags = b0 & 0x0F;
	p->qos = (uint8_t)((p->flags >> 1) & 3);
	if (p->qos == 0 && (p->flags & 0x08))    /* DUP on QoS 0: MQTT-3.3.1-2 */
		goto out;
	/* mqtt_topic_name_ok checks the UTF-8 too: read the bytes only, so
	 * the hot path does not validate every topic twice (issue 15). */
	p->topic = mqtt_rd_bin(&r);
	if (r.bad || !mqtt_topic_name_ok(p->topic))
		goto out;
	if (p->qos) {
		p->packet_id = e2e_rd_u16(&r);
		if (r.bad || p->packet_id == 0)  /* MQTT-2.3.1-1 */
			goto out;
	}
	if (version == MQTT_V5) {
		if (mqtt_rd_props(&r, MQTT_PUBLISH, &p->props) != MQTT_OK)
			goto out;
		if (mqtt_props_find(p->props, MQTT_PROP_TOPIC_ALIAS, &pr, &p->has_alias) != MQTT_OK)
			goto out;
		p->alias = p->has_alias ? (uint16_t)pr.num : 0;
		if (mqtt_props_find(p->props, MQTT_PROP_PFI, &pr, &p->has_pfi) != MQTT_OK)
			goto out;
	}
	/* An empty topic is only a reference to an alias (5.0 section 3.3.2.1). */
	if (p->topic.len == 0 && !p->has_alias)
		goto out;
	p->payload = mqtt_rd_span(&r, e2e_rd_left(&r));
	st = MQTT_OK;
out:
	if (st != MQTT_OK)
		memset(p, 0, sizeof *p);
	return st;
}

struct publish_out {
	uint8_t version;
	const struct mqtt_publish *p;
	struct mqtt_span topic, payload;
	size_t props_len;
};

/* Topic Alias points at state the broker no longer shares; PFI no longer describes the payload. */
#define PUBLISH_DROP (MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS) | MQTT_PROP_BIT(MQTT_PROP_PFI))

static void publish_body_fn(struct e2e_wr *w, const void *arg)
{
	const struct publish_out *o = arg;

	mqtt_wr_bin(w, o->topic);
	if (o->p->qos)
		e2e_wr_u16(w, o->p->packet_id);
	if (o->version == MQTT_V5) {
		mqtt_wr_varint(w, (uint32_t)o->props_len);
		(void)mqtt_props_copy(w, o->p->props, PUBLISH_DROP);
	}
	e2e_wr_bytes(w, o->payload.p, o->payload.len);
}

enum mqtt_status mqtt_write_publish(uint8_t *out, size_t cap, size_t *len, uint8_t version,
	const struct mqtt_publish *p, struct mqtt_span topic, struct mqtt_span payload)
{
	struct publish_out o = { version, p, topic, payload, 0 };
	uint8_t qos;

	if (!len || !p)
		return MQTT_MALFORMED;
	*len = 0;
	qos = (uint8_t)((p->flags >> 1) & 3);
	if (version < MQTT_V31 || version > MQTT_V5 || (p->flags & 0xF0) || qos == 3 ||
	    qos != p->qos || (qos == 0 && (p->flags & 0x08)) || (qos && p->packet_id == 0))
		return MQTT_MALFORMED;
	/* Always the full name: the output never relies on an alias. */
	if (topic.len == 0 || !mqtt_topic_name_ok(topic))
		return MQTT_MALFORMED;
	if (payload.len > MQTT_MAX_REMAINING)
		return MQTT_TOO_BIG;
	if (!payload.p && payload.len)
		return MQTT_MALFORMED;
	if (version == MQTT_V5) {
		if (mqtt_validate_props(p->props.p, p->props.len, MQTT_PUBLISH) != MQTT_OK ||
		    mqtt_props_copy_len(p->props, PUBLISH_DROP, &o.props_len) != MQTT_OK)
			return MQTT_MALFORMED;
		if (o.props_len > MQTT_MAX_REMAINING)
			return MQTT_TOO_BIG;
	}
	return write_packet(out, cap, len, (uint8_t)(MQTT_PUBLISH << 4 | p->flags), publish_body_fn,
		&o);
}

/* ---- acks, DISCONNECT ---- */

enum mqtt_status mqtt_parse_ack(const uint8_t *pkt, size_t len, uint16_t *packet_id)
{
	uint8_t reason;

	return mqtt_parse_ack_reason(pkt, len, packet_id, &reason);
}

enum mqtt_status mqtt_parse_ack_reason(const uint8_t *pkt, size_t len, uint16_t *packet_id,
	uint8_t *reason)
{
	struct mqtt_span props;
	struct e2e_rd r;
	uint8_t b0, type, rc = 0;
	uint16_t id;

	if (!packet_id || !reason)
		return MQTT_MALFORMED;
	*packet_id = 0;
	*reason = 0;
	if (open_packet(pkt, len, 0, &r, &b0) != MQTT_OK)
		return MQTT_MALFORMED;
	type = b0 >> 4;
	if (type < MQTT_PUBACK || type > MQTT_PUBCOMP)
		return MQTT_MALFORMED;
	id = e2e_rd_u16(&r);
	if (r.bad || id == 0)
		return MQTT_MALFORMED;
	/*
	 * 3.1/3.1.1 acks end here. A 5.0 ack may add a reason code and then a
	 * property block (section 3.4.2.2: absent when the length is under 4).
	 */
	if (e2e_rd_left(&r)) {
		rc = e2e_rd_u8(&r);
		if (e2e_rd_left(&r) && mqtt_rd_props(&r, type, &props) != MQTT_OK)
			return MQTT_MALFORMED;
		if (r.bad || e2e_rd_left(&r))
			return MQTT_MALFORMED;
	}
	*packet_id = id;
	*reason = rc;
	return MQTT_OK;
}

size_t mqtt_write_connack(uint8_t out[5], uint8_t version, uint8_t code)
{
	if (!out || version < MQTT_V31 || version > MQTT_V5)
		return 0;
	out[0] = MQTT_CONNACK << 4;
	out[1] = version == MQTT_V5 ? 3 : 2;
	out[2] = 0;        /* session present: never on a refusal */
	out[3] = code;
	if (version < MQTT_V5)
		return 4;
	out[4] = 0;        /* no properties */
	return 5;
}

size_t mqtt_write_disconnect(uint8_t out[4], uint8_t version, uint8_t reason)
{
	if (!out || version < MQTT_V31 || version > MQTT_V5)
		return 0;
	out[0] = MQTT_DISCONNECT << 4;
	/* 5.0: a zero Remaining Length means reason 0x00 (Normal disconnection). */
	if (version < MQTT_V5 || reason == 0) {
		out[1] = 0;
		return 2;
	}
	out[1] = 1;
	out[2] = reason;
	return 3;
}

/* ---- UTF-8 ---- */

/*
 * Well-formed UTF-8 per RFC 3629 / Unicode Table 3-7: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF; and no U+0000, which
 * MQTT forbids outright (MQTT-1.5.4-1, -1.5.4-2). The second byte's range
 * depends on the lead byte; later continuation bytes are always 80..BF.
 */
