#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "tls.h"

struct http_server {
	struct MHD_Daemon *mhd;
	const struct server_config *conf;
	const struct http_route *routes;
	void *app;
	http_authenticator authenticate;
	http_session_authenticator session; /* NULL: no console sessions */
	int fd;
	uint16_t port;
	atomic_size_t deferred; /* requests suspended until http_resume() */
	atomic_bool stopping;	/* http_server_stop() began: refuse new requests */
};

struct http_deferred {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_response resp; /* filled by http_resume() */
	bool answered;		   /* resp queued, srv->deferred counted down */
};

/* Per-request state, from the headers to the queued response. */
struct request_ctx {
	struct http_server *srv;
	const struct http_route *route;
	struct principal principal;
	char *param;
	char *body;
	size_t body_len;
	size_t body_cap;  /* allocated, for the NUL too */
	size_t declared;  /* Content-Length, when given and within the limit */
	bool too_large;
	bool refused;
	struct http_deferred *deferred;
};

struct http_deferred *http_defer(const struct http_request *req)
{
	struct http_deferred *d = xcalloc(1, sizeof(*d));

	d->srv = req->ctx->srv;
	d->conn = req->conn;
	req->ctx->deferred = d;
	/* The handler has parsed what it needs: do not pin the raw body too. */
	free(req->ctx->body);
	req->ctx->body = NULL;
	req->ctx->body_cap = 0;
	atomic_fetch_add(&d->srv->deferred, 1);
	/* Suspended before anyone can resume it: resume may come at once. */
	MHD_suspend_connection(req->conn);
	return d;
}

void http_resume(struct http_deferred *d, struct http_response *resp)
{
	d->resp = *resp;
	*resp = (struct http_response){ 0 };
	/* d belongs to the connection again from here on: do not touch it. */
	MHD_resume_connection(d->conn);
}

void http_error(struct http_response *resp, unsigned status, const char *fmt,
		...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(resp->json);
	resp->status = status;
	/* The message may quote the request (a path, a name) or have been
	 * cut inside a character: sanitized, or jansson refuses it and the
	 * client gets the status without its reason. */
	resp->json = json_pack("{s:o}", "error", utf8_json_string(msg));
}

void http_client_address(const struct http_request *req, char *buf,
			 size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	socklen_t len = sa && sa->sa_family == AF_INET6
				? sizeof(struct sockaddr_in6)
				: sizeof(struct sockaddr_in);

	if (sa == NULL || getnameinfo(sa, len, buf, (socklen_t)size, NULL, 0,
				      NI_NUMERICHOST) != 0)
		strlcpy_safe(buf, "unknown", size);
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
					   key);
}

/* Run and forget resp's release callback, if any. */
static void release(struct http_response *resp)
{
	if (resp->release != NULL)
		resp->release(resp->release_arg);
	resp->release = NULL;
}

static enum MHD_Result queue_response(struct MHD_Connection *conn,
				      struct http_response *resp);

static enum MHD_Result queue(struct MHD_Connection *conn,
			     struct http_response *resp)
{
	enum MHD_Result ret = queue_response(conn, resp);

	free(resp->set_cookie); /* left when the response failed */
	resp->set_cookie = NULL;
	release(resp);
	return ret;
}

/*
 * On every answer: the console's pages run no script but its own, in no
 * frame, and send no referrer; JSON is never sniffed into HTML.
 */
static void add_security_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; style-src 'self'; "
				"img-src 'self'; connect-src 'self'; base-uri 'none'; "
				"form-action 'self'; frame-ancestors 'none'");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
}

static enum MHD_Result queue_response(struct MHD_Connection *conn,
				      struct http_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body;
	size_t len;

	if (resp->json != NULL) {
		body = json_dumps(resp->json, JSON_COMPACT | JSON_REAL_PRECISION(15));
		json_decref(resp->json);
		resp->json = NULL;
		if (body == NULL)
			return MHD_NO;
		len = strlen(body);
		/* A newline at the end is friendlier to curl users. */
		body = xreallocarray(body, len + 2, 1);
		body[len++] = '\n';
		body[len] = '\0';
		if (resp->content_type == NULL)
			resp->content_type = "application/json";
	} else if (resp->static_body != NULL) {
		body = NULL;
		len = resp->static_len;
	} else {
		body = resp->text ? resp->text : xstrdup("");
		resp->text = NULL;
		len = strlen(body);
		if (resp->content_type == NULL)
			resp->content_type = "text/plain; charset=utf-8";
	}
	if (body == NULL)
		r = MHD_create_response_from_buffer(
			len, (void *)(uintptr_t)resp->static_body,
			MHD_RESPMEM_PERSISTENT);
	else
		r = MHD_create_response_from_buffer(len, body,
						    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				resp->content_type);
	add_security_headers(r);
	if (resp->etag != NULL) {
		/* Assets: kept, but asked for again with If-None-Match. */
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, resp->etag);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
					"no-cache");
	} else {
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
					"no-store");
	}
	if (resp->set_cookie != NULL) {
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE,
					resp->set_cookie);
		free(resp->set_cookie);
		resp->set_cookie = NULL;
	}
	if (resp->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"tocsin\"");
	if (resp->retry_after_s > 0) {
		char v[16];

		snprintf(v, sizeof(v), "%d", resp->retry_after_s);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Match "/a/b/\*" against path; the "*" segment goes to *ret_param. */
static bool pattern_match(const char *pattern, const char *path,
			  char **ret_param)
{
	const char *star = strchr(pattern, '*');
	size_t prefix, seg;

	if (star == NULL)
		return strcmp(pattern, path) == 0;
	prefix = (size_t)(star - pattern);
	if (strncmp(pattern, path, prefix) != 0)
		return false;
	path += prefix;
	seg = strcspn(path, "/");
	if (seg == 0 || strcmp(star + 1, path + seg) != 0)
		return false;
	*ret_param = xasprintf("%.*s", (int)seg, path);
	return true;
}

/* The route for method and path; *ret_status is 404 or 405 when none. */
static const struct http_route *route_find(const struct http_route *routes,
					   const char *method,
					   const char *path, char **ret_param,
					   unsigned *ret_status)
{
	bool path_known = false;

	for (const struct http_route *r = routes; r->method; r++) {
		char *param = NULL;

		if (!pattern_match(r->pattern, path, &param))
			continue;
		if (strcmp(r->method, method) == 0) {
			*ret_param = param;
			return r;
		}
		free(param);
		path_known = true;
	}
	*ret_status = path_known ? MHD_HTTP_METHOD_NOT_ALLOWED
				 : MHD_HTTP_NOT_FOUND;
	return NULL;
}

/*
 * What a connection's client certificate was found to be: verifying it
 * means walking its chain and signatures, so that is done at the first
 * request and remembered for the connection's later (keep-alive) ones.
 */
struct conn_state {
	bool verified;
	int result;	/* tls_verify_client()'s */
	char why[256];
};

/* MHD_OPTION_NOTIFY_CONNECTION: a connection's state, from open to close. */
static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = xcalloc(1, sizeof(struct conn_state));
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
	}
}

/* tls_verify_client() of conn, once per connection. */
static int verify_once(struct MHD_Connection *conn, char *why, size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_state *cs = ci ? ci->socket_context : NULL;

	if (cs == NULL)
		return tls_verify_client(conn, why, size);
	if (!cs->verified) {
		cs->result = tls_verify_client(conn, cs->why, sizeof(cs->why));
		cs->verified = true;
	}
	strlcpy_safe(why, cs->why, size);
	return cs->result;
}

/*
 * With tls.client_ca, a client certificate that is presented must verify,
 * and with require_client_cert one must be presented.  0 to go on, or the
 * status of the error put in resp.
 */
static unsigned check_client_cert(const struct http_server *srv,
				  struct MHD_Connection *conn,
				  struct http_response *resp)
{
	const struct tls_config *tls = srv->conf->tls;
	char why[256] = "";
	int r;

	if (tls == NULL || tls->client_ca_pem == NULL)
		return 0;
	r = verify_once(conn, why, sizeof(why));
	if (r == 0 || (r == -ENOKEY && !tls->require_client_cert))
		return 0;
	if (r == -ENOKEY)
		http_error(resp, MHD_HTTP_FORBIDDEN,
			   "a client certificate signed by the configured client_ca is required");
	else
		http_error(resp, MHD_HTTP_FORBIDDEN,
			   "the client certificate is not accepted: %s", why);
	return MHD_HTTP_FORBIDDEN;
}

/*
 * A bearer token, else a console session's cookie (with its CSRF header
 * for what changes something).  0, -EACCES (401) or -EPERM (403).
 */
static int request_authenticate(const struct http_server *srv,
				struct MHD_Connection *conn,
				const char *method, struct principal *ret)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       "Authorization");

	if (auth == NULL && srv->session != NULL) {
		const char *cookie = MHD_lookup_connection_value(
			conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
		const char *csrf = MHD_lookup_connection_value(
			conn, MHD_HEADER_KIND, HTTP_CSRF_HEADER);
		bool changing = strcmp(method, "GET") != 0 &&
				strcmp(method, "HEAD") != 0;

		if (cookie != NULL && cookie[0] != '\0')
			return srv->session(srv->app, cookie, csrf, changing,
					    ret);
	}
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return -EACCES;
	auth += 7;
	while (*auth == ' ')
		auth++;
	if (*auth == '\0')
		return -EACCES;
	return srv->authenticate(srv->app, auth, ret);
}

/*
 * First call for a request: route, authenticate and check the declared
 * length before reading any body, so that refusals cost nothing.
 * Returns 0 to go on, or the status of an error already put in resp.
 */
static unsigned admit(struct http_server *srv, struct MHD_Connection *conn,
		      const char *method, const char *url,
		      struct request_ctx *ctx, struct http_response *resp)
{
	const char *clen;
	unsigned status = 0;
	uint64_t declared;

	status = check_client_cert(srv, conn, resp);
	if (status != 0)
		return status;
	ctx->route = route_find(srv->routes, method, url, &ctx->param, &status);
	if (ctx->route == NULL) {
		http_error(resp, status,
			   status == MHD_HTTP_NOT_FOUND
				   ? "no such endpoint: %s"
				   : "method not allowed on %s",
			   url);
		return status;
	}
	if (ctx->route->perms != 0) {
		int r = request_authenticate(srv, conn, method, &ctx->principal);

		if (r == -EPERM) {
			http_error(resp, MHD_HTTP_FORBIDDEN, "%s",
				   ctx->principal.denied);
			return MHD_HTTP_FORBIDDEN;
		}
		if (r < 0) {
			http_error(resp, MHD_HTTP_UNAUTHORIZED, "%s",
				   ctx->principal.denied[0]
					   ? ctx->principal.denied
					   : "missing or invalid bearer token");
			return MHD_HTTP_UNAUTHORIZED;
		}
		if ((ctx->principal.perms & ctx->route->perms) !=
		    ctx->route->perms) {
			http_error(resp, MHD_HTTP_FORBIDDEN,
				   "the credential '%s' may not %s %s",
				   ctx->principal.name, method, url);
			return MHD_HTTP_FORBIDDEN;
		}
	}
	clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen == NULL || sscanf(clen, "%" SCNu64, &declared) != 1)
		return 0;
	if (declared > srv->conf->max_body) {
		http_error(resp, MHD_HTTP_CONTENT_TOO_LARGE,
			   "request body of %" PRIu64
			   " bytes exceeds the limit of %zu bytes",
			   declared, srv->conf->max_body);
		return MHD_HTTP_CONTENT_TOO_LARGE;
	}
	ctx->declared = (size_t)declared;
	return 0;
}

/*
 * Room for need bytes of body: the declared length at once, else
 * doubling.  (Growing by each piece libmicrohttpd hands over cost a
 * realloc per piece, and glibc consolidating its free lists each time.)
 */
static void body_reserve(struct request_ctx *ctx, size_t need)
{
	size_t cap = ctx->body_cap ? ctx->body_cap * 2 : 4096;

	if (need <= ctx->body_cap)
		return;
	if (ctx->declared + 1 > cap)
		cap = ctx->declared + 1;
	if (need > cap)
		cap = need;
	ctx->body = xreallocarray(ctx->body, cap, 1);
	ctx->body_cap = cap;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct request_ctx *ctx = *con_cls;
	struct http_response resp = { 0 };
	struct http_request req;

	(void)version;
	if (ctx != NULL && ctx->deferred != NULL) {
		/* Called again after http_resume(). */
		resp = ctx->deferred->resp;
		ctx->deferred->resp = (struct http_response){ 0 };
		ctx->deferred->answered = true;
		atomic_fetch_sub(&srv->deferred, 1);
		return queue(conn, &resp);
	}
	if (ctx == NULL) {
		ctx = xcalloc(1, sizeof(*ctx));
		ctx->srv = srv;
		*con_cls = ctx;
		if (atomic_load(&srv->stopping)) {
			/* Keep-alive clients would keep the shutdown waiting. */
			http_error(&resp, MHD_HTTP_SERVICE_UNAVAILABLE,
				   "the collector is shutting down; retry later");
			resp.retry_after_s = 5;
			ctx->refused = true;
			return queue(conn, &resp);
		}
		if (admit(srv, conn, method, url, ctx, &resp) != 0) {
			ctx->refused = true;
			return queue(conn, &resp);
		}
		return MHD_YES;
	}
	if (ctx->refused) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* Bodies without Content-Length are bounded here. */
		if (ctx->too_large ||
		    ctx->body_len + *upload_data_size > srv->conf->max_body) {
			ctx->too_large = true;
		} else {
			body_reserve(ctx, ctx->body_len + *upload_data_size + 1);
			memcpy(ctx->body + ctx->body_len, upload_data,
			       *upload_data_size);
			ctx->body_len += *upload_data_size;
			ctx->body[ctx->body_len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (ctx->too_large) {
		http_error(&resp, MHD_HTTP_CONTENT_TOO_LARGE,
			   "request body exceeds the limit of %zu bytes",
			   srv->conf->max_body);
		return queue(conn, &resp);
	}
	req = (struct http_request){
		.conn = conn,
		.ctx = ctx,
		.method = method,
		.path = url,
		.param = ctx->param,
		.body = ctx->body ? ctx->body : "",
		.body_len = ctx->body_len,
		.principal = &ctx->principal,
	};
	resp.status = MHD_HTTP_OK;
	ctx->route->handler(srv->app, &req, &resp);
	if (ctx->deferred != NULL)
		return MHD_YES; /* suspended; the answer comes with http_resume() */
	return queue(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request_ctx *ctx = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (ctx == NULL)
		return;
	if (ctx->deferred != NULL) {
		/* The client left after the resume, before its answer. */
		if (!ctx->deferred->answered)
			atomic_fetch_sub(&ctx->srv->deferred, 1);
		json_decref(ctx->deferred->resp.json);
		free(ctx->deferred->resp.text);
		free(ctx->deferred->resp.set_cookie);
		release(&ctx->deferred->resp);
		free(ctx->deferred);
	}
	free(ctx->param);
	free(ctx->body);
	free(ctx);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t len;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_debug("http: %s", msg);
}

/* A listening socket on host:port; the port actually bound is returned. */
static int listen_socket(const char *host, uint16_t port, int *ret_fd,
			 uint16_t *ret_port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char portstr[8];
	int fd = -1, one = 1, r;

	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 511) == 0)
			break;
		r = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return r < 0 ? r : -EADDRNOTAVAIL;
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&ss)->sin6_port
				  : ((struct sockaddr_in *)&ss)->sin_port);
	*ret_fd = fd;
	return 0;
}

/*
 * libmicrohttpd's options for conf, in opts (of at least 16); TLS ones
 * only when tls: is configured.  The PEM strings stay owned by conf.
 */
static void daemon_options(struct http_server *srv,
			   struct MHD_OptionItem *opts)
{
	const struct server_config *conf = srv->conf;
	unsigned timeout_s = (unsigned)(conf->connection_timeout_ms / 1000);
	size_t n = 0;

#define OPT(o, v, p) (opts[n++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) })
	/* The logger goes first so that option errors reach it. */
	OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL);
	OPT(MHD_OPTION_LISTEN_SOCKET, srv->fd, NULL);
	OPT(MHD_OPTION_THREAD_POOL_SIZE, conf->threads, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, conf->max_connections, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, timeout_s ? timeout_s : 1, NULL);
	/* Bounds the request line and headers of each connection. */
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv);
	if (conf->tls != NULL) {
		/* The pair comes from tls.c, which a SIGHUP can renew. */
		/* A one-argument option: in an option array, it is ptr_value. */
		OPT(MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
		    (void *)(uintptr_t)tls_cert_callback);
		/* With a trust list, libmicrohttpd asks for a certificate. */
		if (conf->tls->client_ca_pem != NULL)
			OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0,
			    conf->tls->client_ca_pem);
		OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, TLS_PRIORITIES);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
}

int http_server_start(const struct server_config *conf,
		      const struct http_route *routes, void *app,
		      http_authenticator authenticate, struct http_server **ret)
{
	return http_server_start_sessions(conf, routes, app, authenticate, NULL,
					  ret);
}

int http_server_start_sessions(const struct server_config *conf,
			       const struct http_route *routes, void *app,
			       http_authenticator authenticate,
			       http_session_authenticator session,
			       struct http_server **ret)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	struct MHD_OptionItem opts[16];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	int r;

	srv->conf = conf;
	srv->routes = routes;
	srv->app = app;
	srv->authenticate = authenticate;
	srv->session = session;
	if (conf->tls != NULL) {
		char why[256];

		r = tls_use(conf->tls, why, sizeof(why));
		if (r < 0) {
			log_warnx("tls: %s", why);
			free(srv);
			return r;
		}
	}
	r = listen_socket(conf->listen_host, conf->listen_port, &srv->fd,
			  &srv->port);
	if (r < 0) {
		free(srv);
		return r;
	}
	if (conf->tls != NULL)
		flags |= MHD_USE_TLS;
	daemon_options(srv, opts);
	srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (srv->mhd == NULL) {
		close(srv->fd);
		free(srv);
		return -EIO;
	}
	*ret = srv;
	return 0;
}

uint16_t http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void http_server_stop(struct http_server *srv)
{
	if (srv == NULL)
		return;
	/*
	 * Answer anything new with 503, let every suspended request get its
	 * answer (the writer still runs), then wait for handlers in flight:
	 * no commit is cut in half and no acknowledgement is lost.
	 *
	 * Not MHD_quiesce_daemon(): with a thread pool and epoll it removes
	 * the listen socket from each worker's epoll set while the worker
	 * may be doing the same after seeing the quiesce flag, and the loser
	 * of that race aborts the process ("Failed to remove listen FD from
	 * epoll set", seen in the test suite).
	 */
	atomic_store(&srv->stopping, true);
	while (atomic_load(&srv->deferred) > 0)
		usleep(1000);
	MHD_stop_daemon(srv->mhd);
	close(srv->fd);
	tls_cleanup();
	free(srv);
}
