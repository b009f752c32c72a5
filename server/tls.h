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

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
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
 * Check the certificate the peer of conn presented against client_ca,
 * and that it may be used for TLS client authentication (an extended key
 * usage that leaves out clientAuth is refused).  0 when verified,
 * -ENOKEY when the peer presented none, -EACCES when it is not valid
 * (why, e.g. "signed by an unknown authority, expired", in buf of size).
 * Called once per connection: http.c keeps the verdict for the
 * connection's later requests.
 */
int tls_verify_client(struct MHD_Connection *conn, char *why, size_t size);

/*
 * The server's certificate chain and key, handed to each handshake by
 * tls_cert_callback() (MHD_OPTION_HTTPS_CERT_CALLBACK), so that a SIGHUP
 * can replace them (automatic renewal) without restarting the daemon:
 * new handshakes get the new pair, connections already open keep theirs.
 * tls_use() loads tls's pair and makes it current: 0, or -EINVAL with
 * why (the old pair stays).  Pairs replaced are kept until tls_cleanup()
 * at exit, since a handshake in progress may still use them.  There is
 * one server per process, so this state is the process's.
 */
int tls_use(const struct tls_config *tls, char *why, size_t size);
void tls_cleanup(void);
/* The current pair, as a gnutls_certificate_retrieve_function2. */
int tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
		      int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		      int pk_algos_length, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *pkey);

/*
 * The GnuTLS priority string of the server: TLS 1.3 and 1.2, AEAD
 * ciphers (AES-GCM, ChaCha20-Poly1305) with ephemeral ECDHE key exchange
 * only: no CBC, no SHA-1 MACs or signatures, no static RSA key exchange.
 */
#define TLS_PRIORITIES                                                        \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"                         \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"           \
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"                     \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:%SERVER_PRECEDENCE"

#endif
