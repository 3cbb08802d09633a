/* e2e-proxy: edge proxy that encrypts MQTT payloads end to end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/common.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"

int main(int argc, char **argv)
{
	static struct proxy px;
	int rc;

	px.argc = argc;
	px.argv = argv;
	rc = proxy_config_load(&px.cfg, argc, argv);
	if (rc)
		return rc == 2 ? 0 : 1;
	plog_init(px.cfg.log_level, px.cfg.syslog);
	plog_set_json(px.cfg.log_json);
	if (e2e_init() != E2E_OK) {
		plog(LOG_ERR, "libsodium failed to initialise");
		return 1;
	}
	px.statsfd = -1;   /* none bound yet: teardown must not remove anyone's socket */
	if (px.cfg.check_only) {
		rc = proxy_check(&px);
		if (rc == 0)
			printf("configuration OK\n");
		else
			fprintf(stderr, "e2e-proxy: configuration has %d problem(s), listed above\n", rc);
		proxy_teardown(&px);
		return rc ? 1 : 0;
	}
	/* Signals are blocked before any thread (Paho's) starts. Privileges
	 * go right after binding: the state, certificates and credentials are
	 * read as the service user, as SIGHUP will read them again, and the
	 * owner checks of the state files hold against that user. */
	if (proxy_loop_init(&px) != 0 || proxy_drop_privileges(&px) != 0 ||
	    proxy_setup(&px) != 0) {
		proxy_teardown(&px);
		proxy_loop_free(&px);
		return 1;
	}
	plog(LOG_INFO, "relaying to %s (%s%s)", px.cfg.broker, px.cfg.tls ? "TLS" : "plain TCP",
		px.ups.n > 1 ? "; failover in this order" : "");
	rc = proxy_loop_run(&px);
	proxy_teardown(&px);   /* unlinks the stats socket while statsfd still says it is ours */
	proxy_loop_free(&px);
	plog(LOG_INFO, "exited");
	return rc;
}
