/* The codec tests' and the MQTT fuzzer's second opinion on UTF-8. */
#include "ref_utf8.h"

/*
 * Reference: decode by bit pattern and check the value, the opposite of
 * the codec's approach (byte ranges per lead byte).
 */
int mt_ref_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp, min;
		size_t n;

		if (s[i] < 0x80) {
			n = 1; cp = s[i]; min = 0;
		} else if ((s[i] & 0xE0) == 0xC0) {
			n = 2; cp = s[i] & 0x1F; min = 0x80;
		} else if ((s[i] & 0xF0) == 0xE0) {
			n = 3; cp = s[i] & 0x0F; min = 0x800;
		} else if ((s[i] & 0xF8) == 0xF0) {
			n = 4; cp = s[i] & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (len - i < n)
			return 0;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0)
			return 0;
		i += n;
	}
	return 1;
}
