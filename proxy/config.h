/*
 * e2e-proxy configuration: a file of "name value" lines ('#' comments) and
 * the same names as command-line flags (--name value), flags winning.
 */
#ifndef E2E_PROXY_CONFIG_H
#define E2E_PROXY_CONFIG_H

#include "hostport.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROXY_LISTEN_MAX 8

enum unmapped_policy { UNMAPPED_REFUSE = 0, UNMAPPED_PLAINTEXT };

struct proxy_config {
	char *config_file;
	char *listen[PROXY_LISTEN_MAX];
	int nlisten;
	int listen_from_flags;        /* --listen given: the file's listen lines are dropped */
	char *broker;                 /* host:port, or a comma list of them (failover) */
	int broker_from_flags;        /* --broker given: the file's broker lines are dropped */
	int tls;                      /* TLS to the broker (default on) */
	char *cafile, *capath;
	int insecure;                 /* no certificate / hostname verification */
	char *tls_min;                /* "1.2" or "1.3" */
	char *ciphers;
	char *cert, *key;             /* may contain %c = client id */
	char *psk, *psk_identity;
	char *alpn;                   /* comma-separated */
	char *sni;                    /* server name (default: broker host) */
	char *credentials;            /* file: client-id username password */
	int listen_tls;               /* TLS towards publishers too */
	char *listen_cert, *listen_key, *listen_cafile;
	char *dir;                    /* sender state directory */
	char *control_topic;
	char *service_id;             /* client id of the key service connection */
	char *service_username;       /* its username (else its credentials line) */
	char *service_password_file;  /* its password, first line of a 0600 file */
	int unmapped;                 /* enum unmapped_policy */
	uint32_t max_connections;
	uint32_t max_packet;
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms;     /* 0: 1.5 x the client's keepalive */
	uint32_t drain_timeout_ms;
	uint32_t summary_ms;
	uint64_t rotate_age_ms, rotate_messages, grace_ms, rotate_lead_ms;
	int log_level;                /* LOG_ERR..LOG_DEBUG (syslog levels) */
	int syslog;
	char *stats_socket;
	char *user;
	int check_only;
	int foreground;
	/* Operators' observability (metrics.c, log.c). */
	char *metrics_listen;         /* ADDR:PORT for Prometheus, NULL: off */
	int log_json;                 /* log-format json */
};

/* Defaults, then the config file named by --config (if any), then flags.
 * Returns 0, or 1 after printing a precise error (2 for --help/--version). */
int proxy_config_load(struct proxy_config *c, int argc, char **argv);
void proxy_config_free(struct proxy_config *c);

/* Split "host:port" / "[v6]:port"; returns 0 or -1. */

void proxy_usage(FILE *out);

#endif
