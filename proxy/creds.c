/*
 * Per-client credentials injected into CONNECT (e.g. a broker that wants a
 * username/password per device while the devices have none): a file of
 * "client-id username password" lines, '#' comments. It holds secrets, so
 * it must not be group/world readable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"

void creds_free(struct proxy *px)
{
	for (uint32_t i = 0; i < px->ncreds; i++) {
		free(px->cred_ids[i]);
		free(px->cred_users[i]);
		if (px->cred_pass[i]) {
			sodium_memzero(px->cred_pass[i], strlen(px->cred_pass[i]));
			free(px->cred_pass[i]);
		}
	}
	free(px->cred_ids);
	free(px->cred_users);
	free(px->cred_pass);
	px->cred_ids = px->cred_users = px->cred_pass = NULL;
	px->ncreds = 0;
}

static int add(struct proxy *px, const char *id, const char *user, const char *pass)
{
	uint32_t n = px->ncreds + 1;
	char **a = realloc(px->cred_ids, n * sizeof *a);

	if (!a)
		return -1;
	px->cred_ids = a;
	a = realloc(px->cred_users, n * sizeof *a);
	if (!a)
		return -1;
	px->cred_users = a;
	a = realloc(px->cred_pass, n * sizeof *a);
	if (!a)
		return -1;
	px->cred_pass = a;
	px->cred_ids[px->ncreds] = strdup(id);
	px->cred_users[px->ncreds] = strdup(user);
	px->cred_pass[px->ncreds] = strdup(pass);
	px->ncreds = n;
	return 0;
}

/* The key service's password: the first line of a private file. */
static int service_pass_load(struct proxy *px)
{
	const char *path = px->cfg.service_password_file;
	char line[512];
	struct stat sb;
	FILE *f;
	int ret = -1;

	if (px->service_pass) {
		memset(px->service_pass, 0, strlen(px->service_pass));
		free(px->service_pass);
		px->service_pass = NULL;
	}
	if (!path)
		return 0;
	f = fopen(path, "r");
	if (!f) {
		plog(LOG_ERR, "service-password-file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		plog(LOG_ERR, "service-password-file %s: not a regular file", path);
	} else if ((sb.st_mode & 077) || sb.st_uid != geteuid()) {
		plog(LOG_ERR, "service-password-file %s: must be mode 0600 and owned by uid %u "
			"(it is mode %04o, uid %u)", path, (unsigned)geteuid(),
			(unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid);
	} else if (!fgets(line, sizeof line, f) || (line[strcspn(line, "\r\n")] = '\0',
		   line[0] == '\0')) {
		plog(LOG_ERR, "service-password-file %s: empty", path);
	} else {
		px->service_pass = strdup(line);
		ret = px->service_pass ? 0 : -1;
	}
	memset(line, 0, sizeof line);
	fclose(f);
	return ret;
}

int upstream_credentials(const struct proxy *px, const char *client_id, const char **user,
	const char **pass)
{
	/* The key service: its own settings first, else its credentials line
	 * like any client id. */
	if (!strcmp(client_id, px->service_id) && px->cfg.service_username) {
		*user = px->cfg.service_username;
		*pass = px->service_pass;
		return 0;
	}
	return creds_find(px, client_id, user, pass);
}

int creds_load(struct proxy *px)
{
	const char *path = px->cfg.credentials;
	char line[1024], id[256], user[256], pass[512], iobuf[4096];
	struct stat sb;
	unsigned n = 0;
	FILE *f;
	int ret = 0;

	creds_free(px);
	if (service_pass_load(px) != 0)
		return -1;
	if (!path)
		return 0;
	f = fopen(path, "r");
	if (!f) {
		plog(LOG_ERR, "cannot open credentials %s: %s", path, strerror(errno));
		return -1;
	}
	/* Our buffer, not stdio's: it is wiped after fclose. */
	setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		plog(LOG_ERR, "credentials %s: not a regular file", path);
		fclose(f);
		return -1;
	}
	if ((sb.st_mode & 077) || sb.st_uid != geteuid()) {
		plog(LOG_ERR, "credentials %s: must be mode 0600 and owned by uid %u, it holds "
			"passwords (it is mode %04o, uid %u)", path, (unsigned)geteuid(),
			(unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid);
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		char *p = line + strspn(line, " \t");

		n++;
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		if (sscanf(p, "%255s %255s %511s", id, user, pass) != 3) {
			plog(LOG_ERR, "%s:%u: expected 'client-id username password'", path, n);
			ret = -1;
			break;
		}
		if (add(px, id, user, pass) != 0) {
			ret = -1;
			break;
		}
	}
	/* memset before a return may be optimised away; these hold passwords. */
	sodium_memzero(line, sizeof line);
	sodium_memzero(pass, sizeof pass);
	fclose(f);
	sodium_memzero(iobuf, sizeof iobuf);   /* stdio's copy of the file */
	return ret;
}

int creds_find(const struct proxy *px, const char *client_id, const char **user,
	const char **pass)
{
	for (uint32_t i = 0; i < px->ncreds; i++) {
		if (strcmp(px->cred_ids[i], client_id) == 0) {
			*user = px->cred_users[i];
			*pass = px->cred_pass[i];
			return 0;
		}
	}
	return -1;
}
