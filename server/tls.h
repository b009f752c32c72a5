/*
 * HTTPS for the collector: the tls: section of the configuration and the
 * check of client certificates.
 *
 * libmicrohttpd does the TLS itself (with GnuTLS); this module reads and
 * validates the PEM files when the configuration is loaded, so that a
 * wrong path, a key that does not match its certificate or an empty CA
 * file is a configuration error with file:line:column, not a failed start
 * without a reason.
 */
#ifndef TOCSIN_TLS_H
#define TOCSIN_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct cfg_node;
struct MHD_Connection;

struct tls_config {
	char *cert_pem;	     /* the server's certificate chain */
	char *key_pem;	     /* its private key; wiped when freed */
	char *client_ca_pem; /* NULL: client certificates are not asked for */
	bool require_client_cert;
};

/*
 * Parse the tls: mapping (node may be NULL: no TLS, *ret stays NULL).
 * Reads the files it names; every problem is recorded in cfg at the key
 * that names the file.
 */
void tls_parse(struct cfg *cfg, const struct cfg_node *node,
	       struct tls_config **ret);
void tls_config_free(struct tls_config *tls);

/*
 * Check the certificate the peer of conn presented against client_ca.
 * 0 when verified, -ENOKEY when the peer presented none, -EACCES when it
 * is not valid (why, e.g. "signed by an unknown authority, expired", in
 * buf of size).
 */
int tls_verify_client(struct MHD_Connection *conn, char *why, size_t size);

#endif
