/*
 * MQTT 3.1 / 3.1.1 / 5.0 packet codec for e2e-proxy: pure (bytes in, bytes
 * out, no allocation, no I/O). Every length is checked before use; every
 * function returns an mqtt_status. Spans point into the caller's packet.
 */
#ifndef E2E_MQTT_CODEC_H
#define E2E_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt_base.h"
#include "mqtt_props.h"

const char *mqtt_strerror(enum mqtt_status st);

/*
 * Find the first complete packet in @p buf: on MQTT_OK *pkt_len is its total
 * size and *hdr_len the size of its fixed header. On MQTT_NEED_MORE with the
 * fixed header complete, they already hold the sizes the packet will have
 * (so a reader knows how much it must buffer); while the header itself is
 * incomplete they are 0. This is the only place that reads a Remaining
 * Length: nothing else may index into a packet at a fixed offset. Rejects overlong varints
 * (more than 4 bytes, or a non-minimal encoding), reserved flag bits that
 * the spec fixes (e.g. PUBREL/SUBSCRIBE/UNSUBSCRIBE must have 0x2), type 0,
 * and packets over @p max_packet bytes (MQTT_TOO_BIG, decided from the
 * header alone so an attacker cannot make us buffer it).
 */
enum mqtt_status mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet,
	size_t *pkt_len, size_t *hdr_len);

/* Parsed CONNECT (spans into the packet). */
struct mqtt_connect {
	uint8_t version;             /* 3, 4 or 5 */
	uint8_t flags;               /* connect flags byte */
	uint16_t keepalive;
	struct mqtt_span props;      /* v5 CONNECT properties (validated) */
	struct mqtt_span client_id;
	int will;
	uint8_t will_qos;
	int will_retain;
	struct mqtt_span will_props; /* v5 */
	struct mqtt_span will_topic;
	struct mqtt_span will_payload;
	int has_username, has_password;
	struct mqtt_span username, password;
};

/*
 * Parse a whole CONNECT packet (fixed header included). A known protocol
 * name ("MQTT", "MQIsdp") with a level it does not go with (anything but
 * 4 or 5 for "MQTT", 3 for "MQIsdp") is MQTT_UNSUPPORTED, decided from the
 * name and level alone: the server must answer it with CONNACK 0x01
 * (MQTT 3.1.1 section 3.1.2.2) rather than just close. Any other defect is
 * MQTT_MALFORMED.
 */
enum mqtt_status mqtt_parse_connect(const uint8_t *pkt, size_t len, struct mqtt_connect *c);

/*
 * A CONNACK refusing the connection with return/reason @p code, in the form
 * of @p version: 3.1/3.1.1 "20 02 00 code", 5.0 "20 03 00 code 00" (empty
 * properties). Returns the size (4 or 5), 0 on a bad argument.
 */
size_t mqtt_write_connack(uint8_t out[5], uint8_t version, uint8_t code);

#define MQTT_CONNACK_BAD_PROTOCOL 0x01   /* 3.1.1: unacceptable protocol version */

/*
 * Serialise CONNECT @p c, replacing the will payload by @p will_payload
 * (when c->will), and the credentials by @p username / @p password when
 * non-NULL (set the flags accordingly). For v5, @p drop_will_pfi removes the
 * payload format indicator from the will properties. Returns MQTT_BUFFER if
 * @p cap is too small (then *len holds the size needed).
 */
enum mqtt_status mqtt_write_connect(uint8_t *out, size_t cap, size_t *len,
	const struct mqtt_connect *c, struct mqtt_span will_payload, int drop_will_pfi,
	const struct mqtt_span *username, const struct mqtt_span *password);

/* Parsed PUBLISH. */
struct mqtt_publish {
	uint8_t flags;               /* low nibble of the fixed header: dup, qos, retain */
	uint8_t qos;
	struct mqtt_span topic;      /* may be empty in v5 when a topic alias is used */
	uint16_t packet_id;          /* qos > 0 */
	struct mqtt_span props;      /* v5 (validated) */
	int has_alias;
	uint16_t alias;
	int has_pfi;                 /* payload format indicator present */
	struct mqtt_span payload;
};

/* Parse a whole PUBLISH packet of protocol @p version. */
enum mqtt_status mqtt_parse_publish(const uint8_t *pkt, size_t len, uint8_t version,
	struct mqtt_publish *p);

/*
 * Serialise a PUBLISH from @p p with topic @p topic (always the full topic
 * name) and payload @p payload. For v5 the properties of @p p are copied
 * except Topic Alias and Payload Format Indicator, which are dropped (the
 * broker sees the real topic, and the payload is binary ciphertext now).
 */
enum mqtt_status mqtt_write_publish(uint8_t *out, size_t cap, size_t *len, uint8_t version,
	const struct mqtt_publish *p, struct mqtt_span topic, struct mqtt_span payload);


/* Packet identifier of a PUBACK/PUBREC/PUBREL/PUBCOMP (whole packet). */
enum mqtt_status mqtt_parse_ack(const uint8_t *pkt, size_t len, uint16_t *packet_id);

/*
 * The same, with the 5.0 reason code in *reason (0x00, Success, when the
 * packet has none: 3.x, or a 5.0 Remaining Length of 2). Its offset depends
 * on the header length, so callers never read it at a fixed index.
 */
enum mqtt_status mqtt_parse_ack_reason(const uint8_t *pkt, size_t len, uint16_t *packet_id,
	uint8_t *reason);

/* A DISCONNECT packet for @p version with @p reason (v5 only; ignored before). */
size_t mqtt_write_disconnect(uint8_t out[4], uint8_t version, uint8_t reason);

#endif
