/* The codec's leaf encodings; see mqtt_base.h. */
#include "mqtt_base.h"

size_t mqtt_varint_write(uint8_t out[4], uint32_t v)
{
	size_t n = 0;

	if (!out || v > MQTT_MAX_REMAINING)
		return 0;
	do {
		uint8_t b = (uint8_t)(v & 0x7F);

		v >>= 7;
		out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

int mqtt_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	if (!s)
		return len == 0;
	while (i < len) {
		uint8_t c = s[i], lo = 0x80, hi = 0xBF;
		size_t n, k;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			if (c == 0xE0)
				lo = 0xA0;         /* overlong below U+0800 */
			else if (c == 0xED)
				hi = 0x9F;         /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			if (c == 0xF0)
				lo = 0x90;         /* overlong below U+10000 */
			else if (c == 0xF4)
				hi = 0x8F;         /* above U+10FFFF */
		} else {
			return 0;                  /* 80..C1 stray or overlong lead, F5..FF */
		}
		if (n > len - i - 1)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		}
		i += n + 1;
	}
	return 1;
}
