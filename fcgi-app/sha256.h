/* sha256.h: SHA-256 (FIPS 180-4), to fingerprint idempotent requests. */
#ifndef USERREG_SHA256_H
#define USERREG_SHA256_H

#include <stddef.h>

#define SHA256_HEX_SIZE 65	/* 64 hex digits and a NUL */

/* Writes the SHA-256 of len bytes at data into out as lowercase hex. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_SIZE]);

#endif
