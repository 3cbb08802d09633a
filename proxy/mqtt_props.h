/*
 * MQTT 5 properties, the validating half (mqtt_props.c); the codec's
 * copy/find helpers on cursors are in mqtt_wire.h. Builds on mqtt_base.h
 * only, so mqtt_props.c never needs the packet codec's header.
 */
#ifndef E2E_MQTT_PROPS_H
#define E2E_MQTT_PROPS_H

#include <stddef.h>

#include "mqtt_base.h"

/*
 * Validate an MQTT 5 property block (without its length prefix) for packet
 * @p type: known ids only, correct value types and lengths, valid UTF-8 for
 * strings, no duplicates except User Property and Subscription Identifier,
 * only properties allowed in that packet (or in the will, type 0).
 */
enum mqtt_status mqtt_validate_props(const uint8_t *p, size_t len, int type);

#endif
