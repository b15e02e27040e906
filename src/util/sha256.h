/* SHA-256 digests (OpenSSL's EVP implementation) as 64-character lower-case hex strings:
 * asset verification and the run manifests' input hashes both use them. */
#ifndef PT_UTIL_SHA256_H
#define PT_UTIL_SHA256_H

#include <stddef.h>

#include "util/status.h"

#define PT_SHA256_HEX 65 /* 64 hex digits + NUL */

typedef struct pt_sha256 pt_sha256;

/* Incremental hashing, for data that arrives in pieces (downloads, several inputs). */
pt_status pt_sha256_begin(pt_sha256 **h);
void pt_sha256_update(pt_sha256 *h, const void *data, size_t len);
void pt_sha256_end(pt_sha256 *h, char hex[PT_SHA256_HEX]); /* frees h */

void pt_sha256_buf(const void *data, size_t len, char hex[PT_SHA256_HEX]);
/* Streams the file; names it in the message when it cannot be read. */
pt_status pt_sha256_file(const char *path, char hex[PT_SHA256_HEX]);

#endif
