/*
 * libFuzzer target for e2e-proxy's configuration file: arbitrary text as
 * the --config file, parsed by the real loader (with the command line the
 * proxy would get). It must accept or refuse with a message, never crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	char *argv[] = { "e2e-proxy", "--config", path, "--broker", "127.0.0.1:8883", NULL };
	struct proxy_config c;
	FILE *f;
	int rc;

	int saved, null;

	if (!path[0])
		snprintf(path, sizeof path, "/dev/shm/e2e-fuzz-config-%ld", (long)getpid());
	f = fopen(path, "w");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	/* Its error messages are expected: silence them during the call only, so
	 * sanitizer reports and libFuzzer's own output still reach stderr. */
	fflush(stderr);
	saved = dup(2);
	null = open("/dev/null", O_WRONLY);
	if (saved < 0 || null < 0 || dup2(null, 2) < 0)
		abort();
	close(null);
	rc = proxy_config_load(&c, 5, argv);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (rc == 0 && (!c.broker || c.nlisten < 1))
		abort();   /* accepted but incomplete */
	proxy_config_free(&c);
	unlink(path);
	return 0;
}
