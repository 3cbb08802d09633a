/*
 * A reference UTF-8 check for MQTT strings (no NUL, no surrogates, shortest
 * form, at most U+10FFFF) written the opposite way to the codec's: decode
 * by bit pattern, then check the value. Shared by test_mqtt_props and
 * fuzz_mqtt so that both compare the codec against the same reference.
 */
#ifndef E2E_REF_UTF8_H
#define E2E_REF_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 when s[0..len) is valid MQTT UTF-8, else 0. */
int mt_ref_utf8(const uint8_t *s, size_t len);

#endif
