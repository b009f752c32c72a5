#include "trapmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define BLOCK_SIZE (16 * 1024)

void trapmsg_init(struct trap_msg *m)
{
	memset(m, 0, sizeof(*m));
}

void trapmsg_reset(struct trap_msg *m)
{
	struct trapmsg_block *arena = m->arena;
	struct trap_varbind *vb = m->vb;
	size_t cap = m->vb_cap;

	for (struct trapmsg_block *b = arena; b; b = b->next)
		b->len = 0;
	memset(m, 0, sizeof(*m));
	m->arena = m->arena_cur = arena;
	m->vb = vb;
	m->vb_cap = cap;
}

void trapmsg_free(struct trap_msg *m)
{
	struct trapmsg_block *next;

	if (m == NULL)
		return;
	for (struct trapmsg_block *b = m->arena; b; b = next) {
		next = b->next;
		free(b);
	}
	free(m->vb);
	memset(m, 0, sizeof(*m));
}

struct trap_varbind *trapmsg_add_varbind(struct trap_msg *m, size_t max)
{
	struct trap_varbind *v;

	if (m->nvb >= max)
		return NULL;
	if (m->nvb == m->vb_cap) {
		m->vb_cap = m->vb_cap ? m->vb_cap * 2 : 16;
		m->vb = xreallocarray(m->vb, m->vb_cap, sizeof(*m->vb));
	}
	v = &m->vb[m->nvb++];
	memset(v, 0, sizeof(*v));
	v->index = "";
	return v;
}

/* Room for n bytes in the arena: reuse a block with room, or add one. */
static char *arena_alloc(struct trap_msg *m, size_t n)
{
	struct trapmsg_block *b, **tail;
	char *p;

	for (b = m->arena_cur; b; b = b->next)
		if (b->cap - b->len >= n)
			break;
	if (b == NULL) {
		size_t cap = n > BLOCK_SIZE ? n : BLOCK_SIZE;

		for (tail = &m->arena; *tail; tail = &(*tail)->next)
			;
		b = xcalloc(1, sizeof(*b) + cap);
		b->cap = cap;
		*tail = b;
	}
	/* Texts are written in order; earlier blocks with room stay usable. */
	if (m->arena_cur == NULL)
		m->arena_cur = b;
	p = b->data + b->len;
	b->len += n;
	return p;
}

const char *trapmsg_store(struct trap_msg *m, const char *text, size_t len)
{
	char *p = arena_alloc(m, len + 1);

	memcpy(p, text, len);
	p[len] = '\0';
	return p;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_sequence(const uint8_t *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

/* Text a technician can read as it is: UTF-8, no controls but \t\r\n. */
static bool readable_text(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence(s + i, n - i);

		if (len == 0)
			return false;
		if (len == 1 && (s[i] < 0x20 || s[i] == 0x7f) && s[i] != '\t' &&
		    s[i] != '\r' && s[i] != '\n')
			return false;
		i += len;
	}
	return true;
}

const char *trapmsg_store_bytes(struct trap_msg *m, const uint8_t *data,
				size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p;

	/* Devices often send C strings with their terminator, or a newline. */
	while (len > 0 && (data[len - 1] == '\0' || data[len - 1] == '\n' ||
			   data[len - 1] == '\r'))
		len--;
	if (readable_text(data, len)) {
		p = arena_alloc(m, len + 1);
		for (size_t i = 0; i < len; i++)
			p[i] = data[i] == '\t' || data[i] == '\r' ||
					       data[i] == '\n'
				       ? ' '
				       : (char)data[i];
		p[len] = '\0';
		return p;
	}
	p = arena_alloc(m, len * 3 + 1);
	for (size_t i = 0; i < len; i++) {
		p[i * 3] = hex[data[i] >> 4];
		p[i * 3 + 1] = hex[data[i] & 0xf];
		p[i * 3 + 2] = i + 1 < len ? ' ' : '\0';
	}
	p[len ? len * 3 - 1 : 0] = '\0';
	return p;
}

void trapmsg_set_source(struct trap_msg *m, const struct sockaddr *from,
			socklen_t fromlen)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)from;

	/* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d. */
	if (from->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&m->source;

		memset(s4, 0, sizeof(*s4));
		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		m->source_len = sizeof(*s4);
	} else {
		if (fromlen > sizeof(m->source))
			fromlen = sizeof(m->source);
		memcpy(&m->source, from, fromlen);
		m->source_len = fromlen;
	}
	if (m->source.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&m->source)->sin_addr,
			  m->source_text, sizeof(m->source_text));
	else if (m->source.ss_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)&m->source)->sin6_addr,
			  m->source_text, sizeof(m->source_text));
}

bool trap_oid_has_prefix(const uint32_t *sub, size_t len,
			 const uint32_t *prefix, size_t prefix_len)
{
	return len >= prefix_len &&
	       memcmp(sub, prefix, prefix_len * sizeof(*sub)) == 0;
}

bool trap_oid_equal(const uint32_t *a, size_t alen, const uint32_t *b,
		    size_t blen)
{
	return alen == blen && memcmp(a, b, alen * sizeof(*a)) == 0;
}

const struct trap_varbind *trapmsg_find(const struct trap_msg *m,
					const uint32_t *prefix, size_t len)
{
	for (size_t i = 0; i < m->nvb; i++)
		if (trap_oid_has_prefix(m->vb[i].oid.sub, m->vb[i].oid.len,
					prefix, len))
			return &m->vb[i];
	return NULL;
}

void trap_oid_format(const uint32_t *sub, size_t len, char *buf, size_t size)
{
	size_t used = 0;

	/* By hand, not snprintf(): this runs for every varbind of every trap. */
	if (size == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		char digits[10];
		size_t n = 0;
		uint32_t v = sub[i];

		do {
			digits[n++] = (char)('0' + v % 10);
			v /= 10;
		} while (v != 0);
		if (used + n + (i > 0) >= size)
			break;
		if (i > 0)
			buf[used++] = '.';
		while (n > 0)
			buf[used++] = digits[--n];
	}
	buf[used] = '\0';
}

int trap_oid_parse(const char *text, struct trap_oid *ret)
{
	struct trap_oid oid = { .len = 0 };
	const char *p = text;

	if (*p == '.')
		p++;
	if (*p == '\0')
		return -EINVAL;
	while (*p) {
		uint64_t v = 0;

		if (*p < '0' || *p > '9' || oid.len == TRAP_OID_MAX)
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			v = v * 10 + (uint64_t)(*p - '0');
			if (v > UINT32_MAX)
				return -EINVAL;
			p++;
		}
		oid.sub[oid.len++] = (uint32_t)v;
		if (*p == '.' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return -EINVAL;
	}
	*ret = oid;
	return 0;
}

const char *trap_version_name(enum trap_version v)
{
	switch (v) {
	case TRAP_V1:
		return "1";
	case TRAP_V2C:
		return "2c";
	case TRAP_V3:
		return "3";
	}
	return "unknown";
}

const char *trap_outcome_name(enum trap_outcome o)
{
	static const char *const names[] = {
		[TRAP_ACCEPTED] = "accepted",
		[TRAP_DISCOVERY] = "discovery",
		[TRAP_MALFORMED] = "malformed",
		[TRAP_OVERSIZED] = "oversized",
		[TRAP_NOT_A_NOTIFICATION] = "not_a_notification",
		[TRAP_BAD_COMMUNITY] = "bad_community",
		[TRAP_UNKNOWN_USER] = "unknown_user",
		[TRAP_AUTH_FAILURE] = "auth_failure",
		[TRAP_DECRYPTION_FAILURE] = "decryption_failure",
		[TRAP_NOT_IN_TIME_WINDOW] = "not_in_time_window",
		[TRAP_SECURITY_LEVEL] = "security_level",
		[TRAP_UNAUTHORISED] = "unauthorised",
		[TRAP_UNKNOWN_ENGINE_ID] = "unknown_engine_id",
		[TRAP_RATE_LIMITED] = "rate_limited",
	};

	if ((unsigned)o >= ARRAY_SIZE(names) || names[o] == NULL)
		return "unknown";
	return names[o];
}
