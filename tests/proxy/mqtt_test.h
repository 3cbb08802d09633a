/*
 * Helpers shared by the MQTT codec suites: a byte builder for hand-made
 * packets (so tests never depend on the writer they check), packet builders
 * for CONNECT and PUBLISH, and assertions that print both sides.
 */
#ifndef E2E_MQTT_TEST_H
#define E2E_MQTT_TEST_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

#include "mqtt_codec.h"

#define PB_CAP 32768U

/* Body under construction; overflowing PB_CAP is a test bug and aborts. */
struct pb {
	uint8_t b[PB_CAP];
	size_t n;
};

void pb_init(struct pb *p);
void pb_raw(struct pb *p, const void *src, size_t n);
void pb_u8(struct pb *p, uint8_t v);
void pb_u16(struct pb *p, uint16_t v);
void pb_u32(struct pb *p, uint32_t v);
void pb_varint(struct pb *p, uint32_t v);
/* Two-byte length, then the bytes of @s (strlen). */
void pb_str(struct pb *p, const char *s);
void pb_bin(struct pb *p, const void *s, size_t n);
/* Fixed header @b0 + Remaining Length + @body into @out; returns the packet size. */
size_t pb_packet(uint8_t *out, size_t cap, uint8_t b0, const struct pb *body);

/* A CONNECT described field by field; NULL strings are absent fields. */
struct cspec {
	uint8_t version;             /* 3, 4 or 5 */
	const char *name;            /* NULL: the right name for the version */
	int level;                   /* 0: = version */
	int flags;                   /* 0: computed from the fields below; 0x100|f: f as is */
	uint16_t keepalive;
	int clean;
	const struct pb *props;      /* v5 CONNECT properties (NULL: empty) */
	const char *client_id;
	const char *will_topic;      /* non-NULL: will flag */
	const struct pb *will_props; /* v5 */
	const void *will_payload;
	size_t will_payload_len;
	uint8_t will_qos;
	int will_retain;
	const char *username;
	const void *password;        /* non-NULL: password flag */
	size_t password_len;
};

size_t build_connect(uint8_t *out, size_t cap, const struct cspec *c);

/* A PUBLISH; @props only for v5 (NULL: empty block). */
size_t build_publish(uint8_t *out, size_t cap, uint8_t version, uint8_t flags, const char *topic,
	uint16_t packet_id, const struct pb *props, const void *payload, size_t payload_len);

int span_eq(struct mqtt_span s, const void *p, size_t n);
int span_eq_str(struct mqtt_span s, const char *str);

void mt_check(int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define MT_CHECK(cond, ...) mt_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
/* A status, printing both names on mismatch. */
#define MT_ST(expr, want) mt_status((expr), (want), #expr, __FILE__, __LINE__)
void mt_status(enum mqtt_status got, enum mqtt_status want, const char *expr, const char *file,
	int line);

struct mt_test {
	const char *name;
	CU_TestFunc fn;
};

struct mt_suite {
	const char *name;
	const struct mt_test *tests;  /* ends with { NULL, NULL } */
};

extern const struct mt_suite mt_frame_suite, mt_connect_suite, mt_publish_suite,
	mt_props_suite, mt_utf8_suite, mt_ack_suite, mt_safety_suite;

#endif
