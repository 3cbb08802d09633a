/*
 * What the proxy does to MQTT traffic. From the publisher: CONNECT is
 * checked (its will payload sealed, credentials injected), PUBLISH payloads
 * are sealed for the topic's scope (aliases resolved first: the envelope is
 * bound to the real topic), everything else passes unchanged. From the
 * broker: bytes pass unchanged; acknowledgements are counted so SIGTERM
 * can wait for in-flight QoS 1/2.
 */
#include <stdlib.h>
#include <string.h>

#include <MQTTReasonCodes.h>

#include "e2e/control.h"
#include "e2e/envelope.h"
#include "log.h"
#include "proxy.h"

static size_t out_limit(const struct conn *c)
{
	return (size_t)c->px->cfg.max_packet * 2 + (512U * 1024U);
}

/* The broker side does not keep up and back-pressure did not hold: say so. */
static int out_full(struct conn *c)
{
	plog(LOG_WARNING, "%s (%s): broker does not keep up: output limit (%zu bytes) reached",
		c->peer, c->client_id, out_limit(c));
	return -1;
}

/*
 * QoS 2 through a broker that downgrades it. MQTT 3.1.1 brokers that do not
 * implement QoS 2 (RabbitMQ 3.x) answer a QoS 2 PUBLISH with PUBACK; a
 * publisher waiting for PUBREC treats that as a protocol error (mosquitto
 * clients disconnect) or hangs. The proxy completes the publisher's flow
 * itself: the broker's PUBACK goes to the publisher as PUBREC (same layout,
 * same id and, in 5.0, same reason), and the publisher's PUBREL for that id
 * is answered here with PUBCOMP instead of going to a broker that expects
 * none. The broker then delivers at least once; a copy it delivers twice
 * carries the same envelope, which subscribers drop as a replay.
 */
#define Q2_BITMAP (65536U / 8U)

static int q2_get(const struct conn *c, int which, uint16_t id)
{
	return c->q2 && (c->q2[(size_t)which * Q2_BITMAP + id / 8U] >> (id % 8U)) & 1U;
}

static void q2_set(struct conn *c, int which, uint16_t id, int on)
{
	uint8_t *b = c->q2 + (size_t)which * Q2_BITMAP + id / 8U;

	*b = (uint8_t)(on ? *b | (1U << (id % 8U)) : *b & ~(1U << (id % 8U)));
}

/* The publisher's PUBREL: 1 when it is ours to answer (PUBCOMP queued), 0 to relay. */
static int q2_pubrel(struct conn *c, const uint8_t *pkt, size_t len)
{
	uint8_t comp[4];
	uint16_t id;

	if (!c->q2 || mqtt_parse_ack(pkt, len, &id) != MQTT_OK || !q2_get(c, 1, id))
		return 0;
	q2_set(c, 1, id, 0);
	/* 3.1.1 and 5.0 alike: Remaining Length 2 means reason 0x00 (Success). */
	comp[0] = MQTT_PUBCOMP << 4;
	comp[1] = 2;
	comp[2] = (uint8_t)(id >> 8);
	comp[3] = (uint8_t)id;
	return buf_append(&c->dout, comp, sizeof comp, out_limit(c)) == 0 ? 1 : -1;
}

/* A broker PUBACK/PUBREC: turn a PUBACK for one of our QoS 2 ids into PUBREC. */
static void q2_broker_ack(struct conn *c, uint8_t *pkt, size_t len)
{
	int type = pkt[0] >> 4;
	uint16_t id;
	uint8_t reason;

	if (!c->q2 || (type != MQTT_PUBACK && type != MQTT_PUBREC) ||
	    mqtt_parse_ack_reason(pkt, len, &id, &reason) != MQTT_OK || !q2_get(c, 0, id))
		return;
	q2_set(c, 0, id, 0);
	if (type == MQTT_PUBREC)
		return;   /* a broker that speaks QoS 2: nothing to do */
	pkt[0] = MQTT_PUBREC << 4;
	/* A 5.0 failure reason ends the flow: no PUBREL will come. */
	if (reason < 0x80)
		q2_set(c, 1, id, 1);
	if (!c->q2_noted) {
		c->q2_noted = 1;
		plog(LOG_NOTICE, "%s (%s): broker answered a QoS 2 PUBLISH with PUBACK (it "
			"downgrades QoS 2 to 1): the proxy completes the publisher's QoS 2 flow "
			"itself; the broker delivers at least once, subscribers drop duplicates",
			c->peer, c->client_id);
	}
}

/*
 * The broker closed the connection. A 5.0 CONNECT it never answered is the
 * mark of a 3.1.1-only broker (RabbitMQ 3.x closes without CONNACK): the
 * proxy does not downgrade the session (5.0 properties would be lost without
 * a word), it refuses it the 5.0 way, CONNACK 0x84 "Unsupported Protocol
 * Version", so the publisher is told why instead of seeing a bare close.
 */
void relay_broker_closed(struct conn *c)
{
	uint8_t ack[5];
	size_t n;

	if (c->connack_seen || c->version != MQTT_V5 || c->st != ST_RELAY)
		return;
	n = mqtt_write_connack(ack, MQTT_V5, 0x84);
	(void)buf_append(&c->dout, ack, n, out_limit(c));
	plog(LOG_WARNING, "%s (%s): broker closed an MQTT 5 connection without CONNACK: it "
		"speaks MQTT 3.1.1 only? refused to the publisher with CONNACK 0x84 (unsupported "
		"protocol version); connect it with MQTT 3.1.1", c->peer, c->client_id);
}

/*
 * Seal @p pt for @p topic into the proxy's scratch buffer. Returns 1 when
 * sealed (*env set), 0 when the topic is in no scope and policy lets it pass
 * as plaintext, RELAY_PARKED when no durable counter reservation is ready
 * (nothing changed: the caller stops and retries this packet after the
 * ticker's round; the loop never waits on the disk), -1 when it must be
 * refused (logged).
 */
static int seal(struct conn *c, int will, const uint8_t *topic, size_t tlen,
	struct mqtt_span pt, struct mqtt_span *env)
{
	struct proxy *px = c->px;
	size_t elen = 0;
	enum e2e_status st;
	char t[256];

	/* A will gets a run of its own: unpublished, it is no gap (SPEC 5.1). */
	st = e2e_publisher_seal_nowait(px->keys, will, px->scratch, px->scratch_cap, &elen,
		(const char *)topic, tlen, pt.p, pt.len);
	if (st == E2E_OK) {
		env->p = px->scratch;
		env->len = elen;
		px->st.sealed++;
		c->park_expired = 0;
		return 1;
	}
	if ((st == E2E_ERR_RESERVE || st == E2E_ERR_EXHAUSTED) && !c->park_expired)
		return RELAY_PARKED;   /* counted by the publisher: seals_parked */
	snprintf(t, sizeof t, "%.*s", (int)(tlen > 200 ? 200 : tlen), (const char *)topic);
	if (st == E2E_ERR_NOT_FOUND && px->cfg.unmapped == UNMAPPED_PLAINTEXT) {
		px->st.plaintext_passed++;
		plog(LOG_NOTICE, "%s: topic '%s' is in no scope: passed as PLAINTEXT (unmapped = "
			"plaintext)", c->client_id, t);
		*env = pt;
		c->park_expired = 0;
		return 0;
	}
	px->st.refused_publishes++;
	if (c->park_expired)
		px->st.park_timeouts++;
	/* The sender refuses the control and reply topics (E2E_ERR_PERM). */
	plog(LOG_WARNING, "%s (%s): refused %s to '%s': %s", c->peer, c->client_id,
		will ? "will" : "publish", t,
		st == E2E_ERR_NOT_FOUND ? "topic is in no key scope (unmapped = refuse)" :
		st == E2E_ERR_PERM ? "reserved for key distribution" :
		c->park_expired ? "no durable counter reservation within the bound (5 s): the "
			"state directory's disk slow or full?" : e2e_strerror(st));
	return -1;
}

static int on_connect(struct conn *c, const uint8_t *pkt, size_t len)
{
	struct proxy *px = c->px;
	struct mqtt_connect cn;
	struct mqtt_span will = { NULL, 0 }, user, pass;
	const char *u = NULL, *pw = NULL;
	enum mqtt_status ms;
	size_t need = 0;

	ms = mqtt_parse_connect(pkt, len, &cn);
	if (ms == MQTT_UNSUPPORTED) {
		/* MQTT-3.1.2-2: CONNACK 0x01, then close (conn_close sends dout). The
		 * 3.1.1 form: the level is not one we know, so neither is the 5.0 form. */
		uint8_t ack[5];
		size_t n = mqtt_write_connack(ack, MQTT_V311, MQTT_CONNACK_BAD_PROTOCOL);

		px->st.malformed++;
		plog(LOG_WARNING, "%s: CONNECT with unsupported protocol level %u: refused (CONNACK "
			"0x01)", c->peer, (unsigned)cn.version);
		(void)buf_append(&c->dout, ack, n, out_limit(c));
		return -1;
	}
	if (ms != MQTT_OK) {
		px->st.malformed++;
		plog(LOG_WARNING, "%s: bad CONNECT: %s", c->peer, mqtt_strerror(ms));
		return -1;
	}
	c->version = cn.version;
	c->keepalive = cn.keepalive;
	snprintf(c->client_id, sizeof c->client_id, "%.*s",
		(int)(cn.client_id.len < sizeof c->client_id ? cn.client_id.len :
			sizeof c->client_id - 1), (const char *)cn.client_id.p);
	if (cn.will) {
		/* Parked like a PUBLISH: everything above is redone alike when the
		 * CONNECT is processed again, and nothing below has run yet. */
		int r = seal(c, 1, cn.will_topic.p, cn.will_topic.len, cn.will_payload, &will);

		if (r < 0 || r == RELAY_PARKED)
			return r;
	}
	if (!strcmp(c->client_id, px->service_id)) {
		/* The key service's identity on the broker: a publisher using it
		 * would knock the key service off (MQTT takes over the session). */
		static const uint8_t rej4[] = { 0x20, 0x02, 0x00, 0x02 };        /* identifier rejected */
		static const uint8_t rej5[] = { 0x20, 0x03, 0x00, 0x85, 0x00 };  /* client id not valid */

		plog(LOG_WARNING, "%s: refused client id '%s': it is the key service's "
			"(CONNACK identifier rejected)", c->peer, c->client_id);
		if (cn.version == MQTT_V5)
			(void)buf_append(&c->dout, rej5, sizeof rej5, sizeof rej5);
		else
			(void)buf_append(&c->dout, rej4, sizeof rej4, sizeof rej4);
		return -1;
	}
	if (upstream_credentials(px, c->client_id, &u, &pw) == 0) {
		user = (struct mqtt_span){ (const uint8_t *)u, strlen(u) };
		pass = (struct mqtt_span){ (const uint8_t *)pw, strlen(pw) };
	}
	/* Size first, then the real write into a buffer of that size. */
	ms = mqtt_write_connect(NULL, 0, &need, &cn, will, 1, u ? &user : NULL, pw ? &pass : NULL);
	if (ms != MQTT_BUFFER && ms != MQTT_OK)
		return -1;
	c->connect_pkt = malloc(need);
	if (!c->connect_pkt ||
	    mqtt_write_connect(c->connect_pkt, need, &c->connect_len, &cn, will, 1,
		    u ? &user : NULL, pw ? &pass : NULL) != MQTT_OK) {
		plog(LOG_ERR, "%s: cannot rewrite CONNECT", c->peer);
		return -1;
	}
	plog(LOG_INFO, "%s: client '%s' MQTT %s%s", c->peer, c->client_id,
		cn.version == MQTT_V5 ? "5" : cn.version == MQTT_V311 ? "3.1.1" : "3.1",
		cn.will ? " with will (sealed)" : "");
	return 0;
}

/* v5 topic aliases: the envelope must bind the real topic name. */
static int resolve_alias(struct conn *c, struct mqtt_publish *p, struct mqtt_span *topic)
{
	struct alias *a = NULL;

	*topic = p->topic;
	if (!p->has_alias)
		return 0;
	for (uint32_t i = 0; i < c->naliases; i++)
		if (c->aliases[i].id == p->alias)
			a = &c->aliases[i];
	if (p->topic.len) {
		char *t = malloc(p->topic.len);

		if (!t)
			return -1;
		memcpy(t, p->topic.p, p->topic.len);
		if (!a) {
			if (c->naliases == ALIAS_MAX) {
				free(t);
				plog(LOG_WARNING, "%s: more than %u topic aliases", c->client_id, ALIAS_MAX);
				return -1;
			}
			a = &c->aliases[c->naliases++];
			a->id = p->alias;
		} else {
			free(a->topic);
		}
		a->topic = t;
		a->len = (uint16_t)p->topic.len;
		return 0;
	}
	if (!a) {
		plog(LOG_WARNING, "%s: topic alias %u used before it was set", c->client_id, p->alias);
		return -1;
	}
	*topic = (struct mqtt_span){ (const uint8_t *)a->topic, a->len };
	return 0;
}

static int on_publish(struct conn *c, const uint8_t *pkt, size_t len)
{
	struct mqtt_publish p;
	struct mqtt_span topic, env;
	enum mqtt_status ms;
	size_t need = 0;
	uint8_t *at;
	int r;

	ms = mqtt_parse_publish(pkt, len, c->version, &p);
	if (ms != MQTT_OK) {
		c->px->st.malformed++;
		plog(LOG_WARNING, "%s (%s): bad PUBLISH: %s", c->peer, c->client_id,
			mqtt_strerror(ms));
		return -1;
	}
	/*
	 * A parked PUBLISH is processed again from here: resolve_alias sets
	 * the same alias to the same topic again, and nothing else changes
	 * before seal() says it is not parked (counters, QoS 2 ids, inflight).
	 */
	if (resolve_alias(c, &p, &topic) != 0)
		r = -1;
	else if ((r = seal(c, 0, topic.p, topic.len, p.payload, &env)) == RELAY_PARKED)
		return r;
	c->px->st.publishes++;
	if (p.qos < 3)
		c->px->st.publishes_qos[p.qos]++;
	if (r < 0)
		return -1;
	/* Room for the rewritten packet: header, topic, properties, envelope. */
	need = 5 + 2 + topic.len + 2 + 5 + p.props.len + env.len;
	at = buf_reserve(&c->uout, need, out_limit(c));
	if (!at)
		return out_full(c);
	ms = mqtt_write_publish(at, need, &need, c->version, &p, topic, env);
	if (ms != MQTT_OK) {
		plog(LOG_ERR, "%s: cannot rewrite PUBLISH: %s", c->client_id, mqtt_strerror(ms));
		return -1;
	}
	c->uout.len += need;
	if (p.qos > 0)
		c->inflight++;
	if (r == 1) {
		if (p.qos < 3)
			c->px->st.sealed_qos[p.qos]++;
		c->batch_pubs++;
	}
	if (p.qos == 2) {
		if (!c->q2 && !(c->q2 = calloc(2, Q2_BITMAP)))
			return -1;
		q2_set(c, 0, p.packet_id, 1);
		q2_set(c, 1, p.packet_id, 0);
	}
	return 0;
}

/* Frame what the publisher sent; whole packets are consumed once at the end. */
int relay_down(struct conn *c)
{
	struct proxy *px = c->px;
	size_t off = 0;
	int r = 0;

	c->din_need = 0;
	while (off < c->din.len) {
		const uint8_t *pkt = c->din.p + off;
		size_t plen, hlen;
		enum mqtt_status ms = mqtt_frame(pkt, c->din.len - off, px->cfg.max_packet, &plen,
			&hlen);
		int type;

		if (ms == MQTT_NEED_MORE) {
			c->din_need = plen;   /* read until it is whole, even past the window */
			break;
		}
		if (ms != MQTT_OK) {
			px->st.malformed++;
			plog(LOG_WARNING, "%s (%s): %s from publisher", c->peer,
				c->client_id[0] ? c->client_id : "-", mqtt_strerror(ms));
			return -1;
		}
		type = pkt[0] >> 4;
		if (c->st == ST_CONNECT) {
			if (type != MQTT_CONNECT) {
				plog(LOG_WARNING, "%s: first packet is not CONNECT", c->peer);
				return -1;
			}
			r = on_connect(c, pkt, plen);
			if (r != 0)
				return r < 0 ? -1 : r;   /* RELAY_PARKED: the CONNECT stays in din */
			off += plen;
			/* The rest waits until the upstream is ready; conn.c dials
			 * it (relay never reaches back into the connection). */
			r = RELAY_DIAL;
			break;
		}
		if (c->st != ST_RELAY)
			break;
		if (type == MQTT_CONNECT) {
			plog(LOG_WARNING, "%s (%s): second CONNECT", c->peer, c->client_id);
			return -1;
		}
		if (type == MQTT_PUBLISH)
			r = on_publish(c, pkt, plen);
		else if (type == MQTT_PUBREL && (r = q2_pubrel(c, pkt, plen)) != 0)
			r = r < 0 ? out_full(c) : 0;
		else if (buf_append(&c->uout, pkt, plen, out_limit(c)) != 0)
			r = out_full(c);
		if (r == RELAY_PARKED)
			break;   /* it and all after it stay in din, in order */
		if (r != 0)
			return -1;
		off += plen;
	}
	/* The publisher's plaintext (payloads, a CONNECT password) leaves no copy behind. */
	if (off)
		buf_consume_wipe(&c->din, off);
	return r;
}

/*
 * A broker packet that ends a QoS 1/2 flow of ours: PUBACK, PUBCOMP, or a
 * 5.0 PUBREC with a failure reason (>= 0x80: no PUBREL follows). The reason
 * code's offset depends on the Remaining Length's size, so it is read
 * through the codec, never at a fixed index.
 */
static int ack_ends_flow(const uint8_t *pkt, size_t len, uint8_t version)
{
	uint16_t id;
	uint8_t reason;
	int type = pkt[0] >> 4;

	if (type == MQTT_PUBACK || type == MQTT_PUBCOMP)
		return 1;
	return type == MQTT_PUBREC && version == MQTT_V5 &&
		mqtt_parse_ack_reason(pkt, len, &id, &reason) == MQTT_OK && reason >= 0x80;
}

/* The broker refused a publisher's CONNECT: say why in the proxy's log too
 * (the publisher gets the CONNACK itself). */
static void log_refusal(const struct conn *c, uint8_t rc)
{
	static const char *v311[] = { NULL, "unacceptable protocol version",
		"identifier rejected", "server unavailable", "bad user name or password",
		"not authorized" };
	const char *why = c->version == MQTT_V5 ?
		MQTTReasonCode_toString((enum MQTTReasonCodes)rc) :
		rc < sizeof v311 / sizeof v311[0] ? v311[rc] : NULL;

	plog(LOG_WARNING, "%s (%s): broker refused the connection: %s (CONNACK %u)", c->peer,
		c->client_id, why ? why : "unknown reason", rc);
}

int relay_up_frames(struct conn *c)
{
	size_t off = 0;

	/* Broker bytes go to the publisher as they are; only look at whole
	 * packets to count acknowledgements of in-flight QoS 1/2. */
	while (off < c->uin.len) {
		uint8_t *pkt = c->uin.p + off;
		size_t plen, hlen;
		enum mqtt_status ms = mqtt_frame(pkt, c->uin.len - off, MQTT_MAX_REMAINING + 5U,
			&plen, &hlen);
		if (ms == MQTT_NEED_MORE)
			break;
		if (ms != MQTT_OK) {
			plog(LOG_WARNING, "%s: malformed packet from broker: %s", c->client_id,
				mqtt_strerror(ms));
			return -1;
		}
		if (pkt[0] >> 4 == MQTT_CONNACK)
			c->connack_seen = 1;
		if ((pkt[0] >> 4) == MQTT_CONNACK && plen >= hlen + 2 && pkt[hlen + 1] != 0)
			log_refusal(c, pkt[hlen + 1]);
		if (ack_ends_flow(pkt, plen, c->version) && c->inflight)
			c->inflight--;
		q2_broker_ack(c, pkt, plen);
		off += plen;
	}
	/* Whole packets, in one copy. */
	if (off && buf_append(&c->dout, c->uin.p, off, out_limit(c)) != 0) {
		plog(LOG_WARNING, "%s (%s): publisher does not read: output limit reached", c->peer,
			c->client_id);
		return -1;
	}
	if (off)
		buf_consume(&c->uin, off);
	return 0;
}
