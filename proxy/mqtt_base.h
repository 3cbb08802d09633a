/*
 * The MQTT codec's leaf: statuses, packet types, spans, and the two field
 * encodings both halves of the codec need (Variable Byte Integer, UTF-8
 * strings). mqtt_codec.c (packets) and mqtt_props.c (MQTT 5 properties)
 * both build on it and not on each other's headers, so the codec has no
 * include circle. Pure: bytes in, bytes out.
 */
#ifndef E2E_MQTT_BASE_H
#define E2E_MQTT_BASE_H

#include <stddef.h>
#include <stdint.h>

enum mqtt_status {
	MQTT_OK = 0,
	MQTT_NEED_MORE,       /* incomplete: read more bytes */
	MQTT_MALFORMED,       /* violates the MQTT spec: close the connection */
	MQTT_TOO_BIG,         /* exceeds the configured maximum packet size */
	MQTT_BUFFER,          /* output buffer too small */
	MQTT_UNSUPPORTED,     /* CONNECT of a protocol level we do not speak: CONNACK 0x01 */
};

/* Control packet types (fixed header, high nibble). */
enum mqtt_type {
	MQTT_CONNECT = 1, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
	MQTT_PUBCOMP, MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE, MQTT_UNSUBACK,
	MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT, MQTT_AUTH,
};

#define MQTT_V31  3
#define MQTT_V311 4
#define MQTT_V5   5
#define MQTT_MAX_REMAINING 268435455U

struct mqtt_span {
	const uint8_t *p;
	size_t len;
};

/* Encode a remaining length; returns bytes written (1..4) or 0 if too big. */
size_t mqtt_varint_write(uint8_t out[4], uint32_t v);

/* 1 if @p s is well-formed UTF-8 without U+0000 (MQTT 1.5.4). */
int mqtt_utf8_valid(const uint8_t *s, size_t len);

#endif
