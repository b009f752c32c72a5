/*
 * Messages between tocsin-agent and its deliverer (tocsin-agent-deliver)
 * over one AF_UNIX stream socket: a frame is an 8-byte prefix (the
 * length of a JSON header and of a body that follows it, both 32-bit big
 * endian), the header (one JSON object: what is asked or answered) and
 * the body (raw bytes: the batch of events; usually empty in answers).
 * The body is not JSON-escaped into the header, so a batch crosses the
 * socket as it will cross the network.
 *
 * The reader takes exactly one frame's bytes per frame (it never reads
 * ahead), bounds both lengths before allocating, and says what was wrong
 * with a frame; it works on blocking and non-blocking descriptors alike.
 * What a header must contain is for the two ends to check (deliverer.h
 * describes the conversation).
 */
#ifndef TOCSIN_WIRE_H
#define TOCSIN_WIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_PREFIX_LEN 8
/* The largest header either side sends (a hello with every TLS path). */
#define WIRE_HEAD_MAX (64 * 1024)

struct wire_frame {
	json_t *head; /* an object, owned */
	char *body;   /* len bytes plus a NUL, owned; NULL when len is 0 */
	size_t len;
};

void wire_frame_clear(struct wire_frame *f);

/*
 * Send one frame (body may be NULL when len is 0).  Waits for room at
 * most timeout_ms in all, so a peer that stopped reading cannot hold the
 * caller; never raises SIGPIPE.  0, -ETIMEDOUT, -EPIPE when the peer is
 * gone, -EMSGSIZE when a part is beyond the limits, or -errno.
 */
int wire_send(int fd, const json_t *head, const char *body, size_t len,
	      int64_t timeout_ms);

struct wire_reader {
	size_t max_body;
	unsigned char prefix[WIRE_PREFIX_LEN];
	size_t have;	       /* bytes of the current frame read so far */
	size_t head_len, body_len;
	char *buf;	       /* head_len + body_len + 1 once the prefix is in */
};

void wire_reader_init(struct wire_reader *r, size_t max_body);
void wire_reader_clear(struct wire_reader *r);

/*
 * One read(2) of what the current frame still lacks.  1 and *ret_frame
 * (the caller clears it) when a frame is complete; 0 when more is needed
 * (or the read would block); -EPIPE at end of file (the peer closed the
 * socket; see wire_reader_idle() for whether that was between frames),
 * -EMSGSIZE for a length beyond the limits, -EBADMSG for a header that
 * is not a JSON object, or the read's -errno (-ECONNRESET: the peer
 * closed with our bytes unread).  On an error why says what was wrong
 * with the frame (which limit, how far a cut frame got, jansson's words
 * and the byte) or how the read failed and where ("Connection reset by
 * peer between frames"), one line for the log.  After an error the
 * reader is not to be used again except to clear it.
 */
int wire_reader_feed(struct wire_reader *r, int fd, struct wire_frame *ret_frame,
		     char *why, size_t whylen);

/* True between frames: an end of file here is a clean goodbye. */
int wire_reader_idle(const struct wire_reader *r);

#endif
