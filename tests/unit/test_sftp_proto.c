/* test_sftp_proto.c — the SFTP v3 codec (sftp_proto.c): packets as the
 * draft lays them out byte for byte, ATTRS both ways, framing of a stream
 * cut anywhere, and decoding that stops at the end of short or lying
 * input. */
#include <stdint.h>
#include <string.h>

#include "sftp_proto.h"
#include "t.h"

static bool bytes_are(const struct buf *b, const char *want, size_t n)
{
	return b->len == n && !memcmp(b->data, want, n);
}

int main(void)
{
	struct buf b;

	/* INIT: length 5, type 1, version 3; no id. */
	buf_init(&b);
	sftp_begin(&b, SSH_FXP_INIT, 0, false);
	sftp_put_u32(&b, 3);
	sftp_end(&b, 0);
	CHECK(bytes_are(&b, "\0\0\0\5\1\0\0\0\3", 9));
	buf_free(&b);

	/* STAT id 7 of "/a": length 11, type 17, id, string. */
	buf_init(&b);
	sftp_begin(&b, SSH_FXP_STAT, 7, true);
	sftp_put_cstr(&b, "/a");
	sftp_end(&b, 0);
	CHECK(bytes_are(&b, "\0\0\0\13\21\0\0\0\7\0\0\0\2/a", 15));
	buf_free(&b);

	/* ATTRS round trip, every field; and only the flags' fields. */
	struct sftp_attrs a = {.flags = 15,
			       .size = 0x123456789aULL,
			       .uid = 1000,
			       .gid = 1001,
			       .perm = 0100644,
			       .atime = 1700000000,
			       .mtime = 4000000000u};
	buf_init(&b);
	sftp_put_attrs(&b, &a);
	CHECK(b.len == 4 + 8 + 8 + 4 + 8);
	struct sftp_dec d;
	struct sftp_attrs x;
	sftp_dec_init(&d, b.data, b.len);
	CHECK(sftp_get_attrs(&d, &x) && d.left == 0);
	/* Field by field: the struct's padding is nobody's value. */
	CHECK(x.flags == a.flags && x.size == a.size && x.uid == a.uid &&
	      x.gid == a.gid && x.perm == a.perm && x.atime == a.atime &&
	      x.mtime == a.mtime);
	buf_free(&b);
	a.flags = SSH_FILEXFER_ATTR_PERMISSIONS;
	buf_init(&b);
	sftp_put_attrs(&b, &a);
	CHECK(bytes_are(&b, "\0\0\0\4\0\0\201\244", 8));
	buf_free(&b);

	/* Extended pairs are skipped; EXTENDED is not reported. */
	buf_init(&b);
	sftp_put_u32(&b, SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_EXTENDED);
	sftp_put_u64(&b, 5);
	sftp_put_u32(&b, 2);
	for (int i = 0; i < 4; i++)
		sftp_put_cstr(&b, "xy");
	sftp_put_u32(&b, 99); /* what follows */
	sftp_dec_init(&d, b.data, b.len);
	CHECK(sftp_get_attrs(&d, &x) && x.flags == 1 && x.size == 5);
	uint32_t v;
	CHECK(sftp_get_u32(&d, &v) && v == 99 && d.left == 0);
	/* ... and cut anywhere, it fails without reading past the end. */
	for (size_t cut = 0; cut < b.len - 4; cut++) {
		sftp_dec_init(&d, b.data, cut);
		if (sftp_get_attrs(&d, &x)) {
			CHECK(!"attrs decoded from a cut buffer");
			break;
		}
	}
	CHECK(d.bad);
	buf_free(&b);

	/* A string whose length lies. */
	const char lie[] = "\0\0\1\0abc";
	const char *s;
	size_t n;
	sftp_dec_init(&d, lie, 7);
	CHECK(!sftp_get_str(&d, &s, &n) && d.bad);
	/* Once bad, every later get fails. */
	CHECK(!sftp_get_u32(&d, &v));
	uint64_t v64;
	const char u64[] = "\1\2\3\4\5\6\7\10";
	sftp_dec_init(&d, u64, 8);
	CHECK(sftp_get_u64(&d, &v64) && v64 == 0x0102030405060708ULL);

	/* Framing: whole, partial, two in a row, a zero or huge length. */
	size_t total = 0;
	const char two[] = "\0\0\0\5\2\0\0\0\3"
			   "\0\0\0\3\145\0\0";
	CHECK(sftp_frame(two, 3, 1024, &total) == 0);
	/* Partial with its length in: the length told (the channel reads a
	 * big reply's rest straight into its own buffer). */
	total = 0;
	CHECK(sftp_frame(two, 8, 1024, &total) == 0 && total == 9);
	CHECK(sftp_frame(two, 9, 1024, &total) == 1 && total == 9);
	CHECK(sftp_frame(two + 9, 6, 1024, &total) == 0 && total == 7);
	CHECK(sftp_frame(two + 9, 7, 1024, &total) == 1 && total == 7);
	CHECK(sftp_frame("\0\0\0\0", 4, 1024, &total) == -1);
	CHECK(sftp_frame("\0\1\0\0\1", 5, 1024, &total) == -1);

	/* A reply head: STATUS id 9; VERSION has no id. */
	const char st[] = "\145\0\0\0\11\0\0\0\2";
	uint8_t type;
	uint32_t id;
	sftp_dec_init(&d, st, 9);
	CHECK(sftp_reply_head(&d, &type, &id) && type == SSH_FXP_STATUS &&
	      id == 9);
	CHECK(sftp_get_u32(&d, &v) && v == SSH_FX_NO_SUCH_FILE);
	sftp_dec_init(&d, "\2\0\0\0\3", 5);
	CHECK(sftp_reply_head(&d, &type, &id) && type == SSH_FXP_VERSION &&
	      id == 0 && d.left == 4);
	sftp_dec_init(&d, "\145\0\0", 3);
	CHECK(!sftp_reply_head(&d, &type, &id));
	return t_done();
}
