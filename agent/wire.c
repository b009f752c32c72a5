#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/utf8.h"
#include "../common/util.h"

void wire_frame_clear(struct wire_frame *f)
{
	if (f == NULL)
		return;
	json_decref(f->head);
	free(f->body);
	*f = (struct wire_frame){ 0 };
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Write all of buf, waiting for room until deadline (monotonic ms). */
static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int64_t left;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return errno == ECONNRESET ? -EPIPE : -errno;
		left = deadline - time_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left > 1000 ? 1000 : (int)left) < 0 &&
		    errno != EINTR)
			return -errno;
		if (p.revents & (POLLERR | POLLHUP))
			return -EPIPE;
	}
	return 0;
}

int wire_send(int fd, const json_t *head, const char *body, size_t len,
	      int64_t timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	char *text = json_dumps(head, JSON_COMPACT);
	size_t tlen;
	char *msg;
	int r;

	if (text == NULL)
		return -ENOMEM;
	tlen = strlen(text);
	if (tlen > WIRE_HEAD_MAX || len > UINT32_MAX) {
		free(text);
		return -EMSGSIZE;
	}
	/* prefix and header in one write, the body (often large) in place */
	msg = xcalloc(1, WIRE_PREFIX_LEN + tlen);
	put_u32((unsigned char *)msg, (uint32_t)tlen);
	put_u32((unsigned char *)msg + 4, (uint32_t)len);
	memcpy(msg + WIRE_PREFIX_LEN, text, tlen);
	free(text);
	r = send_all(fd, msg, WIRE_PREFIX_LEN + tlen, deadline);
	free(msg);
	if (r == 0 && len > 0)
		r = send_all(fd, body, len, deadline);
	return r;
}

void wire_reader_init(struct wire_reader *r, size_t max_body)
{
	*r = (struct wire_reader){ .max_body = max_body };
}

void wire_reader_clear(struct wire_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->have = 0;
}

int wire_reader_idle(const struct wire_reader *r)
{
	return r->have == 0;
}

/* The prefix is in: check the lengths and make room for the rest. */
static int take_prefix(struct wire_reader *r, char *why, size_t whylen)
{
	r->head_len = get_u32(r->prefix);
	r->body_len = get_u32(r->prefix + 4);
	if (r->head_len == 0) {
		snprintf(why, whylen, "a frame without a header (its prefix says 0 header bytes)");
		return -EMSGSIZE;
	}
	if (r->head_len > WIRE_HEAD_MAX) {
		snprintf(why, whylen, "a frame header of %zu bytes, beyond the limit of %d",
			 r->head_len, WIRE_HEAD_MAX);
		return -EMSGSIZE;
	}
	if (r->body_len > r->max_body) {
		snprintf(why, whylen, "a frame body of %zu bytes, beyond the limit of %zu",
			 r->body_len, r->max_body);
		return -EMSGSIZE;
	}
	r->buf = xcalloc(1, r->head_len + r->body_len + 1);
	return 0;
}

static const char *json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}

/* Everything is in: parse the header, hand over the body. */
static int take_frame(struct wire_reader *r, struct wire_frame *ret, char *why,
		      size_t whylen)
{
	json_error_t jerr;
	/* any JSON value, so that one of the wrong type is named as such */
	json_t *head = json_loadb(r->buf, r->head_len, JSON_DECODE_ANY,
				  &jerr);
	char *body = NULL, text[JSON_ERROR_TEXT_LENGTH];

	if (head == NULL) {
		/* jansson quotes the peer's bytes: one line for the log */
		utf8_sanitize(text, sizeof(text), jerr.text, strlen(jerr.text), 0);
		snprintf(why, whylen, "a frame header that is not JSON: %s (at byte %d of %zu)",
			 text, jerr.position, r->head_len);
		return -EBADMSG;
	}
	if (!json_is_object(head)) {
		snprintf(why, whylen, "a frame header that is %s, not a JSON object",
			 json_type_name(head));
		json_decref(head);
		return -EBADMSG;
	}
	/* the body moves to the front of the buffer, which it then owns */
	if (r->body_len > 0) {
		memmove(r->buf, r->buf + r->head_len, r->body_len);
		r->buf[r->body_len] = '\0';
		body = r->buf;
		r->buf = NULL;
	}
	*ret = (struct wire_frame){ .head = head, .body = body,
				    .len = r->body_len };
	wire_reader_clear(r);
	return 1;
}

/*
 * The read ended the conversation (how: "end of file", or the read's
 * error): between frames, or how far into one.
 */
static void describe_end(const struct wire_reader *r, const char *how,
			 char *why, size_t whylen)
{
	if (r->have == 0)
		snprintf(why, whylen, "%s between frames", how);
	else if (r->have < WIRE_PREFIX_LEN)
		snprintf(why, whylen, "a frame cut short: %s after %zu of its %d prefix bytes",
			 how, r->have, WIRE_PREFIX_LEN);
	else
		snprintf(why, whylen, "a frame cut short: %s after %zu of its %zu bytes",
			 how, r->have, WIRE_PREFIX_LEN + r->head_len + r->body_len);
}

int wire_reader_feed(struct wire_reader *r, int fd, struct wire_frame *ret_frame,
		     char *why, size_t whylen)
{
	size_t total, want;
	char *at;
	ssize_t n;
	int rr;

	if (r->have < WIRE_PREFIX_LEN) {
		at = (char *)r->prefix + r->have;
		want = WIRE_PREFIX_LEN - r->have;
	} else {
		total = WIRE_PREFIX_LEN + r->head_len + r->body_len;
		at = r->buf + (r->have - WIRE_PREFIX_LEN);
		want = total - r->have;
	}
	n = read(fd, at, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0) {
		describe_end(r, "end of file", why, whylen);
		return -EPIPE;
	}
	/* a reset (the peer closed with our bytes unread) keeps its name */
	if (n < 0) {
		rr = -errno;
		describe_end(r, strerror(-rr), why, whylen);
		return rr;
	}
	r->have += (size_t)n;
	if (r->have == WIRE_PREFIX_LEN) {
		rr = take_prefix(r, why, whylen);
		if (rr < 0)
			return rr;
	}
	if (r->have < WIRE_PREFIX_LEN ||
	    r->have < WIRE_PREFIX_LEN + r->head_len + r->body_len)
		return 0;
	return take_frame(r, ret_frame, why, whylen);
}
