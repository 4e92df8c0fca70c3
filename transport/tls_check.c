/*
 * tls_check.c: does a --tls-cert / --tls-key pair load? Run on the main
 * thread by the option checks at start (cli/options.c) and when SIGHUP asks
 * for a reload (node.c), before any I/O thread is told to swap its
 * certificate: a pair that does not parse, or whose key does not belong to
 * the certificate, never reaches a context, and the old one keeps serving.
 *
 * It reads the files the way libwebsockets 4.1.6 then loads them
 * (SSL_CTX_use_certificate_chain_file and SSL_CTX_use_PrivateKey_file, PEM):
 * the certificate first and any chain after it, then the key.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "transport/transport_impl.h"

/* PEM files bigger than this are not a certificate or a key. */
#define PEM_MAX (1u << 20)

/* An encrypted key would prompt on the terminal: refuse it instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The whole file into a memory BIO (freed with BIO_free; the caller
 * cleanses keys). NULL with a reason in err. */
static BIO *
read_file(const char *label, const char *path, char **data, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	BIO *b = NULL;
	size_t n = 0;

	*data = NULL;
	*len = 0;
	if (f == NULL) {
		snprintf(err, errlen, "%s: '%s': %s", label, path, strerror(errno));
		return NULL;
	}
	if ((*data = OPENSSL_malloc(PEM_MAX)) == NULL) {
		snprintf(err, errlen, "%s: '%s': out of memory", label, path);
		goto out;
	}
	n = fread(*data, 1, PEM_MAX, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: '%s': cannot read", label, path);
		goto out;
	}
	if (n == PEM_MAX) {
		snprintf(err, errlen, "%s: '%s' is over %u bytes", label, path, PEM_MAX);
		goto out;
	}
	*len = n;
	if ((b = BIO_new_mem_buf(*data, (int)n)) == NULL)
		snprintf(err, errlen, "%s: '%s': out of memory", label, path);
out:
	fclose(f);
	return b;
}

int
hr_tls_check_pair(const char *cert_label, const char *cert, const char *key_label, const char *key,
    char *err, size_t errlen)
{
	char *cdata = NULL, *kdata = NULL;
	size_t clen = 0, klen = 0;
	BIO *cb = NULL, *kb = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	int rv = HR_EINVAL;

	ERR_clear_error();
	if ((cb = read_file(cert_label, cert, &cdata, &clen, err, errlen)) == NULL)
		goto fail;
	if ((x = PEM_read_bio_X509_AUX(cb, NULL, no_passphrase, NULL)) == NULL) {
		snprintf(err, errlen, "%s: '%s' holds no PEM certificate", cert_label, cert);
		goto fail;
	}
	/* the chain behind it, to the end of the file, as lws reads it */
	for (X509 *ca; (ca = PEM_read_bio_X509(cb, NULL, no_passphrase, NULL)) != NULL;)
		X509_free(ca);
	unsigned long e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		snprintf(
		    err, errlen, "%s: '%s' holds a bad certificate in its chain", cert_label, cert);
		goto fail;
	}
	ERR_clear_error();
	if ((kb = read_file(key_label, key, &kdata, &klen, err, errlen)) == NULL)
		goto fail;
	if ((pk = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL)) == NULL) {
		snprintf(
		    err, errlen, "%s: '%s' holds no unencrypted PEM private key", key_label, key);
		goto fail;
	}
	if (X509_check_private_key(x, pk) != 1) {
		snprintf(err, errlen, "%s: '%s' is not the key of the certificate in '%s'",
		    key_label, key, cert);
		goto fail;
	}
	rv = 0;
fail:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	OPENSSL_clear_free(kdata, kdata != NULL ? PEM_MAX : 0); /* all it may have read */
	OPENSSL_free(cdata);
	return rv;
}
