/* SHA-256 over OpenSSL's EVP interface. The context is opaque so that callers need no
 * OpenSSL headers. */
#include "util/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

struct pt_sha256 {
    EVP_MD_CTX *ctx;
};

pt_status pt_sha256_begin(pt_sha256 **out) {
    pt_sha256 *h = malloc(sizeof *h);
    if (!h) return pt_error(PT_ERR_OOM, "sha256: out of memory");
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return pt_error(PT_ERR_INTERNAL, "sha256: OpenSSL could not start a digest");
    }
    *out = h;
    return PT_OK;
}

void pt_sha256_update(pt_sha256 *h, const void *data, size_t len) {
    if (len) PT_ASSERT(EVP_DigestUpdate(h->ctx, data, len) == 1);
}

void pt_sha256_end(pt_sha256 *h, char hex[PT_SHA256_HEX]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    PT_ASSERT(EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n == 32);
    for (unsigned i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void pt_sha256_buf(const void *data, size_t len, char hex[PT_SHA256_HEX]) {
    pt_sha256 *h;
    PT_ASSERT(pt_sha256_begin(&h) == PT_OK);
    pt_sha256_update(h, data, len);
    pt_sha256_end(h, hex);
}

pt_status pt_sha256_file(const char *path, char hex[PT_SHA256_HEX]) {
    FILE *f = fopen(path, "rb");
    if (!f) return pt_error(PT_ERR_IO, "%s: %s", path, strerror(errno));
    pt_sha256 *h;
    pt_status st = pt_sha256_begin(&h);
    if (st) { fclose(f); return st; }
    static _Thread_local unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) pt_sha256_update(h, buf, n);
    int err = ferror(f);
    fclose(f);
    pt_sha256_end(h, hex);
    if (err) return pt_error(PT_ERR_IO, "%s: read error", path);
    return PT_OK;
}
