/*
 * e2e-sub -F (see fmt.h). Each sequence does what mosquitto_sub(1) says it
 * does, down to its quirks (a width also truncates %p, %x halves it), so
 * that a script written for mosquitto_sub reads e2e-sub's output the same
 * way; tests/cli/parity.py compares the two byte for byte.
 *
 * What an end-to-end subscriber cannot show: the MQTT 5 properties (%A %C
 * %D %E %F %P %R %S) are not passed up by the client and are plaintext and
 * unauthenticated anyway (SPEC 1), so they print as absent; %m prints 0,
 * the packet id not being passed up either.
 */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "fmt.h"

/* One conversion's flags, width and precision (-1: none). */
struct spec {
	char align, pad;
	int width, prec;
};

/* One time sample per message, taken at its first use. */
struct clock {
	int taken;
	struct tm tm;
	long ns;
	time_t s;
};

static void clock_take(struct clock *c)
{
	struct timespec ts;

	if (c->taken)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->s = ts.tv_sec;
	c->ns = ts.tv_nsec;
	localtime_r(&c->s, &c->tm);
	c->taken = 1;
}

static void put_blank(FILE *f, char pad, int width)
{
	for (int i = 0; i < width; i++)
		fputc(pad, f);
}

static void put_int(FILE *f, long long v, const struct spec *sp)
{
	if (sp->width == 0)
		fprintf(f, "%lld", v);
	else if (sp->align == '-')
		fprintf(f, "%-*lld", sp->width, v);
	else if (sp->pad == '0')
		fprintf(f, "%0*lld", sp->width, v);
	else
		fprintf(f, "%*lld", sp->width, v);
}

static void put_str(FILE *f, const char *s, const struct spec *sp)
{
	int left = sp->align == '-';

	if (sp->width == 0 && sp->prec < 0)
		fputs(s, f);
	else if (sp->prec < 0)
		fprintf(f, left ? "%-*s" : "%*s", sp->width, s);
	else
		fprintf(f, left ? "%-*.*s" : "%*.*s", sp->width, sp->prec, s);
}

/* %p, %x, %X: a width is also the maximum (in input bytes; hex halves it). */
static void put_payload(FILE *f, const uint8_t *p, size_t len, int hex, const struct spec *sp)
{
	long n = (long)len, padlen;

	if (sp->width > 0 && n > sp->width)
		n = sp->width;
	if (sp->width > 0 && hex)
		n /= 2;
	padlen = sp->width - (hex && sp->width > 0 ? n * 2 : n);
	if (sp->align != '-')
		put_blank(f, sp->pad, (int)(padlen > 0 ? padlen : 0));
	for (long i = 0; i < n; i++) {
		if (hex)
			fprintf(f, hex == 1 ? "%02x" : "%02X", p[i]);
		else
			fputc(p[i], f);
	}
	/* mosquitto pads left-aligned payloads with printf("%*s", padlen, ""),
	 * where a negative width left-justifies: "%-p" adds len blanks. */
	if (sp->align == '-')
		put_blank(f, ' ', (int)(padlen < 0 ? -padlen : padlen));
}

/* "2020-05-06T22:12:00.123456Z+0100", as mosquitto_sub's %j writes it. */
static void json_time(char *buf, size_t cap, struct clock *c)
{
	char t[32], z[8];

	clock_take(c);
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &c->tm);
	strftime(z, sizeof z, "%z", &c->tm);
	snprintf(buf, cap, "%s.%06ldZ%s", t, c->ns / 1000, z);
}

static int utf8_ok(const uint8_t *p, size_t len)
{
	json_t *s = json_stringn((const char *)p, len);   /* NULL when not valid UTF-8 */

	json_decref(s);
	return s != NULL;
}

/* %j (@p raw 0: payload as a string, or bytes) and %J (raw: payload is JSON). */
static void put_json(FILE *f, const struct e2e_client_msg *m, int raw, struct clock *c)
{
	char tst[64];
	json_t *o = json_object(), *pl = NULL;
	json_error_t jerr;
	char *out = NULL;

	json_time(tst, sizeof tst, c);
	if (!o)
		goto out;
	json_object_set_new(o, "tst", json_string(tst));
	json_object_set_new(o, "topic", json_string(m->topic));
	json_object_set_new(o, "qos", json_integer(m->qos));
	json_object_set_new(o, "retain", json_integer(m->retained ? 1 : 0));
	json_object_set_new(o, "payloadlen", json_integer((json_int_t)m->len));
	if (m->qos > 0)
		json_object_set_new(o, "mid", json_integer(0));
	if (!m->len) {
		pl = json_null();   /* a zero-length payload is no payload there */
	} else if (raw) {
		pl = m->len ? json_loadb((const char *)m->payload, m->len, JSON_DECODE_ANY, &jerr) :
			json_null();
		if (!pl) {
			fprintf(stderr, "Error: Message payload is not valid JSON on topic %s.\n",
				m->topic);
			goto out;
		}
	} else if (utf8_ok(m->payload, m->len)) {
		/* As mosquitto 2.0.11: the payload as an escaped string. Bytes that
		 * are not UTF-8 would make invalid JSON: those go as numbers. */
		pl = json_stringn((const char *)m->payload, m->len);
	} else {
		pl = json_array();
		for (size_t i = 0; pl && i < m->len; i++)
			json_array_append_new(pl, json_integer(m->payload[i]));
	}
	json_object_set_new(o, "payload", pl ? pl : json_null());
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	if (out)
		fputs(out, f);
out:
	free(out);
	json_decref(o);
}

static void put_conv(FILE *f, char conv, const struct spec *sp, const struct e2e_client_msg *m,
	struct clock *c)
{
	char buf[128], hex[9];
	const uint8_t *p = m->payload ? m->payload : (const uint8_t *)"";

	switch (conv) {
	case '%': fputc('%', f); break;
	/* MQTT 5 properties: absent, as in mosquitto_sub for a message without them. */
	case 'A': case 'E': case 'F': case 'S': put_blank(f, sp->pad, sp->width); break;
	case 'C': put_blank(f, ' ', sp->width); break;
	case 'D': case 'P': case 'R': break;
	case 'I':
		clock_take(c);
		if (strftime(buf, sizeof buf, "%FT%T%z", &c->tm))
			put_str(f, buf, sp);
		else
			put_blank(f, ' ', sp->width);
		break;
	case 'j': put_json(f, m, 0, c); break;
	case 'J': put_json(f, m, 1, c); break;
	case 'l': put_int(f, (long long)m->len, sp); break;
	case 'm': put_int(f, 0, sp); break;
	case 'p': put_payload(f, p, m->len, 0, sp); break;
	case 'q': fputc('0' + m->qos, f); break;
	case 'r': fputc(m->retained ? '1' : '0', f); break;
	case 't': put_str(f, m->topic, sp); break;
	case 'U':
		clock_take(c);
		fprintf(f, "%lld.%09ld", (long long)c->s, c->ns);
		break;
	case 'x': put_payload(f, p, m->len, 1, sp); break;
	case 'X': put_payload(f, p, m->len, 2, sp); break;
	/* End to end: what the envelope said and what the checks found. */
	case 'V': put_str(f, e2e_verdict_name(m->verdict), sp); break;
	case 'n':
		if (!m->sender_name)
			snprintf(hex, sizeof hex, "%08x", (unsigned)m->sender);
		put_str(f, m->sender_name ? m->sender_name : hex, sp);
		break;
	case 'e': put_int(f, m->epoch, sp); break;
	case 's': put_int(f, m->seq, sp); break;
	case 'o': put_int(f, m->scope, sp); break;
	case 'g': put_int(f, (long long)m->gap, sp); break;
	default: break;   /* unknown: nothing, as mosquitto_sub */
	}
}

/* "%-08.3t": flags, width and precision from @p fmt at *i, which ends on the conversion. */
static struct spec parse_spec(const char *fmt, size_t len, size_t *i)
{
	struct spec sp = { 0, ' ', 0, -1 };

	if (fmt[*i] == '-') {
		sp.align = '-';
		if (*i < len - 1)
			(*i)++;
	}
	if (fmt[*i] == '0') {
		sp.pad = '0';
		if (*i < len - 1)
			(*i)++;
	}
	while (*i < len - 1 && fmt[*i] >= '0' && fmt[*i] <= '9')
		sp.width = sp.width * 10 + (fmt[(*i)++] - '0');
	if (fmt[*i] == '.' && *i < len - 1) {
		(*i)++;
		sp.prec = 0;
		while (*i < len - 1 && fmt[*i] >= '0' && fmt[*i] <= '9')
			sp.prec = sp.prec * 10 + (fmt[(*i)++] - '0');
	}
	return sp;
}

static void put_escape(FILE *f, char e)
{
	static const char from[] = "\\0aenrtv", to[] = "\\\0\a\033\n\r\t\v";
	const char *hit = e ? strchr(from, e) : NULL;

	if (hit)
		fputc(to[hit - from], f);
}

/* "@X" hands "%X" to strftime: the user's format, checked by strftime only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static size_t fmt_strftime(char *buf, size_t cap, const char *sf, const struct tm *tm)
{
	return strftime(buf, cap, sf, tm);
}
#pragma GCC diagnostic pop

static void put_time(FILE *f, char t, struct clock *c)
{
	char sf[3] = { '%', t, '\0' }, buf[128];

	if (t == '@') {
		fputc('@', f);
		return;
	}
	clock_take(c);
	if (t == 'N')
		fprintf(f, "%09ld", c->ns);
	else if (fmt_strftime(buf, sizeof buf, sf, &c->tm))
		fputs(buf, f);
}

void sub_fmt_print(FILE *f, const char *format, int eol, const struct e2e_client_msg *m)
{
	struct clock c = { 0 };
	size_t len = strlen(format);

	for (size_t i = 0; i < len; i++) {
		char ch = format[i];

		if (ch == '%' && i < len - 1) {
			struct spec sp;

			i++;
			sp = parse_spec(format, len, &i);
			put_conv(f, format[i], &sp, m, &c);
		} else if (ch == '@' && i < len - 1) {
			put_time(f, format[++i], &c);
		} else if (ch == '\\' && i < len - 1) {
			put_escape(f, format[++i]);
		} else if (ch != '%' && ch != '@' && ch != '\\') {
			fputc(ch, f);
		}
	}
	if (eol)
		fputc('\n', f);
}

/* mosquitto's sequences and ours (%V %n %e %s %o %g). */
static const char conversions[] = "%ACDEFIjJlmpPqRrStUxXVnesog";

int sub_fmt_check(const char *format, char *why, size_t cap)
{
	size_t len = strlen(format), i;

	/* The same refusals, in the same order, as mosquitto_sub's -F check. */
	for (i = 0; i < len; i++) {
		if (format[i] == '%') {
			if (i == len - 1)
				goto incomplete;
			if (format[i + 1] == '0' || format[i + 1] == '-')
				if (++i == len - 1)
					goto incomplete;
			while (format[i + 1] >= '0' && format[i + 1] <= '9')
				if (++i == len - 1)
					goto incomplete;
			if (format[i + 1] == '.') {
				if (++i == len - 1)
					goto incomplete;
				while (format[i + 1] >= '0' && format[i + 1] <= '9')
					if (++i == len - 1)
						goto incomplete;
			}
			if (!strchr(conversions, format[i + 1])) {
				snprintf(why, cap, "invalid format specifier '%c'", format[i + 1]);
				return -1;
			}
			i++;
		} else if (format[i] == '@') {
			if (i == len - 1)
				goto incomplete;
			i++;
		} else if (format[i] == '\\') {
			if (i == len - 1) {
				snprintf(why, cap, "incomplete escape specifier");
				return -1;
			}
			if (!strchr("\\0aenrtv", format[i + 1])) {
				snprintf(why, cap, "invalid escape specifier '%c'", format[i + 1]);
				return -1;
			}
			i++;
		}
	}
	return 0;
incomplete:
	snprintf(why, cap, "incomplete format specifier");
	return -1;
}
