/* fuzz_sftp.c — the SFTP v3 decoder (sftp_proto.c) on any byte stream, as
 * sftp_chan.c walks what a server sends: frames, each reply's head, then
 * the fields of its type (STATUS, HANDLE, DATA, NAME with ATTRS, ATTRS,
 * VERSION's extension pairs, statvfs's numbers). Nothing may read past the
 * input. */
#include <stddef.h>
#include <stdint.h>

#include "sftp_proto.h"

static void walk(struct sftp_dec *d, uint8_t type)
{
	const char *s, *l;
	size_t n, ln;
	uint32_t v, count;
	uint64_t v64;
	struct sftp_attrs a;
	switch (type) {
	case SSH_FXP_VERSION:
		sftp_get_u32(d, &v);
		while (!d->bad && d->left)
			if (!sftp_get_str(d, &s, &n) ||
			    !sftp_get_str(d, &l, &ln))
				break;
		break;
	case SSH_FXP_STATUS:
		sftp_get_u32(d, &v);
		sftp_get_str(d, &s, &n);
		sftp_get_str(d, &l, &ln);
		break;
	case SSH_FXP_HANDLE:
	case SSH_FXP_DATA:
		sftp_get_str(d, &s, &n);
		break;
	case SSH_FXP_NAME:
		if (!sftp_get_u32(d, &count))
			break;
		for (uint32_t i = 0; i < count && !d->bad; i++) {
			sftp_get_str(d, &s, &n);
			sftp_get_str(d, &l, &ln);
			sftp_get_attrs(d, &a);
		}
		break;
	case SSH_FXP_ATTRS:
		sftp_get_attrs(d, &a);
		break;
	default:
		for (int i = 0; i < 11; i++)
			sftp_get_u64(d, &v64);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0, total;
	while (sftp_frame(data + at, size - at, 1 << 20, &total) == 1) {
		struct sftp_dec d;
		uint8_t type;
		uint32_t id;
		sftp_dec_init(&d, data + at + 4, total - 4);
		if (sftp_reply_head(&d, &type, &id))
			walk(&d, type);
		at += total;
	}
	return 0;
}
