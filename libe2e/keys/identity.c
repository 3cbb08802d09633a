/*
 * Identity key pairs and their files (protocol/SPEC.md sec. 7).
 * Secret file: '#' comments, then "e2e-secret1 <base64(seed || x25519 sk)>".
 * Public line: "e2e1 <base64(ed25519 pk || x25519 pk)> [name]".
 */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "e2e/identity.h"
#include "state/fileio.h"

#define SECRET_TAG "e2e-secret1 "
#define PUBLIC_TAG "e2e1 "
#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL
#define SECRET_RAW 64U
#define B64_64 88U   /* base64 length of 64 bytes, padded */

static const char header_comment[] =
	"# mqtt-e2e identity: SECRET key, keep mode 0600, never share\n";

/* The secret block: libsodium's sk (seed || pk), then the X25519 secret. */
#define BLOCK_BYTES (E2E_SIGN_SK_BYTES + E2E_DH_BYTES)

/*
 * Fill @p id (output only) from the Ed25519 seed and the X25519 secret,
 * with the secrets in a fresh guarded block, read-only once written.
 */
static enum e2e_status from_secrets(struct e2e_identity *id, const uint8_t seed[32],
	const uint8_t dh_sk[32])
{
	static const uint8_t zero[E2E_DH_BYTES];
	enum e2e_status ret = E2E_ERR_NOMEM;
	uint8_t *blk;

	memset(id, 0, sizeof *id);
	blk = sodium_malloc(BLOCK_BYTES);
	if (!blk)
		goto out;
	id->sign_sk = blk;
	id->dh_sk = blk + E2E_SIGN_SK_BYTES;
	ret = E2E_ERR_CRYPTO;
	if (crypto_sign_seed_keypair(id->pub.sign_pk, blk, seed) != 0)
		goto out;
	memcpy(blk + E2E_SIGN_SK_BYTES, dh_sk, E2E_DH_BYTES);
	/* scalarmult_base rejects nothing, but a zero key means a broken sk. */
	ret = E2E_ERR_CORRUPT;
	if (crypto_scalarmult_base(id->pub.dh_pk, id->dh_sk) != 0 ||
	    sodium_memcmp(id->pub.dh_pk, zero, sizeof zero) == 0)
		goto out;
	ret = E2E_ERR_CRYPTO;
	if (sodium_mprotect_readonly(blk) != 0)
		goto out;
	ret = E2E_OK;
out:
	if (ret != E2E_OK)
		e2e_identity_destroy(id);
	return ret;
}

enum e2e_status e2e_identity_generate(struct e2e_identity *id)
{
	uint8_t seed[32], dh_sk[32];
	enum e2e_status ret;

	if (!id)
		return E2E_ERR_ARG;
	memset(id, 0, sizeof *id);
	if (sodium_init() < 0)
		return E2E_ERR_CRYPTO;
	randombytes_buf(seed, sizeof seed);
	randombytes_buf(dh_sk, sizeof dh_sk);
	ret = from_secrets(id, seed, dh_sk);
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(dh_sk, sizeof dh_sk);
	return ret;
}

enum e2e_status e2e_identity_from_secrets(struct e2e_identity *id, const uint8_t seed[32],
	const uint8_t dh_sk[E2E_DH_BYTES])
{
	if (!id)
		return E2E_ERR_ARG;
	memset(id, 0, sizeof *id);
	if (!seed || !dh_sk)
		return E2E_ERR_ARG;
	if (sodium_init() < 0)
		return E2E_ERR_CRYPTO;
	return from_secrets(id, seed, dh_sk);
}

void e2e_identity_destroy(struct e2e_identity *id)
{
	if (!id)
		return;
	/* sodium_free makes the block writable, zeroes it, then unmaps it. */
	if (id->sign_sk)
		sodium_free((void *)(uintptr_t)id->sign_sk);
	sodium_memzero(id, sizeof *id);
}

enum e2e_status e2e_identity_save(const struct e2e_identity *id, const char *path, int force)
{
	uint8_t raw[SECRET_RAW];
	char text[sizeof header_comment + sizeof SECRET_TAG + B64_64 + 2];
	size_t hl = sizeof header_comment - 1, tl = sizeof SECRET_TAG - 1;
	enum e2e_status ret;

	if (!id || !id->sign_sk || !path)
		return E2E_ERR_ARG;
	/* The Ed25519 seed is the first half of libsodium's secret key. */
	memcpy(raw, id->sign_sk, 32);
	memcpy(raw + 32, id->dh_sk, 32);
	memcpy(text, header_comment, hl);
	memcpy(text + hl, SECRET_TAG, tl);
	sodium_bin2base64(text + hl + tl, B64_64 + 1, raw, sizeof raw, B64_VARIANT);
	text[hl + tl + B64_64] = '\n';
	ret = e2e_file_write_atomic(path, (const uint8_t *)text, hl + tl + B64_64 + 1, !force);
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(text, sizeof text);
	return ret;
}

/* Find the single secret line in @p buf; E2E_ERR_CORRUPT on anything else. */
static enum e2e_status parse_secret(const char *buf, size_t len, uint8_t raw[SECRET_RAW])
{
	size_t off = 0, tl = sizeof SECRET_TAG - 1, rawlen;
	int found = 0;

	while (off < len) {
		const char *line = buf + off, *nl = memchr(line, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - line) : len - off;

		off += ll + (nl ? 1 : 0);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		if (found || ll != tl + B64_64 || memcmp(line, SECRET_TAG, tl) != 0)
			return E2E_ERR_CORRUPT;
		if (sodium_base642bin(raw, SECRET_RAW, line + tl, B64_64, NULL, &rawlen,
				NULL, B64_VARIANT) != 0 || rawlen != SECRET_RAW)
			return E2E_ERR_CORRUPT;
		found = 1;
	}
	return found ? E2E_OK : E2E_ERR_CORRUPT;
}

enum e2e_status e2e_identity_load(struct e2e_identity *id, const char *path)
{
	uint8_t *buf = NULL, raw[SECRET_RAW];
	size_t len = 0;
	enum e2e_status ret = E2E_ERR_ARG;

	if (!id)
		goto out;
	memset(id, 0, sizeof *id);   /* output only: never free what the caller left */
	if (!path)
		goto out;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = e2e_file_read(path, 1, &buf, &len);
	if (ret != E2E_OK)
		goto out;
	ret = parse_secret((const char *)buf, len, raw);
	if (ret != E2E_OK)
		goto out;
	ret = from_secrets(id, raw, raw + 32);
out:
	sodium_memzero(raw, sizeof raw);
	e2e_file_free(buf, len);
	return ret;
}

static int name_ok(const char *name, size_t len)
{
	if (len == 0 || len > E2E_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] < 0x21 || name[i] > 0x7e)
			return 0;
	return 1;
}

enum e2e_status e2e_public_format(char *out, size_t out_cap, const struct e2e_public *pub,
	const char *name)
{
	uint8_t raw[E2E_PUB_BYTES];
	size_t tl = sizeof PUBLIC_TAG - 1, nl = name ? strlen(name) : 0;
	size_t need = tl + B64_64 + (nl ? 1 + nl : 0) + 1;

	if (!out || !pub || (name && !name_ok(name, nl)))
		return E2E_ERR_ARG;
	if (out_cap < need)
		return E2E_ERR_BUFFER;
	memcpy(raw, pub->sign_pk, E2E_SIGN_PK_BYTES);
	memcpy(raw + E2E_SIGN_PK_BYTES, pub->dh_pk, E2E_DH_BYTES);
	memcpy(out, PUBLIC_TAG, tl);
	sodium_bin2base64(out + tl, B64_64 + 1, raw, sizeof raw, B64_VARIANT);
	if (nl) {
		out[tl + B64_64] = ' ';
		memcpy(out + tl + B64_64 + 1, name, nl);
	}
	out[need - 1] = '\0';
	return E2E_OK;
}

enum e2e_status e2e_public_parse(struct e2e_public *pub, char *name, size_t name_cap,
	const char *line)
{
	uint8_t raw[E2E_PUB_BYTES];
	size_t tl = sizeof PUBLIC_TAG - 1, len, rawlen, nl = 0;
	const char *rest;
	static const uint8_t zero[E2E_DH_BYTES];

	if (!pub || !line || (name && !name_cap))
		return E2E_ERR_ARG;
	len = strcspn(line, "\r\n");
	if (len < tl + B64_64 || memcmp(line, PUBLIC_TAG, tl) != 0)
		return E2E_ERR_MALFORMED;
	if (sodium_base642bin(raw, sizeof raw, line + tl, B64_64, NULL, &rawlen, NULL,
			B64_VARIANT) != 0 || rawlen != sizeof raw)
		return E2E_ERR_MALFORMED;
	rest = line + tl + B64_64;
	if (len > tl + B64_64) {
		if (rest[0] != ' ')
			return E2E_ERR_MALFORMED;
		nl = len - tl - B64_64 - 1;
		if (!name_ok(rest + 1, nl))
			return E2E_ERR_MALFORMED;
	}
	if (sodium_memcmp(raw + E2E_SIGN_PK_BYTES, zero, sizeof zero) == 0)
		return E2E_ERR_MALFORMED;
	if (name) {
		if (name_cap <= nl)
			return E2E_ERR_BUFFER;
		memcpy(name, rest + 1, nl);
		name[nl] = '\0';
	}
	memcpy(pub->sign_pk, raw, E2E_SIGN_PK_BYTES);
	memcpy(pub->dh_pk, raw + E2E_SIGN_PK_BYTES, E2E_DH_BYTES);
	return E2E_OK;
}

void e2e_public_fingerprint(char out[E2E_FINGERPRINT_LEN], const struct e2e_public *pub)
{
	static const char label[] = "mqtt-e2e/v1/fingerprint";
	crypto_generichash_state st;
	uint8_t h[16];
	char hex[33];
	size_t o = 4;

	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
	crypto_generichash_update(&st, pub->sign_pk, sizeof pub->sign_pk);
	crypto_generichash_update(&st, pub->dh_pk, sizeof pub->dh_pk);
	crypto_generichash_final(&st, h, sizeof h);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	memcpy(out, "e2e:", 4);
	for (size_t g = 0; g < 8; g++) {
		memcpy(out + o, hex + 4 * g, 4);
		o += 4;
		if (g < 7)
			out[o++] = ':';
	}
	out[o] = '\0';
}

uint32_t e2e_sender_id(const struct e2e_public *pub)
{
	static const char label[] = "mqtt-e2e/v1/sender-id";
	crypto_generichash_state st;
	uint8_t h[32];

	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
	crypto_generichash_update(&st, pub->sign_pk, sizeof pub->sign_pk);
	crypto_generichash_final(&st, h, sizeof h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Text forms for pipes (keytool genkey -o -, pubkey from stdin); the file
 * functions above keep their own copies so they stay unchanged. */
enum e2e_status e2e_identity_format(char *out, size_t out_cap, size_t *out_len,
	const struct e2e_identity *id)
{
	uint8_t raw[SECRET_RAW];
	size_t hl = sizeof header_comment - 1, tl = sizeof SECRET_TAG - 1;
	char b64[B64_64 + 1];

	if (!out || !out_len || !id || out_cap < hl + tl + B64_64 + 1)
		return E2E_ERR_ARG;
	memcpy(raw, id->sign_sk, 32);
	memcpy(raw + 32, id->dh_sk, 32);
	sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, B64_VARIANT);
	memcpy(out, header_comment, hl);
	memcpy(out + hl, SECRET_TAG, tl);
	memcpy(out + hl + tl, b64, B64_64);
	out[hl + tl + B64_64] = '\n';
	*out_len = hl + tl + B64_64 + 1;
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(b64, sizeof b64);
	return E2E_OK;
}

enum e2e_status e2e_identity_parse(struct e2e_identity *id, const char *text, size_t len)
{
	uint8_t raw[SECRET_RAW];
	enum e2e_status ret = E2E_ERR_ARG;

	if (!id)
		return ret;
	memset(id, 0, sizeof *id);   /* output only, as e2e_identity_load */
	if (!text)
		goto out;
	ret = E2E_ERR_CRYPTO;
	if (sodium_init() < 0)
		goto out;
	ret = parse_secret(text, len, raw);
	if (ret != E2E_OK)
		goto out;
	ret = from_secrets(id, raw, raw + 32);
out:
	if (ret != E2E_OK)
		e2e_identity_destroy(id);   /* a failed parse leaves an empty identity */
	sodium_memzero(raw, sizeof raw);
	return ret;
}
