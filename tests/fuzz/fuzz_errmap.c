/* fuzz_errmap.c — libFuzzer target for errmap.c: http_errno and api_fail on
 * any status and any body, and api_parse_object on the same answer.
 *
 * The whole input is the body of an answer with each status DESIGN.md's
 * error table names (so JSON seeds such as the fixtures are useful as they
 * are). Then the first five bytes describe one more answer and the rest is
 * its body: byte 0 flags (bit 0 no_key, bit 1 too_large, bit 2 a transport
 * failure whose code is byte 3, bit 3 an error text, the start of the
 * body), bytes 1-2 the HTTP status (big-endian), byte 4 the attempt count.
 * Whatever the answer, the errno is one of DESIGN.md's and the message a C
 * string. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "errmap.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(16, false);
	return 0;
}

static bool known_errno(int e)
{
	static const int known[] = {EACCES, EDQUOT, ENOENT, EINVAL,
				    EEXIST, EAGAIN, EIO,    ETIMEDOUT};
	for (size_t i = 0; i < sizeof known / sizeof *known; i++)
		if (e == known[i])
			return true;
	return false;
}

static void check(struct http_resp *r)
{
	struct buf msg;
	buf_init(&msg);
	int e = http_errno(r, &msg);
	if (!known_errno(e)) {
		fprintf(stderr, "fuzz_errmap: errno %d is not DESIGN.md's\n",
			e);
		abort();
	}
	if (!msg.data || strlen(msg.data) > msg.len) {
		fprintf(stderr, "fuzz_errmap: no message\n");
		abort();
	}
	buf_free(&msg);
	if (api_fail("GET /fuzz", "/fuzz", r) != -e)
		abort();
	json_object_put(api_parse_object("fuzz", r));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {0,   200, 204, 400, 401, 402, 403,
					404, 409, 422, 429, 500, 502, 503};
	struct http_resp r;
	http_resp_init(&r);
	buf_add(&r.body, data, size);
	r.attempts = 1;
	for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
		r.status = statuses[i];
		check(&r);
	}
	http_resp_free(&r);

	if (size < 5)
		return 0;
	http_resp_init(&r);
	r.no_key = data[0] & 1;
	r.too_large = data[0] & 2;
	r.curl = (data[0] & 4) ? (CURLcode)data[3] : CURLE_OK;
	r.status = (long)data[1] << 8 | data[2];
	r.attempts = data[4];
	const char *body = (const char *)data + 5;
	size_t len = size - 5;
	if (data[0] & 8) {
		size_t n = len < sizeof r.error - 1 ? len : sizeof r.error - 1;
		memcpy(r.error, body, n);
		r.error[n] = '\0';
	}
	buf_add(&r.body, body, len);
	check(&r);
	http_resp_free(&r);
	return 0;
}
