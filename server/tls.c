#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"

/* PEM files larger than this are not certificates or keys. */
#define TLS_FILE_MAX (1024 * 1024)
/* Certificates in the server's chain, at most. */
#define TLS_CHAIN_MAX 16

void tls_config_free(struct tls_config *tls)
{
	if (tls == NULL)
		return;
	if (tls->key_pem != NULL) {
		sodium_memzero(tls->key_pem, strlen(tls->key_pem));
		free(tls->key_pem);
	}
	free(tls->cert_pem);
	free(tls->client_ca_pem);
	free(tls);
}

/*
 * Read a whole file of at most TLS_FILE_MAX bytes as a NUL-terminated
 * string.  0 and *ret (malloc'ed), -EFBIG, or -errno.
 */
static int read_pem(const char *path, char **ret)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if (sb.st_size > TLS_FILE_MAX) {
		r = -EFBIG;
		goto out;
	}
	buf = xcalloc((size_t)sb.st_size + 1, 1);
	while (len < (size_t)sb.st_size &&
	       (n = read(fd, buf + len, (size_t)sb.st_size - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (strlen(buf) != len) {
		r = -EINVAL; /* a NUL byte: not PEM */
		goto out;
	}
	*ret = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

/*
 * Read the file named by key in node; relative paths are relative to the
 * directory of the configuration file that names them.  Returns the
 * contents or NULL after recording an error.
 */
static char *read_key_file(struct cfg *cfg, const struct cfg_node *node,
			   const char *key)
{
	const struct cfg_node *at = cfg_get(cfg, node, key);
	char *name = NULL, *path, *pem = NULL;
	int r;

	if (cfg_get_string(cfg, node, key, &name) <= 0)
		return NULL;
	if (name[0] == '/' || strrchr(at->file, '/') == NULL)
		path = xstrdup(name);
	else
		path = xasprintf("%.*s/%s",
				 (int)(strrchr(at->file, '/') - at->file),
				 at->file, name);
	r = read_pem(path, &pem);
	if (r == -EFBIG)
		cfg_error(cfg, at, "%s: larger than %d bytes, not a PEM file",
			  path, TLS_FILE_MAX);
	else if (r == -EINVAL)
		cfg_error(cfg, at, "%s: not a PEM text file", path);
	else if (r < 0)
		cfg_error(cfg, at, "cannot read %s: %s", path, strerror(-r));
	free(path);
	free(name);
	return pem;
}

static gnutls_datum_t datum(const char *pem)
{
	return (gnutls_datum_t){ .data = (unsigned char *)(uintptr_t)pem,
				 .size = (unsigned)strlen(pem) };
}

/* Let GnuTLS load what libmicrohttpd will load, to name problems early. */
static void validate(struct cfg *cfg, const struct cfg_node *node,
		     const struct tls_config *tls)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t cert, key, ca;
	int r;

	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		cfg_error(cfg, node, "GnuTLS cannot allocate credentials");
		return;
	}
	if (tls->cert_pem != NULL && tls->key_pem != NULL) {
		cert = datum(tls->cert_pem);
		key = datum(tls->key_pem);
		r = gnutls_certificate_set_x509_key_mem(cred, &cert, &key,
							GNUTLS_X509_FMT_PEM);
		if (r < 0)
			cfg_error(cfg, cfg_get(cfg, node, "key"),
				  "the certificate and key cannot be used: %s",
				  gnutls_strerror(r));
	}
	if (tls->client_ca_pem != NULL) {
		ca = datum(tls->client_ca_pem);
		r = gnutls_certificate_set_x509_trust_mem(cred, &ca,
							  GNUTLS_X509_FMT_PEM);
		if (r <= 0)
			cfg_error(cfg, cfg_get(cfg, node, "client_ca"),
				  "no usable CA certificate: %s",
				  r < 0 ? gnutls_strerror(r)
					: "the file holds none");
	}
	gnutls_certificate_free_credentials(cred);
}

void tls_parse(struct cfg *cfg, const struct cfg_node *node,
	       struct tls_config **ret)
{
	struct tls_config *tls;

	if (node == NULL || cfg_expect_map(cfg, node) < 0)
		return;
	tls = xcalloc(1, sizeof(*tls));
	if (cfg_get(cfg, node, "cert") == NULL ||
	    cfg_get(cfg, node, "key") == NULL)
		cfg_error(cfg, node, "tls needs both cert and key (PEM files)");
	tls->cert_pem = read_key_file(cfg, node, "cert");
	tls->key_pem = read_key_file(cfg, node, "key");
	tls->client_ca_pem = read_key_file(cfg, node, "client_ca");
	cfg_get_bool(cfg, node, "require_client_cert",
		     &tls->require_client_cert);
	if (tls->require_client_cert && cfg_get(cfg, node, "client_ca") == NULL)
		cfg_error(cfg, cfg_get(cfg, node, "require_client_cert"),
			  "require_client_cert needs client_ca to verify them");
	validate(cfg, node, tls);
	tls_config_free(*ret);
	*ret = tls;
}

int tls_verify_client(struct MHD_Connection *conn, char *why, size_t size)
{
	/* Client authentication is the purpose the certificate must allow. */
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;
	gnutls_datum_t text = { 0 };
	unsigned npeers = 0, status = 0;
	int r;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL) {
		snprintf(why, size, "the connection does not use TLS");
		return -EACCES;
	}
	session = ci->tls_session;
	if (gnutls_certificate_get_peers(session, &npeers) == NULL ||
	    npeers == 0)
		return -ENOKEY;
	/* Against the trust list libmicrohttpd loaded from client_ca. */
	r = gnutls_certificate_verify_peers(session, &purpose, 1, &status);
	if (r < 0) {
		snprintf(why, size, "%s", gnutls_strerror(r));
		return -EACCES;
	}
	if (status == 0)
		return 0;
	if (gnutls_certificate_verification_status_print(
		    status, GNUTLS_CRT_X509, &text, 0) == 0) {
		snprintf(why, size, "%s", (const char *)text.data);
		gnutls_free(text.data);
	} else {
		snprintf(why, size, "verification status 0x%x", status);
	}
	return -EACCES;
}

/* --- the server's certificate and key, replaceable ----------------------- */

struct identity {
	gnutls_pcert_st pcerts[TLS_CHAIN_MAX];
	unsigned int npcerts;
	gnutls_privkey_t key;
	struct identity *older; /* replaced ones, freed at exit */
};

/*
 * The callback GnuTLS calls takes no context pointer, and there is one
 * HTTPS server per process: the current pair is therefore the process's.
 */
static _Atomic(struct identity *) current;
static pthread_mutex_t identities_lock = PTHREAD_MUTEX_INITIALIZER;

static void identity_free(struct identity *id)
{
	for (unsigned int i = 0; i < id->npcerts; i++)
		gnutls_pcert_deinit(&id->pcerts[i]);
	gnutls_privkey_deinit(id->key);
	free(id);
}

/* Import tls's chain and key: 0 and *ret, or a GnuTLS error with why. */
static int identity_load(const struct tls_config *tls, struct identity **ret,
			 char *why, size_t size)
{
	struct identity *id = xcalloc(1, sizeof(*id));
	gnutls_datum_t cert = datum(tls->cert_pem), key = datum(tls->key_pem);
	int r;

	id->npcerts = TLS_CHAIN_MAX;
	r = gnutls_pcert_list_import_x509_raw(id->pcerts, &id->npcerts, &cert,
					      GNUTLS_X509_FMT_PEM, 0);
	if (r < 0) {
		snprintf(why, size, "the certificate cannot be used: %s",
			 gnutls_strerror(r));
		id->npcerts = 0;
		goto fail;
	}
	r = gnutls_privkey_init(&id->key);
	if (r == 0)
		r = gnutls_privkey_import_x509_raw(id->key, &key,
						   GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		snprintf(why, size, "the key cannot be used: %s",
			 gnutls_strerror(r));
		goto fail;
	}
	*ret = id;
	return 0;
fail:
	identity_free(id);
	return -EINVAL;
}

int tls_use(const struct tls_config *tls, char *why, size_t size)
{
	struct identity *id;
	int r;

	if (tls == NULL || tls->cert_pem == NULL || tls->key_pem == NULL) {
		snprintf(why, size, "no certificate and key");
		return -EINVAL;
	}
	r = identity_load(tls, &id, why, size);
	if (r < 0)
		return r;
	pthread_mutex_lock(&identities_lock);
	id->older = atomic_load(&current);
	atomic_store(&current, id);
	pthread_mutex_unlock(&identities_lock);
	return 0;
}

void tls_cleanup(void)
{
	struct identity *id, *older;

	pthread_mutex_lock(&identities_lock);
	id = atomic_exchange(&current, NULL);
	pthread_mutex_unlock(&identities_lock);
	for (; id != NULL; id = older) {
		older = id->older;
		identity_free(id);
	}
}

int tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
		      int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		      int pk_algos_length, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	struct identity *id = atomic_load(&current);

	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (id == NULL)
		return -1;
	*pcert = id->pcerts;
	*pcert_length = id->npcerts;
	*pkey = id->key;
	return 0;
}
