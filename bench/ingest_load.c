/*
 * ingest_load: many simulated agents posting event batches to a collector.
 *
 *   ingest_load HOST PORT TOKEN [--connections N] [--threads T]
 *               [--seconds S] [--warmup S] [--batch B] [--keys K]
 *               [--hosts H] [--mix realistic|churn] [--ids v7|v4]
 *               [--server-pid PID]
 *
 * H simulated agents (default 100) own K problem keys between them
 * (default 10,000: 100 items each).  An agent reports all its items once
 * per round, in batches of B events (default 100: one batch is one
 * agent's round), dated a simulated minute after its last round, so that
 * the lifecycle's windows (flapping, reopening) see agents reporting
 * every 60 s rather than thousands of times a second.  Every event has a
 * unique id: UUIDv7 (time-ordered, as tocsin-agent makes them) or, with
 * --ids v4, random version-4 UUIDs (what older agents sent).
 *
 * N keep-alive connections (default 32) each carry the agents h with
 * h % N == its index, one request at a time (closed loop, no pipelining):
 * the next batch leaves when the answer to the last one came back, so
 * each agent's rounds arrive in order.  T threads (default 1) drive the
 * connections with epoll; one thread is plenty and leaves the cores to
 * the server.
 *
 * Mixes (--mix):
 *   realistic  4% of the keys are critical for good (every event an
 *              occurrence of their open ticket); the others are ok, and
 *              critical for one round in 50 (a ticket opened, resolved
 *              the next round, reopened 50 rounds later): about 4% of
 *              the events change a key's state.  The headline.
 *   churn      every key cycles critical, critical, warning, critical,
 *              ok: four events in five change the ticket (opened or
 *              reopened, state changes with journal lines, resolved).
 *              Run the server with flap detection off (bench/ingest.sh
 *              does) or the keys soon flap and get cheap.  Worst case.
 *
 * Prints events/s acknowledged (counted from the answers' "accepted"),
 * requests/s, request latency p50/p90/p99/max, and CPU per event of this
 * process and, with --server-pid, of the server (whole process, and its
 * writer thread when it is named "tocsin-writer").  The warm-up (default
 * 2 s) is run but not counted.
 *
 * The HTTP here is the bare minimum a benchmark needs: a fixed request
 * and a response read up to its Content-Length.  It is no client for
 * anything else.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "workload.h"

#define MAX_CONNS 4096
#define MAX_THREADS 16
#define RESP_MAX 8192

struct opts {
	const char *host;
	int port;
	const char *token;
	int conns;
	int threads;
	double seconds;
	double warmup;
	int keys;
	int hosts;
	int server_pid;
	struct workload w;
};

struct conn {
	int fd;
	struct workload_agent *agents; /* the agents this connection carries */
	int nagents, turn;
	char *req;
	size_t req_len, sent;
	char resp[RESP_MAX];
	size_t resp_len;
	double started;
	int expect; /* events in the request in flight */
};

struct stats {
	double *lat_ms;
	size_t nlat, cap;
	uint64_t events, requests, errors;
	char error[200];
};

struct loop {
	const struct opts *o;
	struct conn *conns;
	int nconns;
	pthread_t thread;
	struct stats st;
};

static atomic_bool measuring, stop_now;

static double now_s(void)
{
	return bench_wall_s();
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next batch of the connection's next agent, with its HTTP header,
 * into c->req (which holds batch * WORKLOAD_EVENT_MAX + 1024 bytes).
 */
static void make_request(const struct opts *o, struct conn *c)
{
	struct workload_agent *a = &c->agents[c->turn];
	char *body = c->req + 512, *end, hdr[512];
	int hlen;

	c->turn = (c->turn + 1) % c->nagents;
	end = workload_batch(&o->w, a, wall_ms(), body);
	hlen = snprintf(hdr, sizeof(hdr),
			"POST /api/v1/events HTTP/1.1\r\nHost: %s\r\n"
			"Authorization: Bearer %s\r\n"
			"Content-Type: application/json\r\n"
			"Content-Length: %zu\r\n\r\n",
			o->host, o->token, (size_t)(end - body));
	/* The header goes right before the body, in the room left for it. */
	memcpy(body - hlen, hdr, (size_t)hlen);
	c->req_len = (size_t)(end - body) + (size_t)hlen;
	memmove(c->req, body - hlen, c->req_len);
	c->sent = 0;
	c->resp_len = 0;
	c->expect = o->w.batch;
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
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void record(struct stats *st, double ms, int events)
{
	if (!atomic_load(&measuring))
		return;
	if (st->nlat == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 4096;
		st->lat_ms = realloc(st->lat_ms, st->cap * sizeof(double));
		if (st->lat_ms == NULL)
			abort();
	}
	st->lat_ms[st->nlat++] = ms;
	st->requests++;
	st->events += (uint64_t)events;
}

/*
 * A complete response in c->resp: 1 when whole (and judged), 0 when more
 * is needed, -1 on a malformed one.
 */
static int response_done(struct loop *l, struct conn *c)
{
	char *end = strstr(c->resp, "\r\n\r\n"), *cl, *acc;
	size_t body_len;
	int status;

	if (end == NULL)
		return c->resp_len + 1 >= sizeof(c->resp) ? -1 : 0;
	cl = strcasestr(c->resp, "\r\nContent-Length:");
	body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
	if (c->resp_len < (size_t)(end + 4 - c->resp) + body_len)
		return c->resp_len + 1 >= sizeof(c->resp) ? -1 : 0;
	if (sscanf(c->resp, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	acc = strstr(end, "\"accepted\":");
	if (status != 200 || acc == NULL || atoi(acc + 11) != c->expect) {
		l->st.errors++;
		snprintf(l->st.error, sizeof(l->st.error), "%.190s", end + 4);
		return 1;
	}
	record(&l->st, (now_s() - c->started) * 1000, c->expect);
	return 1;
}

/* Send what is left of the request; false when the connection failed. */
static bool on_writable(struct conn *c)
{
	while (c->sent < c->req_len) {
		ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		c->sent += (size_t)n;
	}
	return true;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	const struct opts *o = l->o;
	struct epoll_event evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	for (int i = 0; i < l->nconns; i++) {
		struct conn *c = &l->conns[i];
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
					  .data.ptr = c };

		make_request(o, c);
		c->started = now_s();
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	while (!atomic_load(&stop_now)) {
		int n = epoll_wait(ep, evs, 64, 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			bool ok = true;

			if (evs[i].events & EPOLLOUT)
				ok = on_writable(c);
			while (ok && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				ssize_t got = recv(c->fd, c->resp + c->resp_len,
						   sizeof(c->resp) - c->resp_len - 1, 0);
				int done;

				if (got < 0 && errno == EAGAIN)
					break;
				if (got <= 0) {
					ok = false;
					break;
				}
				c->resp_len += (size_t)got;
				c->resp[c->resp_len] = '\0';
				done = response_done(l, c);
				if (done < 0) {
					ok = false;
					break;
				}
				if (done == 0)
					continue;
				make_request(o, c);
				c->started = now_s();
				ok = on_writable(c);
			}
			if (!ok) {
				l->st.errors++;
				snprintf(l->st.error, sizeof(l->st.error),
					 "connection lost: %s", strerror(errno));
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
			}
		}
	}
	close(ep);
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
	*o = (struct opts){ .conns = 32, .threads = 1, .seconds = 10,
			    .warmup = 2, .keys = 10000, .hosts = 100,
			    .w = { .batch = 100 } };
	if (argc < 4)
		return -1;
	o->host = argv[1];
	o->port = (int)number(argv[2]);
	o->token = argv[3];
	for (int i = 4; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return -1;
		if (strcmp(k, "--mix") == 0 && strcmp(v, "realistic") == 0)
			o->w.mix = MIX_REALISTIC;
		else if (strcmp(k, "--mix") == 0 && strcmp(v, "churn") == 0)
			o->w.mix = MIX_CHURN;
		else if (strcmp(k, "--ids") == 0 && (strcmp(v, "v4") == 0 ||
						     strcmp(v, "v7") == 0))
			o->w.v4 = strcmp(v, "v4") == 0;
		else if (strcmp(k, "--connections") == 0)
			o->conns = (int)number(v);
		else if (strcmp(k, "--threads") == 0)
			o->threads = (int)number(v);
		else if (strcmp(k, "--seconds") == 0)
			o->seconds = number(v);
		else if (strcmp(k, "--warmup") == 0)
			o->warmup = v[0] == '0' && v[1] == '\0' ? 0 : number(v);
		else if (strcmp(k, "--batch") == 0)
			o->w.batch = (int)number(v);
		else if (strcmp(k, "--keys") == 0)
			o->keys = (int)number(v);
		else if (strcmp(k, "--hosts") == 0)
			o->hosts = (int)number(v);
		else if (strcmp(k, "--server-pid") == 0)
			o->server_pid = (int)number(v);
		else
			return -1;
	}
	if (o->port <= 0 || o->conns < 1 || o->conns > MAX_CONNS ||
	    o->threads < 1 || o->threads > MAX_THREADS ||
	    o->threads > o->conns || o->w.batch < 1 || o->w.batch > 10000 ||
	    o->hosts < o->conns || o->hosts > 9999 || o->keys < o->hosts ||
	    o->keys / o->hosts > 9999 || o->seconds <= 0 || o->warmup < 0 ||
	    o->server_pid < 0)
		return -1;
	return 0;
}

/* utime + stime of /proc/PID[/task/TID]/stat in seconds, or -1. */
static double proc_cpu_s(const char *path)
{
	char buf[1024], *p;
	unsigned long long ut, st;
	FILE *fp = fopen(path, "re");
	size_t n;

	if (fp == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of the server's thread named comm, or -1. */
static double thread_cpu_s(int pid, const char *comm)
{
	char dir[64], path[384], name[64];
	struct dirent *de;
	double cpu = -1;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", pid);
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		FILE *fp;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
		fp = fopen(path, "re");
		if (fp == NULL)
			continue;
		if (fgets(name, sizeof(name), fp) && strncmp(name, comm, strlen(comm)) == 0) {
			snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
			cpu = proc_cpu_s(path);
		}
		fclose(fp);
	}
	if (d)
		closedir(d);
	return cpu;
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct cpu_mark {
	double self, server, writer;
};

static void cpu_mark(const struct opts *o, struct cpu_mark *m)
{
	char path[64];

	m->self = self_cpu_s();
	m->server = m->writer = -1;
	if (o->server_pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/stat", o->server_pid);
		m->server = proc_cpu_s(path);
		m->writer = thread_cpu_s(o->server_pid, "tocsin-writer");
	}
}

static void print_results(const struct opts *o, struct loop *loops,
			  double elapsed, const struct cpu_mark *a,
			  const struct cpu_mark *b)
{
	uint64_t events = 0, requests = 0, errors = 0;
	size_t n = 0;
	double *all;

	for (int i = 0; i < o->threads; i++)
		n += loops[i].st.nlat;
	all = malloc((n ? n : 1) * sizeof(double));
	if (all == NULL)
		abort();
	n = 0;
	for (int i = 0; i < o->threads; i++) {
		struct stats *st = &loops[i].st;

		memcpy(all + n, st->lat_ms, st->nlat * sizeof(double));
		n += st->nlat;
		events += st->events;
		requests += st->requests;
		errors += st->errors;
		if (st->error[0])
			fprintf(stderr, "ingest_load: %s\n", st->error);
	}
	qsort(all, n, sizeof(double), cmp_double);
	printf("ingest (%s, %s ids): %d connections, %d events/batch, %d keys: "
	       "%.0f events/s, %.0f requests/s, latency p50 %.1f ms, p90 %.1f ms, "
	       "p99 %.1f ms, max %.1f ms, %llu errors, %.1f s\n",
	       o->w.mix == MIX_CHURN ? "churn" : "realistic", o->w.v4 ? "v4" : "v7",
	       o->conns, o->w.batch, o->keys, (double)events / elapsed,
	       (double)requests / elapsed, n ? all[n / 2] : 0.0,
	       n ? all[(size_t)((double)n * 0.90)] : 0.0,
	       n ? all[(size_t)((double)n * 0.99)] : 0.0, n ? all[n - 1] : 0.0,
	       (unsigned long long)errors, elapsed);
	if (events > 0) {
		double per = 1e6 / (double)events;

		printf("ingest cpu per event: load generator %.2f us", (b->self - a->self) * per);
		if (a->server >= 0 && b->server >= 0)
			printf(", server %.2f us", (b->server - a->server) * per);
		if (a->writer >= 0 && b->writer >= 0)
			printf(" (writer thread %.2f us, the rest %.2f us)",
			       (b->writer - a->writer) * per,
			       (b->server - a->server - (b->writer - a->writer)) * per);
		printf("; cores busy: load generator %.2f",
		       (b->self - a->self) / elapsed);
		if (a->server >= 0 && b->server >= 0)
			printf(", server %.2f", (b->server - a->server) / elapsed);
		printf("\n");
	}
	free(all);
}

int main(int argc, char **argv)
{
	static struct loop loops[MAX_THREADS];
	static struct conn conns[MAX_CONNS];
	struct cpu_mark a, b;
	struct opts o;
	double started;
	int per;

	if (parse_args(argc, argv, &o) < 0) {
		fprintf(stderr,
			"usage: ingest_load HOST PORT TOKEN [--connections N] [--threads T]"
			" [--seconds S] [--warmup S] [--batch B] [--keys K] [--hosts H]"
			" [--mix realistic|churn] [--ids v7|v4] [--server-pid PID]\n"
			"  (at least as many hosts as connections, at most 9999 of each)\n");
		return 2;
	}
	o.w.items_per_host = o.keys / o.hosts;
	/* Simulated rounds are a minute apart and end before now. */
	o.w.base_ms = (wall_ms() / 60000 - 30 * 24 * 60) * 60000;
	for (int i = 0; i < o.conns; i++) {
		struct conn *c = &conns[i];
		int fd = connect_to(&o);

		if (fd < 0) {
			fprintf(stderr, "ingest_load: connect: %s\n", strerror(-fd));
			return 1;
		}
		*c = (struct conn){ .fd = fd };
		c->nagents = (o.hosts - i + o.conns - 1) / o.conns;
		c->agents = calloc((size_t)c->nagents, sizeof(*c->agents));
		c->req = malloc((size_t)o.w.batch * WORKLOAD_EVENT_MAX + 1024);
		if (c->agents == NULL || c->req == NULL)
			abort();
		for (int k = 0; k < c->nagents; k++) {
			c->agents[k].index = i + k * o.conns;
			c->agents[k].rng = 0x9e3779b97f4a7c15ULL *
						   (uint64_t)(c->agents[k].index + 1) ^
					   (uint64_t)wall_ms();
		}
	}
	per = (o.conns + o.threads - 1) / o.threads;
	for (int t = 0; t < o.threads; t++) {
		loops[t].o = &o;
		loops[t].conns = &conns[t * per];
		loops[t].nconns = t == o.threads - 1 ? o.conns - t * per : per;
		pthread_create(&loops[t].thread, NULL, loop_main, &loops[t]);
	}
	started = now_s();
	while (now_s() - started < o.warmup)
		usleep(10000);
	cpu_mark(&o, &a);
	atomic_store(&measuring, true);
	started = now_s();
	while (now_s() - started < o.seconds)
		usleep(10000);
	atomic_store(&measuring, false);
	cpu_mark(&o, &b);
	print_results(&o, loops, now_s() - started, &a, &b);
	atomic_store(&stop_now, true);
	for (int t = 0; t < o.threads; t++)
		pthread_join(loops[t].thread, NULL);
	for (int i = 0; i < o.conns; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
		free(conns[i].agents);
		free(conns[i].req);
	}
	for (int t = 0; t < o.threads; t++)
		free(loops[t].st.lat_ms);
	return 0;
}
