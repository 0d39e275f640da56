/* sftp_proto.h — the SFTP version 3 wire format (draft-ietf-secsh-filexfer-02
 * as OpenSSH speaks it), pure encoding and decoding of packets: no I/O, no
 * state, so it can be unit-tested and fuzzed. sftp.c drives it over a
 * channel. A packet is uint32 length, byte type, then (but for INIT and
 * VERSION) uint32 request id and the fields of the type. */
#ifndef PRIMEFS_SFTP_PROTO_H
#define PRIMEFS_SFTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum {
	SSH_FXP_INIT = 1,
	SSH_FXP_VERSION = 2,
	SSH_FXP_OPEN = 3,
	SSH_FXP_CLOSE = 4,
	SSH_FXP_READ = 5,
	SSH_FXP_WRITE = 6,
	SSH_FXP_LSTAT = 7,
	SSH_FXP_FSTAT = 8,
	SSH_FXP_SETSTAT = 9,
	SSH_FXP_FSETSTAT = 10,
	SSH_FXP_OPENDIR = 11,
	SSH_FXP_READDIR = 12,
	SSH_FXP_REMOVE = 13,
	SSH_FXP_MKDIR = 14,
	SSH_FXP_RMDIR = 15,
	SSH_FXP_REALPATH = 16,
	SSH_FXP_STAT = 17,
	SSH_FXP_RENAME = 18,
	SSH_FXP_READLINK = 19,
	SSH_FXP_SYMLINK = 20,
	SSH_FXP_STATUS = 101,
	SSH_FXP_HANDLE = 102,
	SSH_FXP_DATA = 103,
	SSH_FXP_NAME = 104,
	SSH_FXP_ATTRS = 105,
	SSH_FXP_EXTENDED = 200,
	SSH_FXP_EXTENDED_REPLY = 201,
};

/* Status codes (v3 defines 0..8; later drafts add more, which OpenSSH
 * never sends: its sftp-server maps every other errno to FAILURE). */
enum {
	SSH_FX_OK = 0,
	SSH_FX_EOF = 1,
	SSH_FX_NO_SUCH_FILE = 2,
	SSH_FX_PERMISSION_DENIED = 3,
	SSH_FX_FAILURE = 4,
	SSH_FX_BAD_MESSAGE = 5,
	SSH_FX_NO_CONNECTION = 6,
	SSH_FX_CONNECTION_LOST = 7,
	SSH_FX_OP_UNSUPPORTED = 8,
	SSH_FX_NO_SPACE_ON_FILESYSTEM = 14, /* v5+ */
	SSH_FX_QUOTA_EXCEEDED = 15,	    /* v5+ */
};

/* OPEN's pflags. */
enum {
	SSH_FXF_READ = 1,
	SSH_FXF_WRITE = 2,
	SSH_FXF_APPEND = 4,
	SSH_FXF_CREAT = 8,
	SSH_FXF_TRUNC = 0x10,
	SSH_FXF_EXCL = 0x20,
};

/* ATTRS flags. */
enum {
	SSH_FILEXFER_ATTR_SIZE = 1,
	SSH_FILEXFER_ATTR_UIDGID = 2,
	SSH_FILEXFER_ATTR_PERMISSIONS = 4,
	SSH_FILEXFER_ATTR_ACMODTIME = 8,
	SSH_FILEXFER_ATTR_EXTENDED = 0x80000000u,
};

struct sftp_attrs {
	uint32_t flags; /* which fields below are set (SSH_FILEXFER_ATTR_*) */
	uint64_t size;
	uint32_t uid, gid;
	uint32_t perm; /* st_mode: type and permission bits */
	uint32_t atime, mtime;
};

/* Encoding into a struct buf: begin reserves the length and writes the
 * type (and the id when has_id), end fills the length in. */
void sftp_begin(struct buf *b, uint8_t type, uint32_t id, bool has_id);
void sftp_end(struct buf *b, size_t start);
void sftp_put_u32(struct buf *b, uint32_t v);
void sftp_put_u64(struct buf *b, uint64_t v);
void sftp_put_str(struct buf *b, const void *p, size_t n);
void sftp_put_cstr(struct buf *b, const char *s);
/* Only the flags' fields (EXTENDED is never sent). */
void sftp_put_attrs(struct buf *b, const struct sftp_attrs *a);

/* Decoding: every get fails (false, and d->bad set) past the end. */
struct sftp_dec {
	const uint8_t *p;
	size_t left;
	bool bad;
};
void sftp_dec_init(struct sftp_dec *d, const void *p, size_t n);
bool sftp_get_u8(struct sftp_dec *d, uint8_t *v);
bool sftp_get_u32(struct sftp_dec *d, uint32_t *v);
bool sftp_get_u64(struct sftp_dec *d, uint64_t *v);
/* A string in place (not NUL-terminated): *p points into the packet. */
bool sftp_get_str(struct sftp_dec *d, const char **p, size_t *n);
/* Skips extended pairs. */
bool sftp_get_attrs(struct sftp_dec *d, struct sftp_attrs *a);

/* Whether buf[0..n) starts with a whole packet: 1, 0 if more bytes are
 * needed, -1 if its length is 0 or over max (a broken stream). *total (the
 * packet's length, length field included) is set once its length is in. */
int sftp_frame(const void *buf, size_t n, size_t max, size_t *total);

/* A reply's head: type, and id for all but VERSION. false if short. */
bool sftp_reply_head(struct sftp_dec *d, uint8_t *type, uint32_t *id);

#endif
