/*
 * e2e-pub -D: MQTT 5 PUBLISH properties, as mosquitto_pub(1) takes them
 * ("-D publish IDENTIFIER VALUE", "-D publish user-property NAME VALUE").
 * They are sent in plaintext and unauthenticated (SPEC 1), and e2e-pub
 * says so; what cannot go with a sealed payload is refused with the reason.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cliopts.h"
#include "pub.h"

static const struct {
	const char *name;
	int id;
	const char *refused;          /* why it cannot apply, or NULL */
} known[] = {
	{ "content-type", 3, NULL },
	{ "correlation-data", 9, NULL },
	{ "message-expiry-interval", 2, NULL },
	{ "response-topic", 8, NULL },
	{ "user-property", 38, NULL },
	{ "payload-format-indicator", 1, "the payload on the wire is a binary envelope, never "
		"UTF-8 text, so a broker could refuse it" },
	{ "topic-alias", 35, "the topic is bound into each envelope and must travel in full" },
};

int pub_prop_opt(struct pub_props *pp, const char *command, int argc, char **argv)
{
	const char *ident = optind < argc ? argv[optind] : NULL;
	unsigned long v;
	size_t i;
	struct e2e_mqtt_property *q;

	if (strcasecmp(command, "publish") != 0) {
		fprintf(stderr, "%s: -D %s: only PUBLISH properties are sent (CONNECT, WILL and "
			"DISCONNECT properties are not offered)\n", PUB_PROG, command);
		return -1;
	}
	for (i = 0; ident && i < sizeof known / sizeof known[0]; i++)
		if (!strcmp(known[i].name, ident))
			break;
	if (!ident || i == sizeof known / sizeof known[0]) {
		fprintf(stderr, "%s: -D publish: unknown property '%s'\n", PUB_PROG,
			ident ? ident : "");
		return -1;
	}
	if (known[i].refused) {
		fprintf(stderr, "%s: -D publish %s is not supported: %s\n", PUB_PROG, ident,
			known[i].refused);
		return -1;
	}
	if (pp->n == PUB_PROPS_MAX || optind + (known[i].id == 38 ? 2 : 1) >= argc) {
		fprintf(stderr, "%s: -D publish %s: %s\n", PUB_PROG, ident, pp->n == PUB_PROPS_MAX ?
			"too many properties" : "value missing");
		return -1;
	}
	q = &pp->p[pp->n];
	memset(q, 0, sizeof *q);
	q->id = known[i].id;
	optind++;
	if (q->id == 38)
		q->name = argv[optind++];
	q->value = argv[optind++];
	q->value_len = strlen(q->value);
	if (q->id == 2) {
		if (cli_number("-D publish message-expiry-interval", q->value, 0, 4294967295UL,
				&v) != 0)
			return -1;
		q->num = (uint32_t)v;
	}
	pp->n++;
	return 0;
}
