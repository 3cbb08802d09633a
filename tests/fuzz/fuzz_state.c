/*
 * libFuzzer target for the files a sender or receiver reads at start: the
 * receiver's window file, the sender's reservation file and an identity
 * secret file (each written from the input to a file in /dev/shm, then
 * loaded through the real loaders). Invariants: no crash, and a receiver
 * that refused a file is left empty (never a silent partial load).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/e2e.h"

static char path[64];

static void put(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct e2e_rx_config rc = { 8, 64, NULL, 0 };
	struct e2e_rx *rx = NULL;
	struct e2e_rx_stats st;
	struct e2e_identity id;
	struct e2e_keyid kid = { 1, 1, 1 };
	uint32_t epochs[256];
	uint64_t ceiling;

	if (!path[0]) {
		if (e2e_init() != E2E_OK)
			abort();
		snprintf(path, sizeof path, "/dev/shm/e2e-fuzz-state-%ld", (long)getpid());
	}
	put(data, size);
	if (e2e_rx_create(&rx, &rc) != E2E_OK)
		abort();
	if (e2e_rx_load(rx, path) != E2E_OK) {
		e2e_rx_stats(rx, &st);
		if (st.streams != 0)
			abort();   /* refused, yet something stayed loaded */
	}
	e2e_rx_destroy(rx);
	(void)e2e_txstate_get(path, &kid, &ceiling);
	(void)e2e_txstate_epochs(path, 1, epochs);
	(void)e2e_identity_load(&id, path);
	e2e_identity_destroy(&id);
	unlink(path);
	return 0;
}
