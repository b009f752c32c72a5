/*
 * ingest_load: many simulated agents posting event batches to a collector.
 *
 *   ingest_load HOST PORT TOKEN [--threads N] [--seconds S] [--batch B]
 *               [--keys K] [--hosts H] [--steady]
 *
 * Each thread keeps one keep-alive connection and posts batches of B
 * events (default 100) in a closed loop: the next request leaves when the
 * answer to the last one came back.  Events cycle through K problem keys
 * (default 10,000: H hosts x K/H items); every event has a unique id, and
 * states mix repeats (critical, warning) with recoveries (ok) so that the
 * collector opens, updates and resolves tickets.  Prints events/s,
 * requests/s and the p50/p99/max request latency.
 *
 * The HTTP here is the bare minimum a benchmark needs (the brief allows
 * plain sockets for the load generator): a fixed request and a response
 * read up to its Content-Length.  It is no client for anything else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define BODY_MAX (4 * 1024 * 1024)

struct opts {
	const char *host;
	int port;
	const char *token;
	int threads;
	double seconds;
	int batch;
	int keys;
	int hosts;
	int steady; /* 1: mostly repeats of an unchanged state */
};

struct worker {
	const struct opts *o;
	int index;
	uint64_t rng; /* xorshift64 state: event ids are random, as agents' are */
	pthread_t thread;
	double *lat_ms;	 /* per request */
	size_t nlat, caplat;
	uint64_t events;
	uint64_t errors;
	char error[160];
};

static atomic_bool stop_now;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const struct opts *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)o->port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Successive states of one key.  The default "churn" mix changes state in
 * four events of five (journal lines, tickets opened and resolved: the
 * expensive case); --steady repeats one state 19 times in 20, as agents
 * mostly do.
 */
static const char *const churn[] = { "critical", "critical", "warning",
				     "critical", "ok" };

static const char *state_of(const struct opts *o, uint64_t step)
{
	if (o->steady)
		return step % 20 == 19 ? "ok" : "critical";
	return churn[step % (sizeof(churn) / sizeof(churn[0]))];
}

/*
 * Write batch number seq of worker w into body: host and items chosen so
 * that all workers together cycle through o->keys keys; ids are random
 * version-4 UUIDs (unique with overwhelming probability), which is what
 * makes the id index of the events table expensive.
 */
static size_t make_body(struct worker *w, uint64_t seq, char *body,
			size_t size)
{
	const struct opts *o = w->o;
	int items_per_host = o->keys / o->hosts;
	uint64_t n = seq * (uint64_t)o->threads + (uint64_t)w->index;
	int host = (int)(n % (uint64_t)o->hosts);
	size_t len;

	len = (size_t)snprintf(body, size, "{\"host\":\"bench%04d\",\"events\":[",
			       host);
	for (int i = 0; i < o->batch && len < size; i++) {
		int item = (int)((n / (uint64_t)o->hosts * (uint64_t)o->batch +
				  (uint64_t)i) %
				 (uint64_t)items_per_host);
		const char *state = state_of(o, n / (uint64_t)o->hosts + (uint64_t)i);
		uint64_t a = next_random(&w->rng), b = next_random(&w->rng);

		len += (size_t)snprintf(
			body + len, size - len,
			"%s{\"id\":\"%08x-%04x-4%03x-8%03x-%012llx\",\"check\":\"disk\","
			"\"item\":\"/srv/vol%04d\",\"state\":\"%s\","
			"\"summary\":\"/srv/vol%04d: 93.1%% used, 6.2 GiB free of 90.0 GiB (warning at 90%%)\","
			"\"metrics\":{\"used_percent\":93.1,\"free_bytes\":6657199308},"
			"\"observed_at\":\"2026-11-22T10:00:00Z\"}",
			i ? "," : "", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
			(unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
			(unsigned long long)(b & 0xffffffffffffULL), item, state, item);
	}
	len += (size_t)snprintf(body + len, size - len, "]}");
	return len;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one response; 0 and *ret_status, or -errno. */
static int read_response(int fd, char *buf, size_t size, int *ret_status)
{
	size_t len = 0, body_len = 0;
	char *end = NULL, *cl;

	for (;;) {
		ssize_t n = recv(fd, buf + len, size - len - 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		len += (size_t)n;
		buf[len] = '\0';
		if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			cl = strcasestr(buf, "\r\nContent-Length:");
			body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
			if (sscanf(buf, "HTTP/1.%*d %d", ret_status) != 1)
				return -EPROTO;
		}
		if (end != NULL && len >= (size_t)(end + 4 - buf) + body_len)
			return 0;
		if (len + 1 >= size)
			return -EMSGSIZE;
	}
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	const struct opts *o = w->o;
	char *body = malloc(BODY_MAX), *req = malloc(BODY_MAX + 512);
	char resp[8192];
	uint64_t seq = 0;
	int fd = connect_to(o);

	if (fd < 0) {
		snprintf(w->error, sizeof(w->error), "connect: %s", strerror(-fd));
		w->errors++;
		goto out;
	}
	while (!atomic_load(&stop_now)) {
		size_t blen = make_body(w, seq++, body, BODY_MAX);
		int hlen = snprintf(req, 512,
				    "POST /api/v1/events HTTP/1.1\r\nHost: %s\r\n"
				    "Authorization: Bearer %s\r\n"
				    "Content-Type: application/json\r\n"
				    "Content-Length: %zu\r\n\r\n",
				    o->host, o->token, blen);
		double t0;
		int status = 0, r;

		memcpy(req + hlen, body, blen);
		t0 = now_s();
		r = write_all(fd, req, (size_t)hlen + blen);
		if (r == 0)
			r = read_response(fd, resp, sizeof(resp), &status);
		if (r < 0 || status != 200) {
			w->errors++;
			snprintf(w->error, sizeof(w->error), "%.150s",
				 r < 0 ? strerror(-r) : resp);
			if (r < 0)
				break;
			continue;
		}
		if (w->nlat == w->caplat) {
			w->caplat = w->caplat ? w->caplat * 2 : 4096;
			w->lat_ms = realloc(w->lat_ms, w->caplat * sizeof(double));
		}
		w->lat_ms[w->nlat++] = (now_s() - t0) * 1000;
		w->events += (uint64_t)o->batch;
	}
	close(fd);
out:
	free(body);
	free(req);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A whole-string number, or -1 (every option here is positive). */
static double number(const char *text)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	return errno || end == text || *end ? -1 : v;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .threads = 8, .seconds = 10, .batch = 100,
			    .keys = 10000, .hosts = 100 };
	if (argc < 4)
		return -1;
	o->host = argv[1];
	o->port = (int)number(argv[2]);
	o->token = argv[3];
	for (int i = 4; i < argc; i += 2) {
		double v;

		if (strcmp(argv[i], "--steady") == 0) {
			o->steady = 1;
			i--;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		v = number(argv[i + 1]);

		if (strcmp(argv[i], "--threads") == 0)
			o->threads = (int)v;
		else if (strcmp(argv[i], "--seconds") == 0)
			o->seconds = v;
		else if (strcmp(argv[i], "--batch") == 0)
			o->batch = (int)v;
		else if (strcmp(argv[i], "--keys") == 0)
			o->keys = (int)v;
		else if (strcmp(argv[i], "--hosts") == 0)
			o->hosts = (int)v;
		else
			return -1;
	}
	if (o->port <= 0 || o->threads < 1 || o->threads > MAX_THREADS ||
	    o->batch < 1 || o->hosts < 1 || o->keys < o->hosts ||
	    o->seconds <= 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	struct opts o;
	double started, elapsed, *all;
	uint64_t events = 0, errors = 0;
	size_t n = 0;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr,
			"usage: ingest_load HOST PORT TOKEN [--threads N] [--seconds S]"
			" [--batch B] [--keys K] [--hosts H] [--steady]\n");
		return 2;
	}
	started = now_s();
	for (int i = 0; i < o.threads; i++) {
		workers[i] = (struct worker){ .o = &o, .index = i,
					      .rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) ^
						     (uint64_t)time(NULL) };
		pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
	}
	while (now_s() - started < o.seconds)
		usleep(10000);
	atomic_store(&stop_now, true);
	for (int i = 0; i < o.threads; i++) {
		pthread_join(workers[i].thread, NULL);
		events += workers[i].events;
		errors += workers[i].errors;
		n += workers[i].nlat;
		if (workers[i].error[0])
			fprintf(stderr, "thread %d: %.150s\n", i, workers[i].error);
	}
	elapsed = now_s() - started;
	all = malloc((n ? n : 1) * sizeof(double));
	n = 0;
	for (int i = 0; i < o.threads; i++) {
		memcpy(all + n, workers[i].lat_ms, workers[i].nlat * sizeof(double));
		n += workers[i].nlat;
		free(workers[i].lat_ms);
	}
	qsort(all, n, sizeof(double), cmp_double);
	printf("ingest (%s): %d threads, %d events/batch, %d keys: %.0f events/s, "
	       "%.0f requests/s, latency p50 %.1f ms, p99 %.1f ms, max %.1f ms, "
	       "%llu errors, %.1f s\n",
	       o.steady ? "steady" : "churn", o.threads, o.batch, o.keys,
	       (double)events / elapsed,
	       (double)n / elapsed, n ? all[n / 2] : 0.0,
	       n ? all[(size_t)((double)n * 0.99)] : 0.0, n ? all[n - 1] : 0.0,
	       (unsigned long long)errors, elapsed);
	free(all);
	return errors > 0 && events == 0 ? 1 : 0;
}
