#include "traplisten.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/util.h"
#include "dedup.h"
#include "metrics.h"
#include "store.h"
#include "trap.h"
#include "trapcap.h"
#include "trapclock.h"
#include "trapconf.h"
#include "trapdev.h"
#include "trapevent.h"
#include "trapmap.h"
#include "trapmsg.h"
#include "traprate.h"
#include "trapreview.h"
#include "writer.h"

#define SOCKETS_MAX 8
#define RECV_BATCH 64
/* Jobs of ours at the writer: one committing, one queued behind it. */
#define IN_FLIGHT_MAX 2
#define DROP_LOG_INTERVAL_MS 10000
/*
 * A batch the store refused (busy past its timeout, disk full) is tried
 * again this often in all, after 0.1 s, 0.2 s, ... up to 5 s between
 * attempts: about a minute with SQLite's busy timeout, before its traps
 * are counted lost.
 */
#define STORE_ATTEMPTS 8
#define RETRY_FIRST_MS 100
#define RETRY_LAST_MS 5000

enum version_label {
	V_1,
	V_2C,
	V_3,
	V_UNKNOWN,
	V_COUNT,
};

struct counters {
	atomic_uint_fast64_t received[V_COUNT];
	atomic_uint_fast64_t decoded;
	atomic_uint_fast64_t outcome[TRAP_OUTCOME_COUNT]; /* rejections, discovery */
	atomic_uint_fast64_t matched;	     /* stored as events of a mapping */
	atomic_uint_fast64_t unmatched;	     /* stored by the fallback, or ignored */
	atomic_uint_fast64_t unknown_device; /* stored for review */
	atomic_uint_fast64_t review_dropped; /* oldest review rows deleted */
	atomic_uint_fast64_t dropped_backlog;
	atomic_uint_fast64_t dropped_store;
	atomic_uint_fast64_t store_retries;
	atomic_uint_fast64_t fallback_capped;
	atomic_uint_fast64_t informs_acked;
	atomic_uint_fast64_t ack_failed;
	atomic_uint_fast64_t duplicates;
	atomic_uint_fast64_t tickets_opened;
	atomic_uint_fast64_t tickets_updated;
	atomic_uint_fast64_t tickets_resolved;
	atomic_uint_fast64_t jobs;
};

/* Per event of a group: what the fallback cap needs to decide again. */
struct event_extra {
	bool fallback;
	const char *item, *summary; /* as the mapping rendered them */
};

/* The events of one device in a batch, in the order they arrived. */
struct dev_group {
	const struct trap_device *dev;
	struct ingest_event *events;
	struct event_extra *extra;
	size_t n, cap;
	size_t nfallback;
};

/* What one writer job stores. */
struct batch {
	struct traplisten *l;
	/*
	 * The trap configuration it was collected with: its groups point to
	 * its devices.  Kept, as every loaded configuration, until exit.
	 */
	const struct trap_config *conf;
	uint64_t seq;	   /* creation order, kept when it is tried again */
	struct dev_group *groups;
	size_t ngroups, gcap;
	int32_t *group_of; /* per configured device: its group, or -1 */
	char **strings;	   /* the texts the events point into */
	size_t nstrings, scap;
	struct trapreview_row *rows;
	size_t nrows, rcap;
	struct trap_ack *acks;
	size_t nacks, acap;
	struct trapclock_entry *clocks; /* v3 sender engines, one entry each */
	size_t nclocks, ccap;
	size_t count; /* traps in it */
	size_t matched, unmatched, unknown;
	unsigned failures;   /* attempts the store refused */
	int64_t retry_at_ms; /* monotonic: not before this (0: at once) */
	struct dedup_stats stats; /* what the job did, counted once committed */
	size_t review_dropped, capped;
	struct batch *next;
};

struct traplisten {
	/*
	 * The trap configuration of the listener thread, and the one a reload
	 * offered (traplisten_reconfigure()); the thread takes it up between
	 * two datagrams.  bound: the one of the start, whose addresses,
	 * engine id, MIBs and sizes stay.
	 */
	const struct trap_config *conf;
	const struct trap_config *_Atomic offered;
	const struct trap_config *bound;
	size_t max_packet; /* bound's: the receive buffers are that large */
	int fds[SOCKETS_MAX];
	uint16_t ports[SOCKETS_MAX];
	size_t nfds;
	bool privileged;
	ino_t inodes[SOCKETS_MAX];
	int wake; /* eventfd: a job finished, or stop */
	pthread_t thread;
	bool started;
	struct trap_engine *engine;
	struct trapreview *review;
	struct trapclock *clocks;
	struct trapcap *cap;
	struct traprate *rate;
	struct store *st;
	struct writer *writer;
	struct counters c;

	pthread_mutex_t lock; /* in_flight, finished, failed, stopping */
	pthread_cond_t idle;
	unsigned in_flight;
	struct batch *finished; /* done with, for the thread to free */
	struct batch *failed;	/* refused by the store, to be queued again */
	bool stopping;

	/* The thread's own (and traplisten_stop()'s once it has joined). */
	struct batch *head, *tail; /* waiting for the writer */
	size_t pending;		   /* traps in them */
	uint64_t next_seq;
	struct trap_msg msg;
	uint8_t *bufs;
	int64_t last_drop_log_ms;
	uint64_t drops_since_log;
	int64_t last_limit_log_ms;
	uint64_t limited_since_log;
	uint64_t uuid_ms;
	uint16_t uuid_seq;
	uint8_t random[4096];
	size_t random_used;
};

/* --- sockets --------------------------------------------------------- */

/* The largest receive buffer we may have: as root beyond rmem_max. */
static void set_rcvbuf(int fd, size_t size)
{
	int v = size > INT32_MAX ? INT32_MAX : (int)size;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

static int bind_one(struct traplisten *l, const struct trap_listen *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char port[8];
	int fd = -1, r, off = 0;
	struct stat st;

	if (l->nfds == SOCKETS_MAX)
		return -ENOSPC;
	snprintf(port, sizeof(port), "%u", spec->port);
	/* Every address: one IPv6 socket that takes IPv4 as well. */
	hints.ai_family = spec->host ? AF_UNSPEC : AF_INET6;
	r = getaddrinfo(spec->host, port, &hints, &res);
	if (r != 0 && spec->host == NULL) {
		hints.ai_family = AF_INET;
		r = getaddrinfo(NULL, port, &hints, &res);
	}
	if (r != 0)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0 && spec->host == NULL && errno == EAFNOSUPPORT) {
		/* No IPv6 on this machine: every IPv4 address. */
		freeaddrinfo(res);
		hints.ai_family = AF_INET;
		r = getaddrinfo(NULL, port, &hints, &res);
		if (r != 0)
			return -EADDRNOTAVAIL;
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (res->ai_family == AF_INET6 && spec->host == NULL)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	set_rcvbuf(fd, l->conf->receive_buffer);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0 ||
	    fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	freeaddrinfo(res);
	l->ports[l->nfds] = ntohs(ss.ss_family == AF_INET6
					  ? ((struct sockaddr_in6 *)&ss)->sin6_port
					  : ((struct sockaddr_in *)&ss)->sin_port);
	if (l->ports[l->nfds] < 1024)
		l->privileged = true;
	l->inodes[l->nfds] = st.st_ino;
	l->fds[l->nfds++] = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return r;
}

int traplisten_bind(const struct trap_config *conf, struct traplisten **ret)
{
	struct traplisten *l = xcalloc(1, sizeof(*l));
	int r = 0;

	l->conf = conf;
	l->bound = conf;
	atomic_init(&l->offered, conf);
	l->max_packet = conf->max_packet;
	l->wake = -1;
	for (size_t i = 0; r == 0 && i < conf->nlisten; i++)
		r = bind_one(l, &conf->listen[i]);
	if (r < 0) {
		traplisten_stop(l);
		return r;
	}
	*ret = l;
	return 0;
}

uint16_t traplisten_port(const struct traplisten *l)
{
	return l->nfds ? l->ports[0] : 0;
}

bool traplisten_privileged(const struct traplisten *l)
{
	return l->privileged;
}

const char *traplisten_describe(const struct traplisten *l)
{
	static char text[512];

	text[0] = '\0';
	for (size_t i = 0; i < l->bound->nlisten && i < l->nfds; i++) {
		char one[96];
		const char *h = l->bound->listen[i].host;
		bool v6 = h && strchr(h, ':');

		snprintf(one, sizeof(one), "%s%s%s%s:%u", i ? ", " : "",
			 v6 ? "[" : "", h ? h : "*", v6 ? "]" : "", l->ports[i]);
		strlcat_safe(text, one, sizeof(text));
	}
	return text;
}

/* --- batches ------------------------------------------------------------ */

static struct batch *batch_new(struct traplisten *l)
{
	struct batch *b = xcalloc(1, sizeof(*b));

	b->l = l;
	b->conf = l->conf;
	b->seq = l->next_seq++;
	b->group_of = xcalloc(l->conf->ndevices + 1, sizeof(*b->group_of));
	for (size_t i = 0; i < l->conf->ndevices; i++)
		b->group_of[i] = -1;
	return b;
}

static void batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->ngroups; i++) {
		free(b->groups[i].events);
		free(b->groups[i].extra);
	}
	free(b->groups);
	free(b->group_of);
	for (size_t i = 0; i < b->nstrings; i++)
		free(b->strings[i]);
	free(b->strings);
	for (size_t i = 0; i < b->nrows; i++)
		trapreview_row_clear(&b->rows[i]);
	free(b->rows);
	for (size_t i = 0; i < b->nacks; i++)
		trap_ack_clear(&b->acks[i]);
	free(b->acks);
	free(b->clocks);
	free(b);
}

/*
 * The batch new traps go to: the last one, unless it is full, posted
 * once, or of the configuration before a reload.
 */
static struct batch *current_batch(struct traplisten *l)
{
	if (l->tail == NULL || l->tail->count >= l->conf->batch_max ||
	    l->tail->failures > 0 || l->tail->conf != l->conf) {
		struct batch *b = batch_new(l);

		if (l->tail)
			l->tail->next = b;
		else
			l->head = b;
		l->tail = b;
	}
	return l->tail;
}

static struct ingest_event *add_event(struct batch *b,
				      const struct trap_device *d,
				      struct event_extra **ret_extra)
{
	size_t di = (size_t)(d - b->conf->devices);
	struct dev_group *g;

	if (b->group_of[di] < 0) {
		if (b->ngroups == b->gcap) {
			b->gcap = b->gcap ? b->gcap * 2 : 8;
			b->groups = xreallocarray(b->groups, b->gcap,
						  sizeof(*b->groups));
		}
		b->group_of[di] = (int32_t)b->ngroups;
		b->groups[b->ngroups++] = (struct dev_group){ .dev = d };
	}
	g = &b->groups[b->group_of[di]];
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->events = xreallocarray(g->events, g->cap, sizeof(*g->events));
		g->extra = xreallocarray(g->extra, g->cap, sizeof(*g->extra));
	}
	memset(&g->events[g->n], 0, sizeof(g->events[g->n]));
	memset(&g->extra[g->n], 0, sizeof(g->extra[g->n]));
	*ret_extra = &g->extra[g->n];
	return &g->events[g->n++];
}

/* Keep s (malloc'ed) until the batch is freed. */
static char *batch_keep(struct batch *b, char *s)
{
	if (b->nstrings == b->scap) {
		b->scap = b->scap ? b->scap * 2 : 64;
		b->strings = xreallocarray(b->strings, b->scap,
					   sizeof(*b->strings));
	}
	b->strings[b->nstrings++] = s;
	return s;
}

static void batch_add_ack(struct batch *b, struct trap_ack *ack)
{
	if (b->nacks == b->acap) {
		b->acap = b->acap ? b->acap * 2 : 8;
		b->acks = xreallocarray(b->acks, b->acap, sizeof(*b->acks));
	}
	b->acks[b->nacks++] = *ack;
	memset(ack, 0, sizeof(*ack));
}

/*
 * The clock an authentic v3 trap left in USM, saved with the batch: one
 * entry per engine, the latest reading (USM's clock only moves forward).
 */
static void batch_add_clock(struct batch *b, const struct trap_msg *m)
{
	struct trapclock_entry *e = NULL;

	for (size_t i = b->nclocks; i > 0 && e == NULL; i--)
		if (b->clocks[i - 1].len == m->engine_id_len &&
		    memcmp(b->clocks[i - 1].engine, m->engine_id,
			   m->engine_id_len) == 0)
			e = &b->clocks[i - 1];
	if (e == NULL) {
		if (b->nclocks == b->ccap) {
			b->ccap = b->ccap ? b->ccap * 2 : 8;
			b->clocks = xreallocarray(b->clocks, b->ccap,
						  sizeof(*b->clocks));
		}
		e = &b->clocks[b->nclocks++];
		memcpy(e->engine, m->engine_id, m->engine_id_len);
		e->len = m->engine_id_len;
	}
	e->boots = m->engine_boots;
	e->time = m->engine_time;
}

/* --- events --------------------------------------------------------------- */

static void random_bytes(struct traplisten *l, uint8_t *out, size_t n)
{
	if (l->random_used + n > sizeof(l->random)) {
		randombytes_buf(l->random, sizeof(l->random));
		l->random_used = 0;
	}
	memcpy(out, l->random + l->random_used, n);
	l->random_used += n;
}

/*
 * A time-ordered id (UUID version 7, RFC 9562): events are inserted in
 * key order, which keeps SQLite's index appends cheap at trap rates.
 */
static void time_ordered_id(struct traplisten *l, int64_t now_ms,
			    uint8_t id[16])
{
	uint64_t ms = (uint64_t)now_ms;

	if (ms <= l->uuid_ms) {
		ms = l->uuid_ms;
		if (++l->uuid_seq == 0x1000) { /* 12 bits used up */
			ms = ++l->uuid_ms;
			l->uuid_seq = 0;
		}
	} else {
		l->uuid_ms = ms;
		l->uuid_seq = 0;
	}
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	id[6] = (uint8_t)(0x70 | (l->uuid_seq >> 8));
	id[7] = (uint8_t)l->uuid_seq;
	random_bytes(l, id + 8, 8);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/*
 * A mapped trap of device d becomes an event of the current batch; more
 * than one when it clears for several mappings (trapmap.h), but it
 * counts once (first).
 */
static void collect_event(struct traplisten *l, const struct trap_msg *m,
			  const struct trap_device *d,
			  const struct trapmap_result *res, bool first,
			  int64_t now_ms)
{
	struct batch *b = current_batch(l);
	struct event_extra *x;
	struct ingest_event *ev = add_event(b, d, &x);
	size_t lc = strlen(res->check), li = strlen(res->item),
	       ls = strlen(res->summary);
	char *s = batch_keep(b, xcalloc(1, lc + li + ls + 6));

	/* One allocation for check, item, summary and the empty metrics. */
	memcpy(s, res->check, lc + 1);
	memcpy(s + lc + 1, res->item, li + 1);
	memcpy(s + lc + li + 2, res->summary, ls + 1);
	memcpy(s + lc + li + ls + 3, "{}", 3);
	ev->check = s;
	ev->item = s + lc + 1;
	ev->summary = s + lc + li + 2;
	ev->metrics = s + lc + li + ls + 3;
	ev->context = batch_keep(b, trapevent_context(m, res->mapping));
	ev->state = res->state;
	ev->observed_ms = now_ms;
	if (m->inform)
		trapevent_inform_id(m, d->host, res->mapping, ev->id);
	else
		time_ordered_id(l, now_ms, ev->id);
	*x = (struct event_extra){ .fallback = res->fallback,
				   .item = ev->item,
				   .summary = ev->summary };
	if (res->fallback)
		b->groups[b->group_of[d - b->conf->devices]].nfallback++;
	if (!first)
		return;
	if (res->fallback)
		b->unmatched++;
	else
		b->matched++;
	b->count++;
	l->pending++;
}

/* A trap no device claims goes to the review table. */
static void collect_unknown(struct traplisten *l, const struct trap_msg *m,
			    int64_t now_ms)
{
	struct batch *b = current_batch(l);

	if (b->nrows == b->rcap) {
		b->rcap = b->rcap ? b->rcap * 2 : 8;
		b->rows = xreallocarray(b->rows, b->rcap, sizeof(*b->rows));
	}
	trapevent_review_row(m, now_ms, &b->rows[b->nrows++]);
	b->unknown++;
	b->count++;
	l->pending++;
}

/* --- writer jobs ------------------------------------------------------------ */

static void add_stats(struct dedup_stats *total, const struct dedup_stats *s)
{
	total->duplicates += s->duplicates;
	total->opened += s->opened;
	total->updated += s->updated;
	total->resolved += s->resolved;
}

/*
 * A fallback event of a new trap OID beyond traps.fallback_max open
 * fallback problems of its device goes to the device's one "too many"
 * ticket (trapcap.h).  Decided afresh on every attempt of the batch.
 * 1 when it was sent there, 0 when not, or -errno.
 */
static int cap_fallback(struct batch *b, const struct dev_group *g, size_t k)
{
	struct ingest_event *ev = &g->events[k];
	const struct event_extra *x = &g->extra[k];
	char text[INGEST_SUMMARY_MAX + 1];
	int r;

	ev->item = x->item;
	ev->summary = x->summary;
	r = trapcap_over(b->l->cap, g->dev->host, ev->check, ev->item,
			 b->conf->fallback_max);
	if (r <= 0)
		return r;
	snprintf(text, sizeof(text),
		 "%s sent traps of more than %zu kinds that no mapping describes; new kinds come to this ticket until some of those are resolved. The latest: %s",
		 g->dev->host, b->conf->fallback_max, x->summary);
	ev->item = TRAPCAP_ITEM;
	ev->summary = batch_keep(b, xstrdup(text));
	return 1;
}

/*
 * Writer job: one device's events through dedup, in order.  Without
 * fallback events in one call; with them, the stretches between them in
 * one call each and every fallback event alone, after its cap was looked
 * at, so that what an earlier one opened counts for a later one.
 */
static int apply_group(struct store *st, struct batch *b,
		       const struct dev_group *g, int64_t now,
		       struct dedup_stats *total, size_t *capped)
{
	struct dedup_stats s;
	size_t start = 0;
	int r;

	/*
	 * Through dedup_apply_raised(): a trap says a change once, so there
	 * are no repeats for a rule's confirm_after to count.
	 */
	if (g->nfallback == 0) {
		r = dedup_apply_raised(st, g->dev->host, g->events, g->n, now, &s);
		if (r == 0)
			add_stats(total, &s);
		return r;
	}
	for (size_t k = 0; k <= g->n; k++) {
		if (k < g->n && !g->extra[k].fallback)
			continue;
		if (k > start) {
			r = dedup_apply_raised(st, g->dev->host, g->events + start,
					       k - start, now, &s);
			if (r < 0)
				return r;
			add_stats(total, &s);
		}
		if (k == g->n)
			break;
		r = cap_fallback(b, g, k);
		if (r < 0)
			return r;
		*capped += (size_t)r;
		r = dedup_apply_raised(st, g->dev->host, g->events + k, 1, now, &s);
		if (r < 0)
			return r;
		add_stats(total, &s);
		start = k + 1;
	}
	return 0;
}

/* Writer job: every device's events, the engine clocks, the review rows. */
static int batch_apply(struct store *st, void *arg)
{
	struct batch *b = arg;
	struct traplisten *l = b->l;
	struct dedup_stats total = { 0 };
	int64_t now = time_now_ms();
	size_t dropped = 0, capped = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < b->ngroups; i++)
		r = apply_group(st, b, &b->groups[i], now, &total, &capped);
	for (size_t i = 0; r == 0 && i < b->nclocks; i++)
		r = trapclock_save(l->clocks, &b->clocks[i], now);
	for (size_t i = 0; r == 0 && i < b->nrows; i++)
		r = trapreview_add(l->review, &b->rows[i]);
	if (r == 0 && b->nrows > 0)
		r = trapreview_trim(l->review, b->conf->unknown_keep, &dropped);
	if (r < 0)
		return r;
	b->stats = total;
	b->review_dropped = dropped;
	b->capped = capped;
	return 0;
}

/* Wait before the next attempt: 0.1 s, doubling, at most 5 s. */
static int64_t retry_delay_ms(unsigned failures)
{
	int64_t ms = RETRY_FIRST_MS;

	for (unsigned i = 1; i < failures && ms < RETRY_LAST_MS; i++)
		ms *= 2;
	return ms < RETRY_LAST_MS ? ms : RETRY_LAST_MS;
}

static void count_committed(struct traplisten *l, const struct batch *b)
{
	for (size_t i = 0; i < b->nacks; i++) {
		if (trap_ack_send(&b->acks[i]) == 0)
			l->c.informs_acked++;
		else
			l->c.ack_failed++;
	}
	l->c.matched += b->matched;
	l->c.unmatched += b->unmatched;
	l->c.unknown_device += b->unknown;
	l->c.duplicates += b->stats.duplicates;
	l->c.tickets_opened += b->stats.opened;
	l->c.tickets_updated += b->stats.updated;
	l->c.tickets_resolved += b->stats.resolved;
	l->c.review_dropped += b->review_dropped;
	l->c.fallback_capped += b->capped;
	l->c.jobs++;
}

/*
 * On the writer thread, once the job's commit is known.  A refused batch
 * rolled back whole (its savepoint, or the group's transaction), so it
 * goes back to the listener to be tried again as it is: its event ids
 * are stored nowhere yet, and its informs are still unanswered.
 */
static void batch_done(void *arg, int result)
{
	struct batch *b = arg;
	struct traplisten *l = b->l;
	bool again = false;
	uint64_t one = 1;

	if (result >= 0) {
		count_committed(l, b);
	} else if (b->failures + 1 < STORE_ATTEMPTS) {
		b->failures++;
		b->retry_at_ms = time_mono_ms() + retry_delay_ms(b->failures);
		l->c.store_retries++;
		again = true;
		log_warnx("storing %zu traps failed: %s; trying again in %lld ms (attempt %u of %d)",
			  b->count, strerror(-result),
			  (long long)retry_delay_ms(b->failures), b->failures + 1,
			  STORE_ATTEMPTS);
	} else {
		/* Unacknowledged informs will be sent again; traps are lost. */
		l->c.dropped_store += b->count;
		log_warnx("storing %zu traps failed %d times, last: %s; they are lost (informs will be retransmitted)",
			  b->count, STORE_ATTEMPTS, strerror(-result));
	}
	/*
	 * The listener frees it (the writer is the busier thread, and memory
	 * goes back to the allocator arena it came from), or queues it again.
	 */
	pthread_mutex_lock(&l->lock);
	if (again) {
		b->next = l->failed;
		l->failed = b;
	} else {
		b->next = l->finished;
		l->finished = b;
	}
	l->in_flight--;
	pthread_cond_broadcast(&l->idle);
	pthread_mutex_unlock(&l->lock);
	if (write(l->wake, &one, sizeof(one)) < 0) {
		/* The counter is only full after 2^64 wake-ups. */
	}
}

static void free_finished(struct traplisten *l)
{
	struct batch *b, *next;

	pthread_mutex_lock(&l->lock);
	b = l->finished;
	l->finished = NULL;
	pthread_mutex_unlock(&l->lock);
	for (; b; b = next) {
		next = b->next;
		batch_free(b);
	}
}

/*
 * Put refused batches back at the head of the queue, in the order they
 * were made: they are older than anything queued.  (A batch posted after
 * one that failed may have committed meanwhile; dedup takes the older
 * results that then arrive as late ones, which change no state.)
 */
static void requeue_failed(struct traplisten *l)
{
	struct batch *f, *sorted = NULL;

	pthread_mutex_lock(&l->lock);
	f = l->failed;
	l->failed = NULL;
	pthread_mutex_unlock(&l->lock);
	while (f != NULL) {
		struct batch *b = f, **p = &sorted;

		f = f->next;
		while (*p != NULL && (*p)->seq < b->seq)
			p = &(*p)->next;
		b->next = *p;
		*p = b;
		l->pending += b->count;
	}
	if (sorted == NULL)
		return;
	for (f = sorted; f->next; f = f->next)
		;
	f->next = l->head;
	if (l->head == NULL)
		l->tail = f;
	l->head = sorted;
}

/*
 * Hand waiting batches to the writer while fewer than two of ours are
 * there (any number when stopping), oldest first, none before its retry
 * time.  0, or -EAGAIN when the writer's queue is full of others' work.
 */
static int post_batches(struct traplisten *l, bool stopping, int64_t now_mono)
{
	while (l->head != NULL) {
		struct batch *b = l->head;
		int r;

		if (b->retry_at_ms > now_mono)
			return 0;
		pthread_mutex_lock(&l->lock);
		if (!stopping && l->in_flight >= IN_FLIGHT_MAX) {
			pthread_mutex_unlock(&l->lock);
			return 0;
		}
		l->in_flight++;
		pthread_mutex_unlock(&l->lock);
		/*
		 * Out of the queue first: once posted, the batch is the
		 * writer's, whose batch_done() may reuse b->next at once.
		 */
		l->head = b->next;
		if (l->head == NULL)
			l->tail = NULL;
		l->pending -= b->count;
		b->next = NULL;
		r = writer_post(l->writer, batch_apply, b, batch_done);
		if (r == -EAGAIN) {
			b->next = l->head;
			l->head = b;
			if (l->tail == NULL)
				l->tail = b;
			l->pending += b->count;
			pthread_mutex_lock(&l->lock);
			l->in_flight--;
			pthread_mutex_unlock(&l->lock);
			return r;
		}
		if (r < 0) {
			/* The writer stopped: nothing can store them any more. */
			pthread_mutex_lock(&l->lock);
			l->in_flight--;
			pthread_mutex_unlock(&l->lock);
			l->c.dropped_store += b->count;
			log_warnx("storing %zu traps failed: %s; they are lost",
				  b->count, strerror(-r));
			batch_free(b);
		}
	}
	return 0;
}

/* The writer is traps.backlog behind: this trap is lost; say so, seldom. */
static void drop_trap(struct traplisten *l, int64_t now_ms)
{
	l->c.dropped_backlog++;
	l->drops_since_log++;
	if (now_ms - l->last_drop_log_ms >= DROP_LOG_INTERVAL_MS) {
		log_warnx("trap listener: dropped %llu traps in the last %llds: the writer is %zu traps behind (traps.backlog)",
			  (unsigned long long)l->drops_since_log,
			  (long long)(l->last_drop_log_ms
					      ? (now_ms - l->last_drop_log_ms) / 1000
					      : 0),
			  l->pending);
		l->last_drop_log_ms = now_ms;
		l->drops_since_log = 0;
	}
}

/* Over traps.rate_limit: refused and counted; said seldom, naming the latest. */
static void limit_trap(struct traplisten *l, const struct trap_msg *m,
		       const struct trap_device *d, enum traprate_verdict v,
		       int64_t now_ms)
{
	l->c.outcome[TRAP_RATE_LIMITED]++;
	l->limited_since_log++;
	if (now_ms - l->last_limit_log_ms >= DROP_LOG_INTERVAL_MS) {
		log_warnx("trap listener: refused %llu traps over traps.rate_limit in the last %llds; the latest from %s%s%s, over its %s limit",
			  (unsigned long long)l->limited_since_log,
			  (long long)(l->last_limit_log_ms
					      ? (now_ms - l->last_limit_log_ms) / 1000
					      : 0),
			  m->source_text, d ? " for " : "", d ? d->host : "",
			  v == TRAPRATE_SOURCE ? "source" : "device");
		l->last_limit_log_ms = now_ms;
		l->limited_since_log = 0;
	}
}

/* --- one datagram ------------------------------------------------------------ */

static enum version_label version_of(const struct trap_msg *m)
{
	if (!m->version_known)
		return V_UNKNOWN;
	switch (m->version) {
	case TRAP_V1:
		return V_1;
	case TRAP_V2C:
		return V_2C;
	case TRAP_V3:
		return V_3;
	}
	return V_UNKNOWN;
}

/* Acknowledge an inform with the batch, or at once when nothing is stored. */
static void answer_inform(struct traplisten *l, struct batch *b)
{
	struct trap_ack ack = { .fd = -1 };

	if (trap_inform_response(l->engine, &ack) < 0) {
		l->c.ack_failed++;
		trap_ack_clear(&ack);
		return;
	}
	if (b != NULL) {
		batch_add_ack(b, &ack);
		return;
	}
	if (trap_ack_send(&ack) == 0)
		l->c.informs_acked++;
	else
		l->c.ack_failed++;
	trap_ack_clear(&ack);
}

/*
 * Decode, identify and authorise one datagram; then, within the rate
 * limits and the backlog, collect it into the current batch.  now_ms is
 * the wall clock (event times), now_mono the monotonic one (limits).
 */
static void handle_datagram(struct traplisten *l, int fd, uint8_t *data,
			    size_t len, bool truncated,
			    const struct sockaddr *from, socklen_t fromlen,
			    int64_t now_ms, int64_t now_mono)
{
	struct trap_msg *m = &l->msg;
	const struct trap_device *d = NULL;
	struct trapmap_result res;
	enum traprate_verdict v;
	enum trap_outcome o;
	int r;

	trapmsg_reset(m);
	trapmsg_set_source(m, from, fromlen);
	o = truncated ? TRAP_OVERSIZED
		      : trap_decode(l->engine, fd, data, len, from, fromlen, m);
	if (o == TRAP_ACCEPTED) {
		l->c.decoded++;
		d = trapdev_identify(l->conf, m);
		o = trapdev_authorise(l->conf, m, d);
	}
	l->c.received[version_of(m)]++;
	if (o != TRAP_ACCEPTED) {
		l->c.outcome[o]++;
		/* Counted always; told only when asked (-v), a flood would drown the log. */
		log_debug("trap from %s (%zu bytes) refused: %s", m->source_text,
			  len, trap_outcome_name(o));
		return;
	}
	/* Informs over the limit go unanswered: the sender tries again later. */
	v = traprate_take(l->rate, (const struct sockaddr *)&m->source,
			  d ? (size_t)(d - l->conf->devices) : SIZE_MAX, now_mono);
	if (v != TRAPRATE_PASS) {
		limit_trap(l, m, d, v, now_ms);
		return;
	}
	if (l->pending >= l->conf->backlog_max) {
		drop_trap(l, now_ms);
		return;
	}
	if (d == NULL) {
		collect_unknown(l, m, now_ms);
	} else {
		r = trapmap_apply(l->conf->map, m, d->host, &res);
		if (r < 0) {
			/* No mapping and the fallback switched off: counted only. */
			l->c.unmatched++;
			if (m->inform)
				answer_inform(l, NULL);
			return;
		}
		collect_event(l, m, d, &res, true, now_ms);
		while (trapmap_next_clear(l->conf->map, m, d->host, &res) == 1)
			collect_event(l, m, d, &res, false, now_ms);
	}
	if (m->has_engine_time)
		batch_add_clock(l->tail, m);
	if (m->inform)
		answer_inform(l, l->tail);
}

/* --- the thread ------------------------------------------------------------ */

/*
 * On the listener thread, between two datagrams: take up the trap
 * configuration a reload offered.  Batches collected before keep theirs;
 * the next trap starts a batch of the new one.  When the new users
 * cannot be set up, the running configuration stays (unless a newer one
 * was offered meanwhile, which the next look takes up).
 */
static void adopt_offered(struct traplisten *l)
{
	const struct trap_config *conf =
		atomic_load_explicit(&l->offered, memory_order_acquire);
	const struct trap_config *running = l->conf;
	int r = trap_engine_reconfigure(l->engine, conf);

	if (r < 0) {
		log_warnx("trap listener: the reloaded traps.users cannot be set up: %s; keeping the running trap configuration",
			  strerror(-r));
		atomic_compare_exchange_strong(&l->offered, &conf, running);
		return;
	}
	if (r > 0)
		log_warnx("trap listener: %d SNMPv3 user localisations of the reloaded configuration failed; those traps will be refused",
			  r);
	traprate_reconfigure(l->rate, running, conf);
	l->conf = conf;
	log_notice("trap listener: reloaded configuration applied: %zu devices, %zu users, %zu mappings besides the fallback",
		   conf->ndevices, conf->nusers, trapmap_count(conf->map));
}

/* Read what a socket has, up to a few batches, so no socket starves. */
static void drain_socket(struct traplisten *l, int fd,
			 struct mmsghdr *msgs, struct iovec *iov,
			 struct sockaddr_storage *from)
{
	size_t size = l->max_packet + 1;

	for (int round = 0; round < 16; round++) {
		int64_t now = time_now_ms(), mono = time_mono_ms();
		int n;

		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i].iov_base = l->bufs + (size_t)i * size;
			iov[i].iov_len = size;
			msgs[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i],
				.msg_namelen = sizeof(from[i]),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
			};
		}
		n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			/* A reload applies from the next datagram on. */
			if (atomic_load_explicit(&l->offered,
						 memory_order_acquire) != l->conf)
				adopt_offered(l);
			handle_datagram(l, fd, iov[i].iov_base, msgs[i].msg_len,
					(msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ||
						msgs[i].msg_len > l->max_packet,
					(const struct sockaddr *)&from[i],
					msgs[i].msg_hdr.msg_namelen, now, mono);
		}
		post_batches(l, false, mono);
		if (n < RECV_BATCH)
			return;
	}
}

static bool stopping(struct traplisten *l)
{
	bool s;

	pthread_mutex_lock(&l->lock);
	s = l->stopping;
	pthread_mutex_unlock(&l->lock);
	return s;
}

/* How long poll() may sleep: forever, or until the queue may move on. */
static int poll_timeout(const struct traplisten *l, int64_t now_mono)
{
	int64_t wait;

	if (l->head == NULL)
		return -1;
	/* Room at the writer is not announced: look again soon. */
	wait = l->head->retry_at_ms > now_mono ? l->head->retry_at_ms - now_mono
					       : 10;
	return wait > 1000 ? 1000 : (int)wait;
}

static void *listen_main(void *arg)
{
	struct traplisten *l = arg;
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_storage *from = xcalloc(RECV_BATCH, sizeof(*from));
	struct pollfd pfd[SOCKETS_MAX + 1];

	while (!stopping(l)) {
		uint64_t v;
		int n;

		for (size_t i = 0; i < l->nfds; i++)
			pfd[i] = (struct pollfd){ .fd = l->fds[i], .events = POLLIN };
		pfd[l->nfds] = (struct pollfd){ .fd = l->wake, .events = POLLIN };
		n = poll(pfd, l->nfds + 1, poll_timeout(l, time_mono_ms()));
		if (n < 0 && errno != EINTR)
			break;
		if (pfd[l->nfds].revents & POLLIN) {
			if (read(l->wake, &v, sizeof(v)) < 0) {
				/* Spurious: another wake-up consumed it. */
			}
		}
		requeue_failed(l);
		if (atomic_load_explicit(&l->offered, memory_order_acquire) !=
		    l->conf)
			adopt_offered(l);
		for (size_t i = 0; i < l->nfds; i++)
			if (pfd[i].revents & POLLIN)
				drain_socket(l, l->fds[i], msgs, iov, from);
		post_batches(l, false, time_mono_ms());
		free_finished(l);
	}
	free(from);
	return NULL;
}

/* --- metrics ------------------------------------------------------------------ */

/*
 * The kernel's count of datagrams it dropped for our sockets (receive
 * buffer full): the drops column of /proc/net/udp and udp6 for their
 * inodes.  This is per socket, not the host-wide Udp RcvbufErrors.
 */
static uint64_t socket_drops(const struct traplisten *l)
{
	static const char *const files[] = { "/proc/net/udp", "/proc/net/udp6" };
	uint64_t total = 0;

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		FILE *fp = fopen(files[f], "re");
		char line[512];

		if (fp == NULL)
			continue;
		while (fgets(line, sizeof(line), fp)) {
			unsigned long long inode, drops;
			char *p = line;
			int field = 0;

			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref ptr drops */
			for (char *tok = strtok_r(p, " \t\n", &p); tok;
			     tok = strtok_r(NULL, " \t\n", &p), field++) {
				if (field == 9)
					inode = strtoull(tok, NULL, 10);
				if (field == 12) {
					drops = strtoull(tok, NULL, 10);
					for (size_t i = 0; i < l->nfds; i++)
						if (l->inodes[i] == (ino_t)inode)
							total += drops;
				}
			}
		}
		fclose(fp);
	}
	return total;
}

static void traplisten_metrics(void *arg, struct metrics_out *out)
{
	static const char *const versions[] = { "1", "2c", "3", "unknown" };
	struct traplisten *l = arg;
	struct counters *c = &l->c;
	char label[64];
	unsigned in_flight;

	for (int v = 0; v < V_COUNT; v++) {
		snprintf(label, sizeof(label), "version=\"%s\"", versions[v]);
		metrics_counter(out, "tocsin_traps_received_total",
				"Datagrams read from the trap sockets, by SNMP version.",
				label, c->received[v]);
	}
	metrics_counter(out, "tocsin_traps_decoded_total",
			"Notifications net-snmp decoded (authenticated, for v3).",
			NULL, c->decoded);
	metrics_counter(out, "tocsin_traps_matched_total",
			"Traps stored as events of a mapping.", NULL, c->matched);
	metrics_counter(out, "tocsin_traps_unmatched_total",
			"Traps no mapping matched (stored by the fallback, or ignored when it is off).",
			NULL, c->unmatched);
	for (int o = TRAP_MALFORMED; o < TRAP_OUTCOME_COUNT; o++) {
		snprintf(label, sizeof(label), "reason=\"%s\"",
			 trap_outcome_name((enum trap_outcome)o));
		metrics_counter(out, "tocsin_traps_rejected_total",
				"Datagrams refused, by reason.", label,
				c->outcome[o]);
	}
	metrics_counter(out, "tocsin_traps_discovery_total",
			"SNMPv3 engine-id discovery probes answered with a Report.",
			NULL, c->outcome[TRAP_DISCOVERY]);
	metrics_counter(out, "tocsin_traps_unknown_device_total",
			"Traps from no configured device, kept for review.", NULL,
			c->unknown_device);
	metrics_counter(out, "tocsin_traps_unknown_review_dropped_total",
			"Oldest traps of unknown devices deleted to keep traps.unknown_keep.",
			NULL, c->review_dropped);
	metrics_counter(out, "tocsin_traps_dropped_total",
			"Traps received and lost: the writer was traps.backlog behind, or the store failed every attempt.",
			"reason=\"queue_full\"", c->dropped_backlog);
	metrics_counter(out, "tocsin_traps_dropped_total", NULL,
			"reason=\"store_failed\"", c->dropped_store);
	metrics_counter(out, "tocsin_traps_store_retries_total",
			"Writer jobs of traps the store refused and that were tried again.",
			NULL, c->store_retries);
	metrics_counter(out, "tocsin_traps_fallback_capped_total",
			"Unmapped traps of a new kind sent to their device's too-many-unmapped-traps ticket (traps.fallback_max).",
			NULL, c->fallback_capped);
	metrics_counter(out, "tocsin_traps_informs_acknowledged_total",
			"Informs answered with a Response after their trap was stored.",
			NULL, c->informs_acked);
	metrics_counter(out, "tocsin_traps_inform_ack_failures_total",
			"Responses to informs that could not be encoded or sent.",
			NULL, c->ack_failed);
	metrics_counter(out, "tocsin_traps_duplicates_total",
			"Trap events already stored (retransmitted informs).", NULL,
			c->duplicates);
	metrics_counter(out, "tocsin_traps_tickets_total",
			"Ticket changes caused by traps.", "change=\"opened\"",
			c->tickets_opened);
	metrics_counter(out, "tocsin_traps_tickets_total", NULL,
			"change=\"updated\"", c->tickets_updated);
	metrics_counter(out, "tocsin_traps_tickets_total", NULL,
			"change=\"resolved\"", c->tickets_resolved);
	metrics_counter(out, "tocsin_traps_jobs_total",
			"Writer jobs of traps committed.", NULL, c->jobs);
	metrics_counter(out, "tocsin_traps_udp_receive_errors_total",
			"Datagrams the kernel dropped for the trap sockets (their drops in /proc/net/udp, udp6).",
			NULL, socket_drops(l));
	pthread_mutex_lock(&l->lock);
	in_flight = l->in_flight;
	pthread_mutex_unlock(&l->lock);
	metrics_gauge(out, "tocsin_traps_jobs_in_flight",
		      "Trap jobs at the writer.", NULL, (double)in_flight);
	metrics_gauge(out, "tocsin_traps_v3_engines_discovered",
		      "Users localised to a sender's engine id on its first authentic trap.",
		      NULL, (double)trap_engine_discovered(l->engine));
}

/* --- start and stop ------------------------------------------------------------ */

static int seed_clock(void *arg, const struct trapclock_entry *e)
{
	struct traplisten *l = arg;

	/* One that cannot be told is a clock less, not a reason to stop. */
	trap_engine_seed_clock(l->engine, e->engine, e->len, e->boots, e->time);
	return 0;
}

/* The statements of our tables, and the engine clocks kept before. */
static int open_tables(struct traplisten *l, struct store *st)
{
	int r;

	/* The writer runs already: statements are made under its lock. */
	store_lock(st);
	r = trapreview_open(st, &l->review);
	if (r == 0)
		r = trapclock_open(st, &l->clocks);
	if (r == 0)
		r = trapcap_open(st, &l->cap);
	if (r == 0)
		r = trapclock_each(l->clocks, seed_clock, l);
	store_unlock(st);
	if (r == 0)
		r = writer_run(l->writer, trapclock_trim, l->clocks);
	return r;
}

int traplisten_start(struct traplisten *l, struct store *st,
		     struct writer *w, struct metrics *metrics)
{
	int r;

	l->st = st;
	l->writer = w;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->idle, NULL);
	trapmsg_init(&l->msg);
	l->random_used = sizeof(l->random);
	l->bufs = xcalloc(RECV_BATCH, l->max_packet + 1);
	l->rate = traprate_new(l->conf);
	l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake < 0)
		return -errno;
	r = trap_engine_new(l->conf, &l->engine);
	if (r < 0)
		return r;
	r = open_tables(l, st);
	if (r < 0)
		return r;
	r = metrics_add_source(metrics, traplisten_metrics, l);
	if (r < 0)
		return r;
	r = pthread_create(&l->thread, NULL, listen_main, l);
	if (r != 0)
		return -r;
	l->started = true;
	return 0;
}

/*
 * After the thread has stopped: everything collected to the writer, which
 * still runs, waiting for room in its queue and for refused batches'
 * next attempts rather than dropping anything.  Returns when every batch
 * committed or used up its attempts.
 */
static void flush_batches(struct traplisten *l)
{
	for (;;) {
		int64_t now = time_mono_ms();
		uint64_t v;
		bool done;
		int r, wait = 10;

		requeue_failed(l);
		r = post_batches(l, true, now);
		pthread_mutex_lock(&l->lock);
		done = l->head == NULL && l->failed == NULL && l->in_flight == 0;
		pthread_mutex_unlock(&l->lock);
		if (done)
			break;
		if (r == 0 && l->head != NULL && l->head->retry_at_ms > now)
			wait = poll_timeout(l, now);
		/* Woken early by a job of ours that finished (the eventfd). */
		if (poll(&(struct pollfd){ .fd = l->wake, .events = POLLIN }, 1,
			 wait) > 0 &&
		    read(l->wake, &v, sizeof(v)) < 0) {
			/* Consumed already: nothing lost, the loop looks again. */
		}
		free_finished(l);
	}
	free_finished(l);
}

void traplisten_reconfigure(struct traplisten *l,
			    const struct trap_config *conf)
{
	uint64_t one = 1;

	if (l == NULL || conf == NULL)
		return;
	atomic_store_explicit(&l->offered, conf, memory_order_release);
	if (l->wake >= 0 && write(l->wake, &one, sizeof(one)) < 0) {
		/* Full only after 2^64 wake-ups; the next datagram looks anyway. */
	}
}

const struct trap_config *traplisten_config(const struct traplisten *l)
{
	return l ? atomic_load_explicit(&l->offered, memory_order_acquire)
		 : NULL;
}

void traplisten_stop(struct traplisten *l)
{
	uint64_t one = 1;

	if (l == NULL)
		return;
	if (l->started) {
		pthread_mutex_lock(&l->lock);
		l->stopping = true;
		pthread_mutex_unlock(&l->lock);
		if (write(l->wake, &one, sizeof(one)) < 0) {
			/* The thread also looks at stopping after poll(). */
		}
		pthread_join(l->thread, NULL);
		flush_batches(l);
	}
	for (struct batch *b = l->head, *next; b; b = next) {
		next = b->next;
		batch_free(b);
	}
	for (size_t i = 0; i < l->nfds; i++)
		close(l->fds[i]);
	if (l->wake >= 0)
		close(l->wake);
	/* Their statements belong to the store's connection the writer uses. */
	if (l->st != NULL)
		store_lock(l->st);
	trapreview_close(l->review);
	trapclock_close(l->clocks);
	trapcap_close(l->cap);
	if (l->st != NULL)
		store_unlock(l->st);
	traprate_free(l->rate);
	trap_engine_free(l->engine);
	trapmsg_free(&l->msg);
	free(l->bufs);
	if (l->started) {
		pthread_cond_destroy(&l->idle);
		pthread_mutex_destroy(&l->lock);
	}
	free(l);
}
