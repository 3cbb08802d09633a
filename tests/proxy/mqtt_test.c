/* Builders and assertions for the codec suites; see mqtt_test.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_test.h"

void pb_init(struct pb *p)
{
	p->n = 0;
}

void pb_raw(struct pb *p, const void *src, size_t n)
{
	if (n > PB_CAP - p->n) {
		fprintf(stderr, "pb overflow: test bug\n");
		abort();
	}
	if (n)
		memcpy(p->b + p->n, src, n);
	p->n += n;
}

void pb_u8(struct pb *p, uint8_t v)
{
	pb_raw(p, &v, 1);
}

void pb_u16(struct pb *p, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	pb_raw(p, b, 2);
}

void pb_u32(struct pb *p, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	pb_raw(p, b, 4);
}

/* Written by hand, not with mqtt_varint_write, so the two can disagree. */
void pb_varint(struct pb *p, uint32_t v)
{
	do {
		uint8_t b = v & 0x7F;

		v >>= 7;
		if (v)
			b |= 0x80;
		pb_u8(p, b);
	} while (v);
}

void pb_str(struct pb *p, const char *s)
{
	pb_bin(p, s, strlen(s));
}

void pb_bin(struct pb *p, const void *s, size_t n)
{
	pb_u16(p, (uint16_t)n);
	pb_raw(p, s, n);
}

size_t pb_packet(uint8_t *out, size_t cap, uint8_t b0, const struct pb *body)
{
	struct pb h;

	pb_init(&h);
	pb_u8(&h, b0);
	pb_varint(&h, (uint32_t)body->n);
	if (h.n + body->n > cap) {
		fprintf(stderr, "pb_packet: output too small: test bug\n");
		abort();
	}
	memcpy(out, h.b, h.n);
	memcpy(out + h.n, body->b, body->n);
	return h.n + body->n;
}

size_t build_connect(uint8_t *out, size_t cap, const struct cspec *c)
{
	const char *name = c->name ? c->name : c->version == MQTT_V31 ? "MQIsdp" : "MQTT";
	struct pb b;
	int flags = c->flags & 0xFF;

	if (!(c->flags & 0x100)) {
		flags = c->clean ? 0x02 : 0;
		if (c->will_topic)
			flags |= 0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0);
		if (c->password)
			flags |= 0x40;
		if (c->username)
			flags |= 0x80;
	}
	pb_init(&b);
	pb_str(&b, name);
	pb_u8(&b, (uint8_t)(c->level ? c->level : c->version));
	pb_u8(&b, (uint8_t)flags);
	pb_u16(&b, c->keepalive);
	if (c->version == MQTT_V5) {
		pb_varint(&b, c->props ? (uint32_t)c->props->n : 0);
		if (c->props)
			pb_raw(&b, c->props->b, c->props->n);
	}
	pb_str(&b, c->client_id ? c->client_id : "");
	if (c->will_topic) {
		if (c->version == MQTT_V5) {
			pb_varint(&b, c->will_props ? (uint32_t)c->will_props->n : 0);
			if (c->will_props)
				pb_raw(&b, c->will_props->b, c->will_props->n);
		}
		pb_str(&b, c->will_topic);
		pb_bin(&b, c->will_payload, c->will_payload_len);
	}
	if (c->username)
		pb_str(&b, c->username);
	if (c->password)
		pb_bin(&b, c->password, c->password_len);
	return pb_packet(out, cap, 0x10, &b);
}

size_t build_publish(uint8_t *out, size_t cap, uint8_t version, uint8_t flags, const char *topic,
	uint16_t packet_id, const struct pb *props, const void *payload, size_t payload_len)
{
	static struct pb b;   /* large: keep it off the stack */

	pb_init(&b);
	pb_str(&b, topic);
	if (flags & 0x06)
		pb_u16(&b, packet_id);
	if (version == MQTT_V5) {
		pb_varint(&b, props ? (uint32_t)props->n : 0);
		if (props)
			pb_raw(&b, props->b, props->n);
	}
	pb_raw(&b, payload, payload_len);
	return pb_packet(out, cap, (uint8_t)(0x30 | flags), &b);
}

int span_eq(struct mqtt_span s, const void *p, size_t n)
{
	return s.len == n && (n == 0 || (s.p && memcmp(s.p, p, n) == 0));
}

int span_eq_str(struct mqtt_span s, const char *str)
{
	return span_eq(s, str, strlen(str));
}

void mt_check(int ok, const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}

static const char *st_name(enum mqtt_status st)
{
	switch (st) {
	case MQTT_OK:        return "MQTT_OK";
	case MQTT_NEED_MORE: return "MQTT_NEED_MORE";
	case MQTT_MALFORMED: return "MQTT_MALFORMED";
	case MQTT_TOO_BIG:   return "MQTT_TOO_BIG";
	case MQTT_BUFFER:    return "MQTT_BUFFER";
	default:             return "?";
	}
}

void mt_status(enum mqtt_status got, enum mqtt_status want, const char *expr, const char *file,
	int line)
{
	mt_check(got == want, file, line, "%s: %s, expected %s", expr, st_name(got), st_name(want));
}
