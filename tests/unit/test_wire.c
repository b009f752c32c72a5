/*
 * The agent's conversation with its deliverer, on a real AF_UNIX socket
 * pair: frames survive any split into reads, the reader bounds lengths
 * before it allocates and names what is wrong, a peer that stops reading
 * or is gone makes a send fail in time instead of hanging or raising
 * SIGPIPE; the agent's checks of the deliverer's answers refuse what
 * a post cannot answer; and a deliverer (here a small shell script in its
 * place) is ended politely or at once as asked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../agent/deliverer.h"
#include "../../agent/wire.h"
#include "../../common/util.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static int waitpid_status(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void nonblocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Feed until a frame is complete or an error; the reader reads in pieces. */
static int read_frame_why(struct wire_reader *rd, int fd, struct wire_frame *f,
			  char *why, size_t whylen)
{
	int r;

	while ((r = wire_reader_feed(rd, fd, f, why, whylen)) == 0)
		;
	return r;
}

static int read_frame(struct wire_reader *rd, int fd, struct wire_frame *f)
{
	char why[256];

	return read_frame_why(rd, fd, f, why, sizeof(why));
}

static void test_frames_round_trip_with_a_large_body(void **state)
{
	size_t big = 3 * 1024 * 1024 + 7; /* beyond any socket buffer */
	char *body = malloc(big);
	struct wire_reader rd;
	struct wire_frame f = { 0 };
	json_t *head = json_pack("{s:s, s:s}", "op", "post", "path", "/api/v1/events");
	int sv[2];
	pid_t pid;

	(void)state;
	for (size_t i = 0; i < big; i++)
		body[i] = (char)('a' + i % 26);
	pair(sv);
	pid = fork();
	if (pid == 0) { /* the writer, in its own process as the agent is */
		close(sv[0]);
		_exit(wire_send(sv[1], head, body, big, 10000) == 0 &&
			      wire_send(sv[1], head, NULL, 0, 10000) == 0
		      ? 0 : 1);
	}
	close(sv[1]);
	nonblocking(sv[0]);
	wire_reader_init(&rd, big);
	assert_int_equal(read_frame(&rd, sv[0], &f), 1);
	assert_string_equal(json_string_value(json_object_get(f.head, "path")),
			    "/api/v1/events");
	assert_int_equal(f.len, big);
	assert_memory_equal(f.body, body, big);
	assert_int_equal(f.body[big], '\0');
	wire_frame_clear(&f);
	/* the next frame follows: nothing of it was read ahead */
	assert_int_equal(read_frame(&rd, sv[0], &f), 1);
	assert_int_equal(f.len, 0);
	assert_null(f.body);
	wire_frame_clear(&f);
	assert_true(wire_reader_idle(&rd));
	assert_int_equal(read_frame(&rd, sv[0], &f), -EPIPE); /* a clean goodbye */
	assert_true(wire_reader_idle(&rd));
	wire_reader_clear(&rd);
	close(sv[0]);
	json_decref(head);
	free(body);
	assert_int_equal(waitpid_status(pid), 0);
}

/* The bytes of a malformed frame, what the reader returns and says. */
struct malformed {
	const char *bytes;
	size_t len;
	int error;
	const char *why;
};

static void test_malformed_frames_say_what_is_wrong(void **state)
{
	static const struct malformed cases[] = {
		/* a body beyond the reader's limit: refused before any allocation */
		{ "\0\0\0\2\0\0\x10\0", 8, -EMSGSIZE,
		  "a frame body of 4096 bytes, beyond the limit of 1024" },
		{ "\0\0\0\0\0\0\0\0", 8, -EMSGSIZE,
		  "a frame without a header (its prefix says 0 header bytes)" },
		{ "\0\x10\0\0\0\0\0\0", 8, -EMSGSIZE,
		  "a frame header of 1048576 bytes, beyond the limit of 65536" },
		{ "\0\0\0\2\0\0\0\0[]", 10, -EBADMSG,
		  "a frame header that is an array, not a JSON object" },
		{ "\0\0\0\3\0\0\0\0\"x\"", 11, -EBADMSG,
		  "a frame header that is a string, not a JSON object" },
		{ "\0\0\0\6\0\0\0\0{\"op\":", 14, -EBADMSG,
		  "a frame header that is not JSON: " },
		{ "\0\0\0\5\0\0\0\0{} {}", 13, -EBADMSG,
		  "a frame header that is not JSON: end of file expected" },
		/* the peer's bytes that jansson quotes stay one line */
		{ "\0\0\0\7\0\0\0\0{\x1b[31m}", 15, -EBADMSG,
		  "a frame header that is not JSON: string or '}' expected near '?' (at byte 2 of 7)" },
		/* the peer closed in the middle: the prefix, the header */
		{ "\0\0\0\24\0", 5, -EPIPE,
		  "a frame cut short: end of file after 5 of its 8 prefix bytes" },
		{ "\0\0\0\24\0\0\0\0{\"op\":", 14, -EPIPE,
		  "a frame cut short: end of file after 14 of its 28 bytes" },
		{ "", 0, -EPIPE, "end of file between frames" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct malformed *c = &cases[i];
		struct wire_reader rd;
		struct wire_frame f = { 0 };
		char why[256] = "";
		int sv[2];

		pair(sv);
		assert_int_equal(write(sv[1], c->bytes, c->len), (ssize_t)c->len);
		close(sv[1]);
		wire_reader_init(&rd, 1024);
		assert_int_equal(read_frame_why(&rd, sv[0], &f, why, sizeof(why)),
				 c->error);
		if (strstr(why, c->why) != why)
			fail_msg("case %zu: \"%s\", expected \"%s...\"", i, why, c->why);
		assert_null(f.head);
		wire_reader_clear(&rd);
		close(sv[0]);
	}
}

static void test_end_of_file_inside_a_frame_is_not_clean(void **state)
{
	unsigned char prefix[8] = { 0, 0, 0, 20, 0, 0, 0, 0 };
	struct wire_reader rd;
	struct wire_frame f = { 0 };
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(write(sv[1], prefix, sizeof(prefix)), 8);
	assert_int_equal(write(sv[1], "{\"op\":", 6), 6);
	close(sv[1]);
	wire_reader_init(&rd, 1024);
	assert_int_equal(read_frame(&rd, sv[0], &f), -EPIPE);
	assert_false(wire_reader_idle(&rd)); /* it died in the middle */
	wire_reader_clear(&rd);
	close(sv[0]);
}

static void test_send_gives_up_on_a_peer_that_does_not_read(void **state)
{
	size_t big = 8 * 1024 * 1024;
	char *body = calloc(1, big);
	json_t *head = json_pack("{s:s}", "op", "post");
	int64_t began;
	int sv[2];

	(void)state;
	pair(sv);
	nonblocking(sv[0]);
	began = time_mono_ms();
	assert_int_equal(wire_send(sv[0], head, body, big, 300), -ETIMEDOUT);
	assert_true(time_mono_ms() - began < 3000);
	/* and one that is gone: an error, no SIGPIPE */
	close(sv[1]);
	assert_int_equal(wire_send(sv[0], head, body, 16, 300), -EPIPE);
	close(sv[0]);
	json_decref(head);
	free(body);
}

static json_t *post_reply(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_post_answers_are_checked(void **state)
{
	struct deliverer_post_reply p;
	char why[256], text[64];
	json_t *j;

	(void)state;
	j = post_reply("{\"status\": 503, \"error\": \"cannot reach\", \"message\": \"busy\","
		       " \"retry_after_ms\": 2000, \"url\": 1, \"switched\": true,"
		       " \"current\": 1, \"primary_retry_in_ms\": 300000}");
	assert_int_equal(deliverer_post_reply(j, 2, &p, why, sizeof(why)), 0);
	assert_int_equal(p.status, 503);
	assert_string_equal(p.message, "busy");
	assert_int_equal(p.retry_after_ms, 2000);
	assert_int_equal(p.url, 1);
	assert_true(p.switched);
	assert_false(p.credential_changed);
	assert_false(p.explained);
	assert_int_equal(p.accepted, -1); /* no acknowledgement */
	/* a URL the agent never gave it */
	assert_int_equal(deliverer_post_reply(j, 1, &p, why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "\"url\""));
	json_decref(j);

	static const char *const bad[] = {
		"{}",					    /* no status */
		"{\"status\": \"200\"}",		    /* not a number */
		"{\"status\": 1000}",			    /* not an HTTP status */
		"{\"status\": 200, \"current\": -1}",
		"{\"status\": 200, \"switched\": 1}",
		"{\"status\": 200, \"retry_after_ms\": -5}",
		"{\"status\": 200, \"error\": 7}",
		"{\"status\": 200, \"accepted\": -1}",
		"{\"status\": 200, \"accepted\": \"3\"}",
		"{\"status\": 400, \"explained\": 1}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		j = post_reply(bad[i]);
		assert_int_equal(deliverer_post_reply(j, 2, &p, why, sizeof(why)), -EPROTO);
		json_decref(j);
	}
	/* the collector's acknowledgement and its explained refusal */
	j = post_reply("{\"status\": 200, \"accepted\": 0}");
	assert_int_equal(deliverer_post_reply(j, 2, &p, why, sizeof(why)), 0);
	assert_int_equal(p.accepted, 0);
	json_decref(j);
	j = post_reply("{\"status\": 400, \"explained\": true, \"message\": \"events[0]\"}");
	assert_int_equal(deliverer_post_reply(j, 2, &p, why, sizeof(why)), 0);
	assert_true(p.explained);
	json_decref(j);
	/* a message too long for its buffer is refused, not cut silently */
	j = json_pack("{s:i, s:s}", "status", 400, "message",
		      "0123456789012345678901234567890123456789012345678901234567890123456789");
	assert_int_equal(deliverer_reply_text(j, "message", text, sizeof(text)), -EPROTO);
	json_decref(j);
	/* text goes into the log as one line, by utf8_sanitize()'s policy */
	j = json_pack("{s:s}", "error", "two\r\nlines\x1b[0m\ttab");
	assert_int_equal(deliverer_reply_text(j, "error", text, sizeof(text)), 0);
	assert_string_equal(text, "two  lines?[0m\ttab");
	json_decref(j);
	/* a NUL inside the string does not hide what follows it */
	j = json_pack("{s:s%}", "error", "cut\0here", (size_t)8);
	assert_int_equal(deliverer_reply_text(j, "error", text, sizeof(text)), 0);
	assert_string_equal(text, "cut?here");
	json_decref(j);
	/* the longest text that fits still fits */
	j = json_pack("{s:s}", "error", "\001234567");
	assert_int_equal(deliverer_reply_text(j, "error", text, 9), 0);
	assert_string_equal(text, "?234567");
	json_decref(j);
}

static void test_results_are_checked(void **state)
{
	static const char *const allowed[] = { "rotated", "failed", NULL };
	const char *result = NULL;
	char why[256];
	json_t *j = json_pack("{s:s}", "result", "rotated");

	(void)state;
	assert_int_equal(deliverer_result(j, allowed, &result, why, sizeof(why)), 0);
	assert_string_equal(result, "rotated");
	json_decref(j);
	j = json_pack("{s:s}", "result", "enrolled");
	assert_int_equal(deliverer_result(j, allowed, &result, why, sizeof(why)), -EPROTO);
	json_decref(j);
}

static char script_dir[64];

/* An executable shell script in the deliverer's place. */
static char *fake_deliverer(const char *name, const char *text)
{
	char *path;
	FILE *fp;

	if (script_dir[0] == '\0') {
		strlcpy_safe(script_dir, "/tmp/tocsin-test-wire-XXXXXX",
			     sizeof(script_dir));
		assert_non_null(mkdtemp(script_dir));
	}
	path = xasprintf("%s/%s", script_dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "#!/bin/sh\n%s\n", text);
	fclose(fp);
	assert_int_equal(chmod(path, 0700), 0);
	return path;
}

static struct deliverer *start(const char *name, const char *text)
{
	char *path = fake_deliverer(name, text);
	json_t *hello = json_pack("{s:s}", "op", "hello");
	struct deliverer *dv = NULL;

	assert_int_equal(deliverer_spawn(path, hello, &dv), 0);
	json_decref(hello);
	free(path);
	return dv;
}

static bool gone(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static void test_deliverer_end_politely_or_at_once(void **state)
{
	struct deliverer_exit e = { 0 };
	struct deliverer *dv;
	int64_t began;
	pid_t pid;

	(void)state;
	/* one that exits when its socket closes: reaped, its status kept */
	dv = start("polite", "cat <&3 >/dev/null\nexit 3");
	pid = deliverer_pid(dv);
	deliverer_end(dv, false, &e);
	assert_int_equal(e.pid, pid);
	assert_false(e.killed);
	assert_true(WIFEXITED(e.status));
	assert_int_equal(WEXITSTATUS(e.status), 3);
	assert_true(gone(pid));

	/* one that does not listen: killed once the grace is over */
	dv = start("deaf", "exec sleep 30");
	pid = deliverer_pid(dv);
	began = time_mono_ms();
	deliverer_end(dv, false, &e);
	assert_true(time_mono_ms() - began >= DELIVERER_EXIT_GRACE_MS - 100);
	assert_int_equal(e.pid, pid);
	assert_true(e.killed);
	assert_true(gone(pid));

	/* at once: no grace */
	dv = start("deaf", "exec sleep 30");
	pid = deliverer_pid(dv);
	began = time_mono_ms();
	deliverer_end(dv, true, &e);
	assert_true(time_mono_ms() - began < DELIVERER_EXIT_GRACE_MS / 2);
	assert_true(e.killed);
	assert_true(gone(pid));
}

/* Wait for what the deliverer sends; its error and why. */
static int wait_answer(struct deliverer *dv, char *why, size_t whylen)
{
	json_t *reply = NULL;
	int r = deliverer_wait(dv, time_mono_ms() + 10000, NULL, NULL, &reply,
			       why, whylen);

	json_decref(reply);
	return r;
}

/* In a fake deliverer: read exactly the hello start() sends ({"op":"hello"}). */
#define READ_HELLO "head -c 22 <&3 >/dev/null\n"
/* ... and one byte of the request, which leaves the rest of it unread. */
#define READ_A_BYTE "head -c 1 <&3 >/dev/null\n"
#define CUT_ANSWER "printf '\\000\\000\\000\\024\\000\\000\\000\\000{\"st' >&3\n"

/*
 * What deliverer_read() says of a fake deliverer running script (sent
 * a post first when ask): the error and why.  One that babbled is killed,
 * one that ended is reaped.
 */
static void expect_read(const char *name, const char *script, bool ask,
			int error, const char *said)
{
	char why[256] = "";
	struct deliverer *dv = start(name, script);

	if (ask)
		assert_int_equal(deliverer_request(dv, "post", NULL, "x", 1), 0);
	assert_int_equal(wait_answer(dv, why, sizeof(why)), error);
	assert_string_equal(why, said);
	assert_true(deliverer_babbled(error) != deliverer_ended(error));
	deliverer_end(dv, deliverer_babbled(error), NULL);
}

static void test_deliverer_read_names_what_is_not_an_answer(void **state)
{
	(void)state;
	/* a frame whose header is an array, in answer to a request */
	expect_read("array", "printf '\\000\\000\\000\\002\\000\\000\\000\\000[]' >&3\nexec cat <&3 >/dev/null",
		    true, -EBADMSG, "a frame header that is an array, not a JSON object");
	assert_true(deliverer_babbled(-EBADMSG));
	/* a frame beyond the limits: its length, and the limit */
	expect_read("huge", "printf '\\377\\377\\377\\377\\000\\000\\000\\000' >&3\nexec cat <&3 >/dev/null",
		    true, -EMSGSIZE, "a frame header of 4294967295 bytes, beyond the limit of 65536");
	assert_true(deliverer_babbled(-EMSGSIZE));
	/* a well-formed frame, but nothing was asked */
	expect_read("unasked", "printf '\\000\\000\\000\\002\\000\\000\\000\\000{}' >&3\nexec cat <&3 >/dev/null",
		    false, -EPROTO, "an answer while no request was in flight");
	assert_true(deliverer_babbled(-EPROTO));
	/* one that dies between frames: nothing was wrong with a frame */
	expect_read("dies", READ_HELLO "exit 0", false, -EPIPE, "");
	assert_true(deliverer_ended(-EPIPE));
	/* one that dies in the middle of its answer */
	expect_read("cut", READ_HELLO CUT_ANSWER, false, -EPIPE,
		    "a frame cut short: end of file after 12 of its 28 bytes");
	/* one that dies with our request unread: a reset, named as one */
	expect_read("resets", READ_HELLO READ_A_BYTE "exit 0", true, -ECONNRESET,
		    "read from the deliverer: Connection reset by peer between frames");
	assert_true(deliverer_ended(-ECONNRESET));
	/* ... and in the middle of its answer */
	expect_read("cut-reset", READ_HELLO CUT_ANSWER READ_A_BYTE "exit 0", true,
		    -ECONNRESET,
		    "read from the deliverer: a frame cut short: Connection reset by peer after 12 of its 28 bytes");
}

static int remove_scripts(void **state)
{
	char *cmd;

	(void)state;
	if (script_dir[0] == '\0')
		return 0;
	cmd = xasprintf("rm -rf '%s'", script_dir);
	(void)!system(cmd);
	free(cmd);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_round_trip_with_a_large_body),
		cmocka_unit_test(test_malformed_frames_say_what_is_wrong),
		cmocka_unit_test(test_end_of_file_inside_a_frame_is_not_clean),
		cmocka_unit_test(test_send_gives_up_on_a_peer_that_does_not_read),
		cmocka_unit_test(test_post_answers_are_checked),
		cmocka_unit_test(test_results_are_checked),
		cmocka_unit_test(test_deliverer_end_politely_or_at_once),
		cmocka_unit_test(test_deliverer_read_names_what_is_not_an_answer),
	};
	return cmocka_run_group_tests(tests, NULL, remove_scripts);
}
